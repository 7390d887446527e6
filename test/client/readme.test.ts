/**
 * The README's client and recipe examples, run as written against Apache
 * ZooKeeper and pulsekeeper: every ```ts block of the "Client and recipes" section
 * runs in its own process (the imports pointed at the sources, the address at the
 * test's server with a chroot of its own) and must exit 0 and print exactly the
 * ```text block that follows it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PulseClient } from '../../src/client/index.js';
import { clientTargets, type ClientTestServer } from '../support/client-targets.js';

const root = new URL('../..', import.meta.url).pathname;
const SECTION = '## Client and recipes';
const ADDRESS = '127.0.0.1:2181';

interface Example {
  line: number;
  code: string;
  output?: string;
}

function examples(): Example[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  assert.ok(start >= 0, `README.md has no "${SECTION}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const firstLine = readme.slice(0, start).split('\n').length + 1;
  const found: Example[] = [];
  const block = /^```(ts|text)\n([\s\S]*?)^```$/gm;
  for (let m; (m = block.exec(section)); ) {
    if (m[1] === 'ts') found.push({ line: firstLine + section.slice(0, m.index).split('\n').length - 1, code: m[2] });
    else if (found.length && found.at(-1)!.output === undefined) found.at(-1)!.output = m[2];
  }
  return found;
}

const all = examples();
const scratch = mkdtempSync(join(tmpdir(), 'pk-readme-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

test('the section has an example for the client and for each recipe, each with its output', () => {
  const code = all.map((e) => e.code).join('\n');
  for (const name of ['PulseClient', 'watch(', 'GroupMembership', 'LeaderElection', 'RoleAssignment', 'Lock', 'ReadWriteLock', 'watchConfig', 'Barrier', 'DoubleBarrier', 'DistributedCounter']) {
    assert.ok(code.includes(name), `no example uses ${name}`);
  }
  for (const e of all) assert.ok(e.output !== undefined, `the example at README.md:${e.line} has no text block with its output`);
});

/** Runs one example as a module of its own; resolves with its exit status and output. */
function runExample(e: Example, index: number, connectionString: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const source = e.code
    .replaceAll(`'pulsekeeper/client'`, `'${pathToFileURL(join(root, 'src/client/index.ts')).href}'`)
    .replaceAll(`'pulsekeeper/recipes'`, `'${pathToFileURL(join(root, 'src/recipes/index.ts')).href}'`)
    .replaceAll(`'${ADDRESS}'`, `'${connectionString}'`);
  const file = join(scratch, `example-${index}-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(file, source);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    // An example that never ends (a client left open, a wait that never returns) fails here.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

for (const target of clientTargets()) {
  describe(`README examples against ${target.name}`, () => {
    let server: ClientTestServer;
    before(async () => {
      server = await target.start({ tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 30_000 });
    });
    after(async () => server?.stop());

    test('every example runs and prints what the README shows', async () => {
      const admin = await PulseClient.connect(server.connectionString);
      for (const i of all.keys()) await admin.create(`/readme-${i}`);
      await admin.close();
      const results = await Promise.all(all.map((e, i) => runExample(e, i, `${server.connectionString}/readme-${i}`)));
      for (const [i, e] of all.entries()) {
        const r = results[i];
        assert.equal(r.status, 0, `README.md:${e.line} exited ${r.status}\n${r.stderr}`);
        assert.equal(r.stdout, e.output, `README.md:${e.line} printed something else`);
      }
    });
  });
}
