#!/usr/bin/env node
// Runs every test/**/*.test.ts file with node's built-in test runner (TypeScript via tsx).
// Files under test/long/ run only with PULSEKEEPER_LONG=1 (soak, fuzz and simulation runs).
// Extra arguments narrow the run to files whose path contains one of them.
//
// A test that hangs must fail, not stall CI: each file (and each test in it) has a time
// limit (PULSEKEEPER_TEST_TIMEOUT_MS overrides it), a file whose tests are done exits even
// if it left handles open, and whatever processes the tests started and left behind (a
// ZooKeeper or an ensemble member of a file that timed out) are killed when the run ends.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const long = process.env.PULSEKEEPER_LONG === '1';
const filters = process.argv.slice(2);
const timeoutMs = Number(process.env.PULSEKEEPER_TEST_TIMEOUT_MS ?? (long ? 3 * 3600_000 : 600_000));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name === 'support') continue;
      if (name === 'long' && !long) continue;
      out.push(...walk(p));
    } else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = walk(join(root, 'test')).map((f) => relative(root, f));
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Its own process group, so that everything the tests started can be found and ended afterwards.
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${timeoutMs}`, '--test-force-exit', ...files],
  { cwd: root, stdio: 'inherit', detached: true },
);
const endGroup = (signal) => {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already empty
  }
};
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => endGroup(signal));
child.on('exit', (code, signal) => {
  endGroup('SIGKILL');
  process.exit(code ?? (signal ? 1 : 0));
});
