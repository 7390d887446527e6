/**
 * Recovery of a real server process from its data directory: a write torn at the end
 * of the log is cut off with a log line and the server starts; damage in the middle
 * of the log stops it with a message naming the file and the byte offset; a snapshot
 * plus the log after it gives back everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpCode } from '../../src/protocol/opcodes.js';
import type { ChildrenResponse } from '../../src/protocol/records.js';
import { freePort } from '../support/ports.js';
import { RawClient } from '../support/raw-client.js';
import { fourLetter } from '../support/zookeeper.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

interface Run {
  port: number;
  stderr: () => string;
  exited: Promise<number | null>;
  kill(sig?: NodeJS.Signals): Promise<void>;
}

async function start(dir: string, extra: string[] = []): Promise<Run> {
  const port = await freePort();
  writeFileSync(join(dir, 'zoo.cfg'), [`dataDir=${dir}`, `clientPort=${port}`, 'clientPortAddress=127.0.0.1', ...extra].join('\n') + '\n');
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'start', '--config', join(dir, 'zoo.cfg')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    port,
    stderr: () => err,
    exited,
    async kill(sig: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      await exited;
    },
  };
}

async function serving(run: Run): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const done = await Promise.race([run.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 50))]);
    if (done) return false;
    try {
      if ((await fourLetter(run.port, 'srvr')).includes('Mode: standalone')) return true;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`not serving after 30 s:\n${run.stderr()}`);
  }
}

async function writeNodes(port: number, from: number, to: number): Promise<void> {
  const c = await RawClient.connect(port);
  if (from === 0) await c.request({ type: OpCode.create, path: '/r', data: Buffer.alloc(0), acl: OPEN, flags: 0 });
  const replies = [];
  for (let i = from; i < to; i++) replies.push(c.request({ type: OpCode.create, path: `/r/n${i}`, data: Buffer.alloc(100, i % 256), acl: OPEN, flags: 0 }));
  for (const r of await Promise.all(replies)) assert.equal(r.err, 0);
  await c.close();
}

async function children(port: number): Promise<string[]> {
  const c = await RawClient.connect(port);
  const r = await c.request({ type: OpCode.getChildren, path: '/r', watch: false });
  await c.close();
  return (r.response as ChildrenResponse).children;
}

/** The newest WAL segment file of a data directory. */
function lastSegment(dir: string): string {
  const wal = join(dir, 'wal');
  const files = readdirSync(wal).filter((f) => f.endsWith('.log')).sort();
  return join(wal, files[files.length - 1]);
}

test('a torn tail is cut off with a log line; everything acknowledged before it is there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-recover-'));
  try {
    let run = await start(dir);
    assert.ok(await serving(run));
    await writeNodes(run.port, 0, 300);
    await run.kill('SIGKILL');
    // A crash in the middle of writing a record: half a record's worth of bytes at the end.
    const seg = lastSegment(dir);
    const bytes = readFileSync(seg);
    appendFileSync(seg, bytes.subarray(bytes.length - 150, bytes.length - 60));
    run = await start(dir);
    assert.ok(await serving(run), run.stderr());
    assert.match(run.stderr(), /truncated a torn record at the end of the log/);
    assert.equal((await children(run.port)).length, 300);
    await run.kill('SIGTERM');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damage in the middle of the log refuses to start, naming the file and offset', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-recover-'));
  try {
    const run = await start(dir);
    assert.ok(await serving(run));
    await writeNodes(run.port, 0, 300);
    await run.kill('SIGKILL');
    const seg = lastSegment(dir);
    const bytes = readFileSync(seg);
    const at = Math.floor(bytes.length / 2);
    bytes[at] ^= 0xff;
    writeFileSync(seg, bytes);
    const again = await start(dir);
    assert.equal(await serving(again), false, 'it does not serve');
    assert.notEqual(await again.exited, 0, 'it exits with a failure status');
    const message = again.stderr();
    assert.ok(message.includes(seg), `names the file:\n${message}`);
    assert.match(message, /at byte \d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after snapshots, a restart loads the newest one and replays the log after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-recover-'));
  try {
    let run = await start(dir, ['snapCount=100']);
    assert.ok(await serving(run));
    await writeNodes(run.port, 0, 1050);
    await run.kill('SIGKILL');
    const snaps = readdirSync(join(dir, 'snap')).filter((f) => f.endsWith('.snap'));
    assert.ok(snaps.length >= 1, 'snapshots were taken while writing');
    assert.ok(snaps.length <= 2, 'only the newest two are kept');
    const walBytes = readdirSync(join(dir, 'wal')).reduce((n, f) => n + statSync(join(dir, 'wal', f)).size, 0);
    assert.ok(walBytes > 0);
    run = await start(dir, ['snapCount=100']);
    assert.ok(await serving(run), run.stderr());
    assert.match(run.stderr(), /snapshot loaded/);
    const names = await children(run.port);
    assert.equal(names.length, 1050);
    await run.kill('SIGTERM');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
