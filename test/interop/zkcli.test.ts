/**
 * Apache ZooKeeper's own zkCli, driven by a script on its standard input, against
 * Apache ZooKeeper (proving the script), pulsekeeper (in memory and on the durable log)
 * and a pulsekeeper ensemble.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { javaCommand } from '../support/zookeeper.js';
import { targets, type TestServer } from '../support/servers.js';

/** Runs zkCli on the server's `member`-th client port with the commands on stdin; resolves with what it printed. */
function zkCli(server: TestServer, commands: string[], member = 0): Promise<string> {
  const port = server.ports[member % server.ports.length];
  const { cmd, args } = javaCommand('org.apache.zookeeper.ZooKeeperMain', ['-server', `127.0.0.1:${port}`], [
    '-Dzookeeper.jmx.log4j.disable=true',
  ]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.on('error', reject);
    child.stdin.end(commands.join('\n') + '\nquit\n');
  });
}

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name} = (.*)$`, 'm').exec(out)?.[1];
}

for (const target of targets({ ensemble: true, durable: true })) {
  describe(`zkCli against ${target.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await target.start({ tickTime: 200, minSessionTimeout: 400 });
    });
    after(async () => server?.stop());

    test('create, get, set, ls, stat, delete', async () => {
      const out = await zkCli(server, [
        'create /cli hello',
        'create /cli/child c',
        'get /cli',
        'set /cli world',
        'get -s /cli',
        'ls /cli',
        'ls /',
        'stat /cli/child',
        'delete /cli/child',
        'ls /cli',
        'get /cli/child',
        'delete /cli',
        'stat /cli',
      ]);
      assert.match(out, /^Created \/cli$/m);
      assert.match(out, /^Created \/cli\/child$/m);
      assert.match(out, /^hello$/m);
      assert.match(out, /^world$/m);
      assert.equal(field(out, 'dataVersion'), '1');
      assert.equal(field(out, 'dataLength'), '5');
      assert.match(out, /^\[child\]$/m);
      assert.match(out, /^\[cli, zookeeper\]$/m);
      assert.match(out, /^\[\]$/m);
      assert.match(out, /Node does not exist: \/cli\/child/);
      assert.match(out, /Node does not exist: \/cli$/m);
      assert.match(out, /^ephemeralOwner = 0x0$/m);
    });

    test("an ephemeral created by one zkCli session disappears when that session ends", async () => {
      const first = await zkCli(server, ['create -e /cli-eph mine', 'stat /cli-eph']);
      assert.match(first, /^Created \/cli-eph$/m);
      const owner = field(first, 'ephemeralOwner');
      assert.ok(owner && owner !== '0x0', `ephemeralOwner of an ephemeral: ${owner}`);
      // On another member of an ensemble: sync first, as a new session may read a state a little behind.
      const second = await zkCli(server, ['sync /', 'stat /cli-eph'], 1);
      assert.match(second, /^Sync is OK$/m);
      assert.match(second, /Node does not exist: \/cli-eph/);
    });
  });
}
