/**
 * Operating the server: four-letter words behind a whitelist, per-IP connection
 * limit, packet-size limit, zoo.cfg, and the `pulsekeeper start` process with a
 * clean SIGTERM shutdown and its command-line flags.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/index.js';
import { parseZooCfg, resolveConfig } from '../../src/server/config.js';
import { createLogger } from '../../src/util/log.js';
import { OpCode } from '../../src/protocol/opcodes.js';
import { encodeRequest } from '../../src/protocol/records.js';
import { RawClient } from '../support/raw-client.js';
import { fourLetter } from '../support/zookeeper.js';
import { freePort } from '../support/ports.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

describe('four-letter words', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ fourLetterWords: '*' });
  });
  after(async () => server?.close());

  // The words ZooKeeper also answers are compared with it in four-letter.test.ts.
  test('envi, crst and srst answer in ZooKeeper\'s format', async () => {
    assert.match(await fourLetter(server.port, 'envi'), /^Environment:\nzookeeper\.version=.*\nhost\.name=/);
    assert.equal(await fourLetter(server.port, 'crst'), 'Connection stats reset.\n');
    assert.equal(await fourLetter(server.port, 'srst'), 'Server stats reset.\n');
  });

  test('words outside the whitelist are refused', async () => {
    const strict = await startServer({});
    try {
      assert.match(await fourLetter(strict.port, 'srvr'), /^Zookeeper version/);
      assert.equal(await fourLetter(strict.port, 'ruok'), 'ruok is not executed because it is not in the whitelist.\n');
    } finally {
      await strict.close();
    }
  });
});

describe('limits', () => {
  test('connections beyond maxClientCnxns from one address are closed; others are unaffected', async () => {
    const server = await startServer({ maxClientCnxns: 3 });
    try {
      const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(server.port)));
      await assert.rejects(RawClient.connect(server.port));
      assert.equal((await clients[0].ping()).err, 0);
      await clients[2].close();
      const again = await RawClient.connect(server.port);
      await Promise.all([clients[0].close(), clients[1].close(), again.close()]);
    } finally {
      await server.close();
    }
  });

  test('a frame over jute.maxbuffer closes only that connection, with a logged reason', async () => {
    const logs: string[] = [];
    const server = await startServer({ maxBuffer: 4096, logger: createLogger({ sink: (l) => logs.push(l) }) });
    try {
      const good = await RawClient.connect(server.port);
      const bad = await RawClient.connect(server.port);
      const big = encodeRequest(5, { type: OpCode.create, path: '/big', data: Buffer.alloc(10_000), acl: OPEN, flags: 0 });
      await assert.rejects(bad.request({ type: OpCode.create, path: '/big', data: Buffer.alloc(10_000), acl: OPEN, flags: 0 }));
      assert.ok(big.length > 4096);
      const reason = logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'closing connection');
      assert.match(reason.reason, /frame length \d+ outside/);
      const r = await good.request({ type: OpCode.create, path: '/small', data: Buffer.alloc(100), acl: OPEN, flags: 0 });
      assert.equal(r.err, 0);
      await good.close();
    } finally {
      await server.close();
    }
  });

  test('a client that never sends its ConnectRequest is closed', async () => {
    const server = await startServer({ tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 300 });
    const s = connect({ host: '127.0.0.1', port: server.port });
    try {
      s.on('error', () => {});
      s.write(Buffer.from([0, 0]));
      const closed = await Promise.race([once(s, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      assert.ok(closed, 'still open 10 s after a 300 ms limit');
    } finally {
      s.destroy();
      await server.close();
    }
  });
});

describe('configuration', () => {
  test('zoo.cfg keys are read; session bounds follow tickTime unless given', () => {
    const cfg = resolveConfig(
      parseZooCfg(
        [
          '# comment',
          'tickTime=500',
          'dataDir=/var/pk',
          'clientPort=2999',
          'clientPortAddress=127.0.0.2',
          'maxClientCnxns=7',
          '4lw.commands.whitelist=ruok, mntr',
          'jute.maxbuffer=2048',
          'extendedTypesEnabled=true',
          'server.1=127.0.0.1:2888:3888',
        ].join('\n'),
      ),
    );
    assert.equal(cfg.tickTime, 500);
    assert.equal(cfg.minSessionTimeout, 1000);
    assert.equal(cfg.maxSessionTimeout, 10000);
    assert.equal(cfg.port, 2999);
    assert.equal(cfg.host, '127.0.0.2');
    assert.equal(cfg.maxClientCnxns, 7);
    assert.deepEqual([...(cfg.fourLetterWords as Set<string>)], ['ruok', 'mntr']);
    assert.equal(cfg.maxBuffer, 2048);
    assert.equal(cfg.extendedTypesEnabled, true);
    assert.equal(cfg.extra['server.1'], '127.0.0.1:2888:3888');
    assert.throws(() => parseZooCfg('tickTime=abc'), /tickTime must be an integer/);
    assert.throws(() => resolveConfig({ minSessionTimeout: 10, maxSessionTimeout: 5 }), /minSessionTimeout/);
  });

  test('`pulsekeeper start --config` serves clients and shuts down cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-start-'));
    const port = await freePort();
    writeFileSync(join(dir, 'zoo.cfg'), `tickTime=200\nclientPort=${port}\ndataDir=${join(dir, 'data')}\n4lw.commands.whitelist=*\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '--config', join(dir, 'zoo.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      let err = '';
      child.stderr.on('data', (c) => (err += c));
      const deadline = Date.now() + 20_000;
      while (!out.includes('listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, new RegExp(`listening on 127\\.0\\.0\\.1:${port}`));
      const c = await RawClient.connect(port);
      assert.equal((await c.request({ type: OpCode.create, path: '/x', data: Buffer.alloc(0), acl: OPEN, flags: 0 })).err, 0);
      assert.equal(await fourLetter(port, 'ruok'), 'imok');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 20 s after SIGTERM'), 20_000))]), 0);
      await c.whenClosed();
      assert.match(err, /"msg":"shutting down","signal":"SIGTERM"/);
      assert.match(err, /"msg":"server stopped"/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('`pulsekeeper start --port --data-dir --tick-time` serve on the port, keep data in the directory, count in ticks; they override the config file', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pk-flags-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');
    const [port, filePort] = [await freePort(), await freePort()];
    const flags = ['start', '--port', String(port), '--data-dir', dataDir, '--tick-time', '300'];
    // With the flags alone: srvr (the default whitelist) on the port, session timeouts clamped to 2 and 20 ticks.
    let child = startCli(flags);
    try {
      await child.listening(port);
      assert.match(await fourLetter(port, 'srvr'), /^Zookeeper version: .*\n[\s\S]*Mode: standalone\n/);
      const low = await RawClient.connect(port, { timeout: 1 });
      const high = await RawClient.connect(port, { timeout: 1_000_000 });
      assert.deepEqual([low.session.timeOut, high.session.timeOut], [600, 6000]);
      assert.equal((await low.request({ type: OpCode.create, path: '/kept', data: Buffer.from('v'), acl: OPEN, flags: 0 })).err, 0);
      await Promise.all([low.close(), high.close()]);
      assert.equal(await child.stop(), 0);
    } finally {
      child.kill();
    }
    assert.ok(readdirSync(join(dataDir, 'wal')).some((f) => statSync(join(dataDir, 'wal', f)).size > 0), 'nothing written under --data-dir');

    // A config file naming other values loses to the flags; the node written before is read back from the directory.
    writeFileSync(join(dir, 'zoo.cfg'), `tickTime=2000\nclientPort=${filePort}\ndataDir=${join(dir, 'elsewhere')}\n4lw.commands.whitelist=*\n`);
    child = startCli(['start', '--config', join(dir, 'zoo.cfg'), ...flags.slice(1)]);
    try {
      await child.listening(port);
      const conf = new Map((await fourLetter(port, 'conf')).trim().split('\n').map((l) => l.split('=') as [string, string]));
      assert.deepEqual(
        ['clientPort', 'dataDir', 'tickTime', 'minSessionTimeout', 'maxSessionTimeout'].map((k) => conf.get(k)),
        [String(port), dataDir, '300', '600', '6000'],
      );
      const c = await RawClient.connect(port);
      const get = await c.request({ type: OpCode.getData, path: '/kept', watch: false });
      assert.equal((get.response as { data: Buffer }).data.toString(), 'v');
      await c.close();
      assert.equal(await child.stop(), 0);
    } finally {
      child.kill();
    }
    assert.ok(!existsSync(join(dir, 'elsewhere')), 'the config file\'s dataDir was used');
  });
});

/** `pulsekeeper start ARGS` in a process of its own (src/cli/main.ts through tsx). */
function startCli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    async listening(port: number): Promise<void> {
      const deadline = Date.now() + 20_000;
      while (!out.includes('listening') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, new RegExp(`listening on 127\\.0\\.0\\.1:${port} `), `no listening line: ${out}${err}`);
    },
    /** SIGTERM; resolves with the exit code. */
    async stop(): Promise<number | null | string> {
      child.kill('SIGTERM');
      return Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 20 s after SIGTERM'), 20_000))]);
    },
    kill(): void {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
