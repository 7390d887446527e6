/**
 * The shell driven as a user would: `-c` scripts (output, exit status, stopping at
 * the first failure) against Apache ZooKeeper and pulsekeeper, its output set
 * beside Apache ZooKeeper's own zkCli, and interactive sessions in a real
 * terminal (tmux) with tab completion, history kept across runs, clear errors
 * and watch events arriving while the prompt waits.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PulseClient, type Stat } from '../../src/client/index.js';
import { Shell } from '../../src/shell/shell.js';
import { clientTargets, type ClientTestServer } from '../support/client-targets.js';
import { javaCommand, zookeeperInstalled } from '../support/zookeeper.js';

const root = new URL('../..', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'pk-shell-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs `pulsekeeper shell` as a child (asynchronously: a server under test may live in this process). */
function shell(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'shell', ...args], {
      cwd: root,
      env: { ...process.env, PULSEKEEPER_HISTORY: join(scratch, 'script-history') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Apache ZooKeeper's zkCli with commands on stdin; everything it printed. */
function zkCli(connectionString: string, commands: string[]): Promise<string> {
  const { cmd, args } = javaCommand('org.apache.zookeeper.ZooKeeperMain', ['-server', connectionString], ['-Dzookeeper.jmx.log4j.disable=true']);
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

test('usage errors and an unreachable server exit non-zero with a clear message', async () => {
  const [unreachable, twoTargets, unterminated] = await Promise.all([
    shell('127.0.0.1:1', '--timeout', '600', '-c', 'ls /'),
    shell('a:1', 'b:2', '-c', 'ls /'),
    shell('127.0.0.1:1', '-c', 'set /a "x'),
  ]);
  assert.equal(unreachable.status, 1);
  assert.match(unreachable.stderr, /^cannot connect to 127\.0\.0\.1:1: /);
  assert.equal(twoTargets.status, 2);
  assert.match(twoTargets.stderr, /one connection string expected/);
  assert.equal(unterminated.status, 2);
  assert.match(unterminated.stderr, /unterminated " quote/);
});

test("config -c prints zkCli's client connection string of an ensemble: the config version, then each server's client address", async () => {
  // The servers here are standalone, with no membership in /zookeeper/config: an ensemble's is given.
  const config = [
    'server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181',
    'server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182',
    'server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183',
    'version=100000003',
  ].join('\n');
  const stat: Stat = { czxid: 0, mzxid: 3, ctime: 0, mtime: 0, version: -1, cversion: 0, aversion: -1, ephemeralOwner: 0n, dataLength: config.length, numChildren: 0, pzxid: 0 };
  const ensemble = { getConfig: async () => ({ data: Buffer.from(config), stat }) } as unknown as PulseClient;
  const lines: string[] = [];
  const sh = new Shell(ensemble, (t) => lines.push(t));
  assert.ok(await sh.run('config -c'));
  assert.deepEqual(lines, ['100000003 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183']);
  lines.length = 0;
  assert.ok(await sh.run('config -s'));
  assert.equal(lines[0], config);
  assert.match(lines[1], /^cZxid = 0x0\n(.+\n){5}dataVersion = -1\n/);
});

for (const target of clientTargets()) {
  describe(`shell scripts against ${target.name}`, () => {
    let server: ClientTestServer;
    before(async () => {
      server = await target.start({ tickTime: 200, extendedTypesEnabled: true });
    });
    after(async () => server?.stop());

    test('-c runs every command and flag; output as zkCli prints it', async () => {
      const r = await shell(
        server.connectionString,
        '-c',
        [
          'create /s "hello world"',
          'create -e /s/eph',
          'create -s /s/seq- x',
          'create -c /s/box',
          'create -t 60000 /s/ttl',
          'create /s/open "" world:anyone:ra',
          'get -s /s',
          'ls /s',
          'ls -s /s',
          'ls -R /s',
          'set -s /s bye',
          'set -v 1 /s "semi;colon"',
          'get /s',
          'get /s/eph',
          'stat /s/eph',
          'getAcl /s',
          'getAcl -s /s/open',
          'setAcl -s /s world:anyone:cdrwa',
          'setAcl -R /s world:anyone:cdrwa',
          'addauth digest user:secret',
          'whoami',
          'sync /s',
          'getEphemerals /s',
          'getAllChildrenNumber /s',
          'addWatch /s',
          'addWatch -m PERSISTENT /s/box',
          'removewatches /s -a',
          'removewatches /s/box -d -l',
          'config',
          'help',
          'deleteall -b 2 /s',
          'ls /',
        ].join('; '),
      );
      assert.equal(r.stderr, '');
      assert.equal(r.status, 0, r.stdout);
      assert.match(r.stdout, /^Created \/s$/m);
      assert.match(r.stdout, /^Created \/s\/seq-0000000001$/m);
      assert.match(r.stdout, /^hello world\ncZxid = 0x[0-9a-f]+\nctime = /m);
      assert.match(r.stdout, /^\[box, eph, open, seq-0000000001, ttl\]\ncZxid/m);
      assert.match(r.stdout, /^\/s\n\/s\/box\n\/s\/eph\n\/s\/open\n\/s\/seq-0000000001\n\/s\/ttl$/m);
      assert.match(r.stdout, /^dataVersion = 1$/m, 'set -s printed the Stat');
      assert.match(r.stdout, /^semi;colon$/m);
      assert.match(r.stdout, /^null$/m, 'empty data');
      assert.match(r.stdout, /^ephemeralOwner = 0x[1-9a-f][0-9a-f]*$/m);
      assert.match(r.stdout, /^'world,'anyone\n: cdrwa$/m);
      assert.match(r.stdout, /^'world,'anyone\n: ra\ncZxid/m);
      assert.match(r.stdout, /^Auth scheme: User\n(.+\n)*digest: user$/m);
      assert.match(r.stdout, /^Sync is OK$/m);
      assert.match(r.stdout, /^\[\/s\/eph\]$/m);
      assert.match(r.stdout, /^5$/m);
      assert.match(r.stdout, /^ {2}setAcl \[-s\] \[-v version\] \[-R\] path acl$/m);
      assert.match(r.stdout, /^\[zookeeper\]$/m, 'deleteall removed the subtree');
    });

    test('-c with version and watch flags: delete -v, setAcl -v, stat -w, ls -w, addWatch report events; removewatches reports the removal, then none; config -c and -s', async () => {
      const r = await shell(
        server.connectionString,
        '-c',
        [
          'create /f x',
          'create /f/a',
          'stat -w /f',
          'set /f y',
          'ls -w /f',
          'create /f/b',
          'setAcl -v 0 /f world:anyone:cdrwa',
          'setAcl -s -v 1 /f world:anyone:cdrwa',
          'delete -v 0 /f/a',
          'addWatch /f',
          'create /f/c',
          'set /f/c z',
          'removewatches /f',
          'create /f/d',
          'addWatch -m PERSISTENT /f',
          'set /f w',
          'create /f/e',
          'removewatches /f -a',
          'set /f v',
          'deleteall /f',
          'config -c',
          'config -s',
        ].join('; '),
      );
      assert.equal(r.stderr, '');
      assert.equal(r.status, 0, r.stdout);
      // A change by the watching session reaches it before the reply, so each event sits where its change ran.
      assert.deepEqual(r.stdout.match(/^WatchedEvent .*$/gm), [
        'WatchedEvent state:SyncConnected type:NodeDataChanged path:/f', // stat -w, then set
        'WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/f', // ls -w, then create
        'WatchedEvent state:SyncConnected type:NodeCreated path:/f/c', // addWatch (recursive by default)
        'WatchedEvent state:SyncConnected type:NodeDataChanged path:/f/c',
        'WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/f', // removewatches
        'WatchedEvent state:SyncConnected type:NodeDataChanged path:/f', // addWatch -m PERSISTENT
        'WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/f',
        'WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/f', // removewatches -a
      ]);
      assert.match(r.stdout, /^Created \/f\/a\ncZxid = 0x[0-9a-f]+\n(.+\n){5}dataVersion = 0\n/m, 'stat -w printed the Stat');
      assert.match(r.stdout, /type:NodeDataChanged path:\/f\n\[a\]\n/, 'ls -w printed the children');
      assert.match(r.stdout, /^aclVersion = 2$/m, 'setAcl -v took the versions it was given');
      // A standalone server has no membership: zkCli prints an empty version and no hosts, then the empty config's Stat.
      assert.match(r.stdout, /\n \n\ncZxid = 0x0\n(.+\n){6}aclVersion = -1\n(.+\n){3}$/);
      const c = await PulseClient.connect(server.connectionString);
      assert.equal(await c.exists('/f'), null);
      await c.close();
    });

    test('a script stops at the first failure and exits 1, with the message on stderr', async () => {
      const [missing, usage] = await Promise.all([
        shell(server.connectionString, '-c', 'get /missing; create /after'),
        shell(server.connectionString, '-c', 'get; create /after'),
      ]);
      assert.equal(missing.status, 1);
      assert.equal(missing.stderr, 'Node does not exist: /missing\n');
      assert.equal(usage.status, 1);
      assert.equal(usage.stderr, 'path required\nusage: get [-s] [-w] path\n');
      const c = await PulseClient.connect(server.connectionString);
      assert.equal(await c.exists('/after'), null, 'nothing ran after a failure');
      await c.close();
    });

    test('errors are reported in zkCli\'s words, or plainly where zkCli has none', async () => {
      const c = await PulseClient.connect(server.connectionString);
      const errors: string[] = [];
      const sh = new Shell(c, () => {}, (t) => errors.push(t));
      const cases: [string, RegExp][] = [
        ['set -v 7 /v y', /^version No is not valid : \/v$/],
        ['delete -v 7 /v', /^version No is not valid : \/v$/],
        ['setAcl -v 7 /v world:anyone:cdrwa', /^version No is not valid : \/v$/],
        ['delete /n', /^Node not empty: \/n$/],
        ['create /n/x/y', /^Node does not exist: \/n\/x\/y$/],
        ['create /n', /^Node already exists: \/n$/],
        ['set /ro x', /^Insufficient permission : \/ro$/],
        ['create /e/child', /^Ephemerals cannot have children: \/e\/child$/],
        ['removewatches /n -c', /^KeeperErrorCode = No such watcher for \/n$/],
        ['ls -x /', /^unknown option -x\nusage: ls \[-s\] \[-w\] \[-R\] path$/],
        ['get relative', /invalid path "relative": path must start with \/ character/],
        ['frob', /^unknown command "frob"; "help" lists them$/],
        ['create -e -t 10 /t', /^TTLs cannot be used with Ephemeral znodes\nusage: create/],
        ['create -c -s /t', /^-c \(container\) cannot be combined/],
        ['set -v x /v y', /^-v needs an integer, got "x"/],
        ['setAcl /v world:anyone:rwz', /^bad permission "z"/],
        ['addWatch -m sometimes /v', /^-m is PERSISTENT or PERSISTENT_RECURSIVE/],
        ['get /v extra', /^too many arguments: extra/],
        ['redo 99', /^no command number 99 in the history/],
        ['get "/v', /^unterminated " quote$/],
      ];
      for (const setup of ['create /v x', 'create /n', 'create /n/c', 'create /ro x world:anyone:r', 'create -e /e']) assert.ok(await sh.run(setup), setup);
      for (const [line, message] of cases) {
        errors.length = 0;
        assert.equal(await sh.run(line), false, line);
        assert.match(errors.join('\n'), message, line);
      }
      await sh.run('deleteall /n');
      await c.close();
    });

    test("output matches Apache ZooKeeper's zkCli", { skip: (target.name !== 'zookeeper' || !zookeeperInstalled()) && 'compared once, against Apache ZooKeeper' }, async () => {
      const c = await PulseClient.connect(server.connectionString);
      let out = '';
      const sh = new Shell(c, (t) => (out += t + '\n'));
      for (const setup of ['create /cmp data', 'create -e /cmp/e', 'create /cmp/f "" world:anyone:cdr']) assert.ok(await sh.run(setup));
      const commands = [
        'get -s /cmp',
        'ls -s /cmp',
        'ls -w /cmp',
        'stat /cmp/f',
        'stat -w /cmp/f',
        'getAcl -s /cmp/f',
        'getAllChildrenNumber /cmp',
        'sync /cmp',
        'get /cmp/nope',
        'delete -v 9 /cmp/f',
        'setAcl -v 9 /cmp/f world:anyone:cdr',
        'config -s',
        'whoami',
        'get -w /cmp',
        'removewatches /cmp -d',
        'removewatches /cmp -c', // the watch ls -w set
        'addWatch -m PERSISTENT /cmp',
        'removewatches /cmp -a',
      ];
      const ours: string[] = [];
      for (const cmd of commands) {
        out = '';
        await sh.run(cmd);
        ours.push(out.trimEnd());
      }
      const theirs = await zkCli(server.connectionString, commands);
      for (const [i, cmd] of commands.entries()) {
        if (cmd.startsWith('addWatch')) {
          assert.equal(ours[i], '', cmd);
          continue;
        }
        assert.ok(ours[i].length > 0, cmd);
        assert.ok(theirs.includes(ours[i]), `${cmd}: zkCli did not print\n${ours[i]}\n--- zkCli printed ---\n${theirs}`);
      }
      const removals = (text: string) => text.match(/^WatchedEvent .*WatchRemoved.*$/gm);
      assert.deepEqual(removals(ours.join('\n')), removals(theirs), 'the same removal events, in the same order');
      await c.close();
    });
  });
}

const hasTmux = spawnSync('tmux', ['-V']).status === 0;

describe('the shell in a terminal', { skip: !hasTmux && 'tmux is not installed' }, () => {
  let server: ClientTestServer;
  const socket = `pk-shell-${process.pid}`;
  const run = promisify(execFile);
  const tmux = async (...args: string[]) => (await run('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' })).stdout;
  const history = join(scratch, 'history');
  before(async () => {
    server = await clientTargets().at(-1)!.start({ tickTime: 200 });
  });
  after(async () => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    await server?.stop();
  });

  /** Starts the shell in a fresh tmux window and returns helpers to type and read the screen. */
  async function terminal(name: string) {
    const command = `env PULSEKEEPER_HISTORY=${history} ${process.execPath} --import tsx src/cli/main.ts shell ${server.connectionString}`;
    await tmux('new-session', '-d', '-s', name, '-x', '150', '-y', '50', '-c', root, command);
    const screen = async () => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name);
    return {
      screen,
      type: (...keys: string[]) => tmux('send-keys', '-t', name, ...keys),
      async waitFor(re: RegExp, ms = 15_000) {
        const deadline = performance.now() + ms;
        while (!re.test(await screen())) {
          if (performance.now() > deadline) throw new Error(`the screen never showed ${re}:\n${await screen()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async closed(ms = 10_000) {
        const deadline = performance.now() + ms;
        while ((await tmux('list-sessions').catch(() => '')).includes(`${name}:`)) {
          if (performance.now() > deadline) throw new Error(`the shell in ${name} did not exit`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    };
  }

  test('completion, clear errors, watch events, history and redo', async () => {
    const t = await terminal('first');
    await t.waitFor(/\[pulsekeeper: .*\(connected\) 0\] $/m);
    await t.type('create /completion-target found-me', 'Enter');
    await t.waitFor(/^Created \/completion-target$/m);
    // A unique path completes in place; several matches are listed on a second Tab.
    await t.type('get /completion-t', 'Tab');
    await t.waitFor(/get \/completion-target$/m);
    await t.type('Enter');
    await t.waitFor(/^found-me$/m);
    await t.type('create /completion-tree', 'Enter');
    await t.waitFor(/^Created \/completion-tree$/m);
    await t.type('ls /completion-t', 'Tab');
    // A second Tab, as a person presses it (separately), lists the choices.
    await t.waitFor(/ls \/completion-t$/m);
    for (let i = 0; i < 20 && !/\/completion-target\s+\/completion-tree/.test(await t.screen()); i++) {
      await new Promise((r) => setTimeout(r, 200));
      await t.type('Tab');
    }
    await t.waitFor(/\/completion-target\s+\/completion-tree/);
    await t.type('C-u');
    // A path completes below the root too.
    await t.type('create /completion-tree/nested-leaf', 'Enter');
    await t.waitFor(/^Created \/completion-tree\/nested-leaf$/m);
    await t.type('get /completion-tree/nes', 'Tab');
    await t.waitFor(/get \/completion-tree\/nested-leaf$/m);
    await t.type('Enter');
    await t.waitFor(/\] get \/completion-tree\/nested-leaf\nnull$/m);
    // Command names complete too.
    await t.type('getAllC', 'Tab');
    await t.waitFor(/getAllChildrenNumber $/m);
    await t.type('/completion-target', 'Enter');
    await t.waitFor(/getAllChildrenNumber \/completion-target\n0$/m);
    await t.type('get', 'Enter');
    await t.waitFor(/^path required\nusage: get \[-s\] \[-w\] path$/m);
    await t.type('delete /nothing-here', 'Enter');
    await t.waitFor(/^Node does not exist: \/nothing-here$/m);
    // A watch set at the prompt reports while the prompt waits.
    await t.type('get -w /completion-target', 'Enter');
    await t.waitFor(/\] get -w \/completion-target\nfound-me$/m);
    const other = await PulseClient.connect(server.connectionString);
    await other.setData('/completion-target', Buffer.from('changed'));
    await other.close();
    await t.waitFor(/WatchedEvent state:SyncConnected type:NodeDataChanged path:\/completion-target/);
    // History: the up arrow brings back the previous command; `history` numbers them for `redo`.
    await t.type('Up', 'Enter');
    await t.waitFor(/^changed$/m);
    await t.type('history', 'Enter');
    await t.waitFor(/^0 - create \/completion-target found-me$/m);
    await t.type('redo 1', 'Enter');
    await t.waitFor(/\] redo 1\nchanged$/m);
    await t.type('quit', 'Enter');
    await t.closed();
    assert.match(readFileSync(history, 'utf8'), /^create \/completion-target found-me$/m);
  });

  test('history is kept across runs; Ctrl-D quits', async () => {
    const t = await terminal('second');
    await t.waitFor(/\(connected\) 0\] $/m);
    await t.type('Up');
    await t.waitFor(/\] get -w \/completion-target$|\] get \/completion-target$/m);
    await t.type('C-u', 'C-d');
    await t.closed();
  });
});
