/**
 * The operator commands as a user runs them: `pulsekeeper ensemble --size 3` starts a
 * local ensemble and prints its connection string; `pulsekeeper status` reports its
 * health and says, by exit status, when a member is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OpCode } from '../../src/protocol/opcodes.js';
import { RawClient } from '../support/raw-client.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts')];

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A run of n free ports starting at a random base. */
async function freeRun(n: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
}

async function status(conn: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await promisify(execFile)(CLI[0], [...CLI.slice(1), 'status', conn], { cwd: ROOT });
    return { code: 0, out: stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, out: err.stdout };
  }
}

test('pulsekeeper ensemble starts a working ensemble; status reports it and notices a dead member', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-cli-'));
  const base = await freeRun(3);
  const peer = await freeRun(3);
  const child = spawn(CLI[0], [...CLI.slice(1), 'ensemble', '--size', '3', '--base-port', String(base), '--peer-port', String(peer), '--data-dir', dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes('connection string:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const conn = /connection string: (\S+)/.exec(out)?.[1];
    assert.equal(conn, `127.0.0.1:${base},127.0.0.1:${base + 1},127.0.0.1:${base + 2}`);

    let s = await status(conn!);
    for (let i = 0; i < 100 && s.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      s = await status(conn!);
    }
    assert.equal(s.code, 0, s.out);
    assert.match(s.out, /healthy: leader is \d/);
    assert.equal(s.out.match(/follower/g)?.length, 2);

    // The ensemble takes writes through any member.
    const c = await RawClient.connect(base + 2);
    assert.equal((await c.request({ type: OpCode.create, path: '/cli', data: Buffer.from('x'), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 })).err, 0);
    await c.close();

    // A member killed: status says so, with a non-zero exit.
    const leader = Number(/healthy: leader is (\d)/.exec(s.out)![1]);
    const victim = leader === 1 ? 2 : 1;
    const pid = Number((await promisify(execFile)('pgrep', ['-f', join(dir, `m${victim}`, 'zoo.cfg')])).stdout.trim().split('\n')[0]);
    process.kill(pid, 'SIGKILL');
    let after = await status(`127.0.0.1:${base + leader - 1}`);
    for (let i = 0; i < 100 && after.code === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await status(`127.0.0.1:${base + leader - 1}`);
    }
    assert.equal(after.code, 1, after.out);
    assert.match(after.out, new RegExp(`degraded: ${victim} not answering`));
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'stops its members and exits cleanly');
    rmSync(dir, { recursive: true, force: true });
  }
});
