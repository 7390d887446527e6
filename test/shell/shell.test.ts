/**
 * The shell driven as a user would: scripts through -c (exit status), and an
 * interactive session in a real terminal (tmux) with history and tab completion.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, type RunningServer } from '../../src/index.js';

let server: RunningServer;
before(async () => {
  server = await startServer({});
});
after(async () => server?.close());

/** Runs the shell as a child (asynchronously: the server under test lives in this process). */
const shell = (script: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'shell', server.connectionString, '-c', script]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });

test('-c runs a script; output as zkCli prints it; exit status reports failure', async () => {
  const ok = await shell('create /s hello; create -e /s/eph; get -s /s; ls /s; set /s bye; get /s; getAcl /s; stat /s/eph; deleteall /s; ls /');
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^Created \/s$/m);
  assert.match(ok.stdout, /^hello$/m);
  assert.match(ok.stdout, /^dataVersion = 0$/m);
  assert.match(ok.stdout, /^\[eph\]$/m);
  assert.match(ok.stdout, /^bye$/m);
  assert.match(ok.stdout, /^'world,'anyone\n: cdrwa$/m);
  assert.match(ok.stdout, /^ephemeralOwner = 0x[1-9a-f][0-9a-f]*$/m);
  assert.match(ok.stdout, /^\[zookeeper\]$/m);
  const bad = await shell('get /missing');
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /Node does not exist: \/missing/);
});

const hasTmux = spawnSync('tmux', ['-V']).status === 0;

test('an interactive session in a terminal, with tab completion of paths and history', { skip: !hasTmux && 'tmux is not installed' }, async () => {
  const session = `pk-shell-${process.pid}`;
  const run = promisify(execFile);
  const tmux = async (...args: string[]) => (await run('tmux', args, { encoding: 'utf8' })).stdout;
  const screen = () => tmux('capture-pane', '-p', '-t', session);
  const waitFor = async (re: RegExp) => {
    const deadline = Date.now() + 15_000;
    while (!re.test(await screen())) {
      if (Date.now() > deadline) throw new Error(`screen never showed ${re}:\n${await screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40', `${process.execPath} --import tsx src/cli/main.ts shell ${server.connectionString}`);
  try {
    await waitFor(/\[pulsekeeper: .*\(connected\)\]/);
    await tmux('send-keys', '-t', session, 'create /completion-target found-me', 'Enter');
    await waitFor(/Created \/completion-target/);
    await tmux('send-keys', '-t', session, 'get /completion-t', 'Tab');
    await waitFor(/get \/completion-target/);
    await tmux('send-keys', '-t', session, 'Enter');
    await waitFor(/^found-me$/m);
    // History: the previous command comes back with the up arrow.
    await tmux('send-keys', '-t', session, 'Up', 'Enter');
    await waitFor(/found-me[\s\S]*found-me/);
    await tmux('send-keys', '-t', session, 'quit', 'Enter');
  } finally {
    spawnSync('tmux', ['kill-session', '-t', session]);
  }
});
