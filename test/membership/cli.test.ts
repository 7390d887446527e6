/**
 * `pulsekeeper membership` through the command's entry (src/cli/main.ts), as an
 * operator runs it: two members on loopback sharing a key file see each other; the
 * key files are rewritten (the new key first, the old one kept; then the new one
 * alone) and each member is sent SIGHUP, reports the reload, and keeps talking to
 * the other under the new key; SIGTERM leaves the cluster gracefully.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyring } from '../../src/membership/keyring.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Line {
  event: string;
  id?: string;
  address?: string;
  keys?: number;
  stats?: { packetsIn: number; packetsOut: number; droppedAuth: number; droppedParse: number };
  view: string[];
}

interface Member {
  child: ChildProcess;
  lines: Line[];
  stderr: string;
  exit: Promise<number | null>;
}

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function launch(id: string, keyFile: string, seeds: string[] = []): Member {
  const args = [...['--import', 'tsx', MAIN, 'membership', '--bind', '127.0.0.1:0', '--id', id, '--key', keyFile], ...(seeds.length ? ['--seeds', seeds.join(',')] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const m: Member = { child, lines: [], stderr: '', exit: new Promise((r) => child.on('exit', (code) => r(code))) };
  child.stderr!.on('data', (chunk) => (m.stderr += chunk));
  let buf = '';
  child.stdout!.on('data', (chunk) => {
    buf += chunk;
    for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) m.lines.push(JSON.parse(buf.slice(0, nl)) as Line);
  });
  return m;
}

async function until<T>(get: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const viewOf = (m: Member) => m.lines.at(-1)?.view.join(',');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('pulsekeeper membership --key: members see each other, reload a rotated key file on SIGHUP, and keep seeing each other', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-cli-keys-'));
  const [oldKey, newKey] = [Keyring.generateKey(), Keyring.generateKey()];
  // One key file per member, as on separate hosts.
  const files = ['ka', 'kb'].map((n) => join(dir, n));
  const write = (...keys: Buffer[]) => {
    for (const f of files) writeFileSync(f, `# membership keys, primary first\n${keys.map((k) => k.toString('base64')).join('\n')}\n`);
  };
  write(oldKey);
  // Starting node with tsx takes a while on a busy machine; that is not what is tested.
  const a = launch('ka', files[0]);
  const started = await until(() => a.lines.find((l) => l.event === 'started'), 60_000, 'ka to start');
  assert.match(started.address!, /^127\.0\.0\.1:\d+$/);
  const b = launch('kb', files[1], [started.address!]);
  const members = [a, b];
  await until(() => members.every((m) => viewOf(m) === 'ka,kb'), 60_000, 'the two members to see each other');
  assert.ok(a.lines.some((l) => l.event === 'join' && l.id === 'kb'), 'ka printed kb joining');

  /** Sends SIGHUP to both and returns the reload line each prints in answer. */
  const reload = async () => {
    const before = members.map((m) => m.lines.length);
    for (const m of members) m.child.kill('SIGHUP');
    return Promise.all(members.map((m, k) => until(() => m.lines.slice(before[k]).find((l) => l.event === 'reloaded'), 30_000, 'the reload line')));
  };

  // Rotation, step one: the new key first (it seals from now on), the old kept (packets still in flight open).
  write(newKey, oldKey);
  for (const line of await reload()) {
    assert.equal(line.keys, 2);
    assert.deepEqual(line.view, ['ka', 'kb']);
    assert.ok(line.stats!.packetsIn > 0 && line.stats!.packetsOut > 0, 'the reload line carries the packet counters');
  }
  await sleep(1000);
  // Step two: the old key removed. Both seal with the new key already, so nothing is refused from here on.
  write(newKey);
  const removed = await reload();
  for (const line of removed) assert.equal(line.keys, 1);
  // Long enough for a failure to be detected (suspicion 2.5 s and a last-chance probe) had they stopped understanding each other.
  await sleep(5000);
  const later = await reload();
  for (const [k, line] of later.entries()) {
    assert.deepEqual(line.view, ['ka', 'kb'], 'they still see each other');
    assert.ok(line.stats!.packetsIn > removed[k].stats!.packetsIn + 5, 'packets kept arriving under the new key alone');
    assert.equal(line.stats!.droppedAuth, removed[k].stats!.droppedAuth, 'none of them refused');
  }

  // A bad key file is refused on SIGHUP; the member keeps its keys and runs on.
  writeFileSync(files[0], 'not a key\n');
  const reloads = a.lines.filter((l) => l.event === 'reloaded').length;
  a.child.kill('SIGHUP');
  await until(() => /key file not reloaded: membership keys are 32 bytes/.test(a.stderr), 30_000, 'ka to refuse the bad key file');
  assert.equal(a.child.exitCode, null, 'ka still runs');
  assert.equal(a.lines.filter((l) => l.event === 'reloaded').length, reloads, 'and prints no reload line');

  // SIGTERM: ka leaves gracefully, kb reports it left, and ka exits with 0.
  a.child.kill('SIGTERM');
  assert.equal(await a.exit, 0);
  await until(() => b.lines.find((l) => l.event === 'left' && l.id === 'ka'), 30_000, 'kb to report ka left');
  assert.equal(viewOf(b), 'kb');
  b.child.kill('SIGTERM');
  assert.equal(await b.exit, 0);
});
