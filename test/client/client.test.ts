/**
 * The client's operations against Apache ZooKeeper and pulsekeeper: every
 * operation and its typed errors, multi, watches as callbacks and as async
 * iterators, chroot and auth.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthFailedError,
  BadArgumentsError,
  BadVersionError,
  ConnectionLossError,
  NodeExistsError,
  NoAuthError,
  NoNodeError,
  NotEmptyError,
  NoWatcherError,
  PulseClient,
  ReconfigDisabledError,
  ZooKeeperError,
  type WatchEvent,
} from '../../src/client/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { clientTargets, connectTo, type ClientTestServer } from '../support/client-targets.js';
import { sleep, until } from '../support/client-faults.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const digest = (user: string) => ({ scheme: 'digest', auth: Buffer.from(`${user}:secret`) });

for (const target of clientTargets({ ensemble: true })) {
  describe(`client against ${target.name}`, () => {
    let server: ClientTestServer;
    let c: PulseClient;
    before(async () => {
      server = await target.start({ tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 10_000, extendedTypesEnabled: true });
      c = await connectTo(server, { sessionTimeoutMs: 4000 });
    });
    after(async () => {
      await c?.close();
      await server?.stop();
    });

    test('operations and typed errors', async () => {
      assert.equal(c.state, 'connected');
      assert.equal(await c.create('/a', Buffer.from('1')), '/a');
      await assert.rejects(c.create('/a'), NodeExistsError);
      await assert.rejects(c.create('/x/y'), NoNodeError);
      const seq = await c.create('/a/s-', Buffer.alloc(0), { mode: 'persistent-sequential' });
      assert.equal(seq, '/a/s-0000000000');
      await c.create('/a/e', Buffer.alloc(0), { mode: 'ephemeral' });
      assert.deepEqual(await c.getEphemerals('/a'), ['/a/e']);
      const { data, stat } = await c.getData('/a');
      assert.equal(data.toString(), '1');
      assert.equal((await c.setData('/a', Buffer.from('2'), stat.version)).version, 1);
      await assert.rejects(c.setData('/a', Buffer.from('3'), 0), BadVersionError);
      assert.equal(await c.exists('/nope'), null);
      assert.deepEqual((await c.getChildren('/a')).sort(), ['e', 's-0000000000']);
      assert.equal((await c.getChildren2('/a')).stat.numChildren, 2);
      assert.equal(await c.getAllChildrenNumber('/a'), 2);
      await assert.rejects(c.delete('/a'), NotEmptyError);
      const err = await c.delete('/nope').catch((e) => e);
      assert.ok(err instanceof ZooKeeperError && err.code === ErrorCode.NONODE && err.path === '/nope');
      const readOnly = [{ perms: 1, id: { scheme: 'world', id: 'anyone' } }];
      await c.create('/locked', Buffer.alloc(0), { acl: readOnly });
      await assert.rejects(c.setData('/locked', Buffer.from('x')), NoAuthError);
      assert.deepEqual((await c.getACL('/locked')).acl, readOnly);
      await c.create('/acl');
      assert.equal((await c.setACL('/acl', readOnly, 0)).aversion, 1);
      await c.sync('/');
      assert.ok((await c.whoAmI()).some((i) => i.authScheme === 'ip'));
      await assert.rejects(c.reconfig({ joining: 'server.9=127.0.0.1:1:2;3' }), ReconfigDisabledError);
      assert.equal(typeof (await c.getConfig()).data.length, 'number');
    });

    test('container and TTL nodes', async () => {
      await c.create('/box', Buffer.alloc(0), { mode: 'container' });
      assert.ok(await c.exists('/box'));
      const ttl = await c.create2('/ttl-', Buffer.alloc(0), { mode: 'persistent-sequential-ttl', ttlMs: 60_000 });
      assert.match(ttl.path, /^\/ttl-\d{10}$/);
      await assert.rejects(c.create('/ttl-bad', Buffer.alloc(0), { mode: 'persistent-ttl', ttlMs: 0 }), BadArgumentsError);
    });

    test('paths and modes are checked before anything is sent', async () => {
      for (const bad of ['', 'relative', '/trailing/', '/a//b', '/a/./b']) {
        const e = await c.getData(bad).catch((x) => x);
        assert.ok(e instanceof BadArgumentsError, `${JSON.stringify(bad)}: ${e}`);
        assert.match(e.message, /invalid path/);
      }
      // A sequential node's prefix may end in '/': the server appends the counter.
      await c.create('/dir');
      assert.match(await c.create('/dir/', Buffer.alloc(0), { mode: 'persistent-sequential' }), /^\/dir\/\d{10}$/);
      await assert.rejects(c.create('/m', Buffer.alloc(0), { mode: 'bogus' as never }), /unknown create mode/);
      assert.equal(c.state, 'connected', 'bad input left the connection alone');
    });

    test('multi is atomic, covers every create mode and reports the failing operation', async () => {
      const ok = await c.multi([
        { op: 'create', path: '/m', data: Buffer.from('m') },
        { op: 'create', path: '/m/1' },
        { op: 'create', path: '/m/box', mode: 'container' },
        { op: 'create', path: '/m/ttl', mode: 'persistent-ttl', ttlMs: 60_000 },
        { op: 'check', path: '/m', version: 0 },
        { op: 'setData', path: '/m', data: Buffer.from('n') },
      ]);
      assert.equal(ok.length, 6);
      assert.deepEqual((await c.getChildren('/m')).sort(), ['1', 'box', 'ttl']);
      const err = await c.multi([{ op: 'create', path: '/m/2' }, { op: 'delete', path: '/m/nope' }]).catch((e) => e);
      assert.ok(err instanceof NoNodeError);
      assert.equal(err.failedOp, 1);
      assert.equal(await c.exists('/m/2'), null);
      const reads = await c.multiRead([
        { op: 'getData', path: '/m' },
        { op: 'getChildren', path: '/nope' },
      ]);
      assert.equal((reads[0] as { data: Buffer }).data.toString(), 'n');
      assert.deepEqual(reads[1], { type: -1, err: ErrorCode.NONODE });
    });

    test('one-shot watches as callbacks, persistent ones as an async iterator', async () => {
      await c.create('/w');
      const seen: WatchEvent[] = [];
      await c.getData('/w', (e) => seen.push(e));
      await c.exists('/w/child', (e) => seen.push(e));
      await c.getChildren('/w', (e) => seen.push(e));
      assert.equal(await c.checkWatches('/w', 'data'), true);
      assert.equal(await c.checkWatches('/w/nothing', 'any'), false);
      const other = await connectTo(server);
      await other.setData('/w', Buffer.from('x'));
      await other.create('/w/child');
      await until(() => seen.length === 3, 5000, 'three one-shot events');
      assert.deepEqual(seen.map((e) => `${e.type} ${e.path}`).sort(), ['childrenChanged /w', 'created /w/child', 'dataChanged /w']);
      await other.setData('/w', Buffer.from('y'));
      await sleep(100);
      assert.equal(seen.length, 3, 'one-shot watches fire once');

      const listeners = c.listenerCount('state');
      const events: string[] = [];
      const stream = await c.watch('/w', { recursive: true });
      assert.equal(await c.checkWatches('/w', 'any'), true, 'registered once watch() resolves');
      const loop = (async () => {
        for await (const e of stream) {
          events.push(`${e.type} ${e.path}`);
          if (events.length === 14) break;
        }
      })();
      await other.setData('/w/child', Buffer.from('1'));
      await other.delete('/w/child');
      for (let i = 0; i < 12; i++) await other.setData('/w', Buffer.from(String(i)));
      await loop;
      assert.deepEqual(events.slice(0, 3), ['dataChanged /w/child', 'deleted /w/child', 'dataChanged /w']);
      assert.equal(c.listenerCount('state'), listeners, 'the iterator leaves no listener behind');
      assert.equal(await c.checkWatches('/w', 'any'), false, 'ending the loop removed the watch');

      // A persistent watch as a callback, removed by its remover; removeWatches reports a missing watch.
      const fired: string[] = [];
      const remove = await c.addWatch('/w', (e) => fired.push(e.type));
      await other.setData('/w', Buffer.from('z'));
      await until(() => fired.length === 1, 5000, 'the persistent callback');
      await remove();
      await assert.rejects(c.removeWatches('/w', 'any'), NoWatcherError);
      await other.close();
    });

    test('removeWatches tells each removed watcher once, with the kind removed; no events after', async () => {
      await c.create('/rm');
      await c.create('/rm/k');
      const other = await connectTo(server);
      const got: Record<string, string[]> = { data: [], exist: [], child: [], persistent: [], recursive: [], both: [], local: [] };
      const rec = (k: string) => (e: WatchEvent) => got[k].push(`${e.type} ${e.path}`);
      await c.getData('/rm', rec('data'));
      await c.exists('/rm/none', rec('exist'));
      await c.getChildren('/rm', rec('child'));
      // Each event arrives before removeWatches resolves.
      await c.removeWatches('/rm', 'data');
      assert.deepEqual(got.data, ['dataWatchRemoved /rm']);
      assert.deepEqual(got.child, [], 'a data removal leaves the child watch');
      await c.removeWatches('/rm/none', 'data');
      assert.deepEqual(got.exist, ['dataWatchRemoved /rm/none'], 'an exists watch is a data watch');
      await c.removeWatches('/rm', 'children');
      assert.deepEqual(got.child, ['childWatchRemoved /rm']);
      // 'any': persistent and recursive watches, and one listener removed from two kinds hears of each.
      await c.addWatch('/rm', rec('persistent'));
      await c.addWatch('/rm', rec('recursive'), { recursive: true });
      const both = rec('both');
      await c.getData('/rm', both);
      await c.getChildren('/rm', both);
      await c.removeWatches('/rm', 'any');
      assert.deepEqual(got.persistent, ['persistentWatchRemoved /rm']);
      assert.deepEqual(got.recursive, ['persistentWatchRemoved /rm']);
      assert.deepEqual(got.both.sort(), ['childWatchRemoved /rm', 'dataWatchRemoved /rm']);
      // A local removal notifies too (the server keeps its watch; its event finds no listener).
      await c.getData('/rm/k', rec('local'));
      await c.removeWatches('/rm/k', 'any', { local: true });
      assert.deepEqual(got.local, ['dataWatchRemoved /rm/k']);
      // A watch() iterator ends cleanly instead of yielding the removal.
      const stream = await c.watch('/rm');
      const yielded: string[] = [];
      const loop = (async () => {
        for await (const e of stream) yielded.push(e.type);
      })();
      await c.removeWatches('/rm', 'any');
      await loop;
      assert.deepEqual(yielded, []);
      const before = JSON.stringify(got);
      await other.setData('/rm', Buffer.from('x'));
      await other.create('/rm/none');
      await other.create('/rm/x');
      await other.setData('/rm/k', Buffer.from('x'));
      await sleep(200);
      assert.equal(JSON.stringify(got), before, 'no change events after the removal');
      await other.close();
    });

    test('an iterator ends when its client closes, or when closed itself', async () => {
      const own = await connectTo(server);
      await own.create('/ending');
      const got: string[] = [];
      const stream = await own.watch('/ending');
      const loop = (async () => {
        for await (const e of stream) got.push(e.type);
      })();
      await own.close();
      await loop;
      assert.equal(got.length, 0);
      await assert.rejects(own.getData('/ending'), ConnectionLossError);
      // close() ends a loop from outside and removes the watch.
      const stopped = await c.watch('/w');
      const outside = (async () => {
        for await (const e of stopped) got.push(e.type);
      })();
      await stopped.close();
      await outside;
      assert.equal(await c.checkWatches('/w', 'any'), false);
    });

    test('chroot: paths, results, ephemerals, multi and watch events are relative to it', async () => {
      await c.create('/app');
      const rooted = await PulseClient.connect(`${server.connectionString}/app`, server.clientOptions);
      assert.equal(await rooted.create('/k', Buffer.from('v')), '/k');
      assert.equal((await c.getData('/app/k')).data.toString(), 'v');
      assert.deepEqual(await rooted.getChildren('/'), ['k']);
      await rooted.create('/eph', Buffer.alloc(0), { mode: 'ephemeral' });
      assert.deepEqual(await rooted.getEphemerals('/'), ['/eph']);
      const results = await rooted.multi([{ op: 'create', path: '/t' }]);
      assert.deepEqual(results.map((r) => (r as { path: string }).path), ['/t']);
      const events: WatchEvent[] = [];
      await rooted.getData('/k', (e) => events.push(e));
      await rooted.addWatch('/', (e) => events.push(e), { recursive: true });
      await c.setData('/app/k', Buffer.from('w'));
      await until(() => events.length === 2, 5000, 'both events');
      assert.deepEqual(events, [
        { type: 'dataChanged', path: '/k' },
        { type: 'dataChanged', path: '/k' },
      ]);
      await rooted.close();
    });

    test('auth: credentials are re-sent after a reconnect; a rejected one fails clearly', async () => {
      const proxy = await TcpProxy.start(server.ports[0]);
      const alice = await PulseClient.connect(proxy.connectionString, { sessionTimeoutMs: 3000, auth: [digest('alice')] });
      await alice.create('/private', Buffer.from('s'), { acl: [{ perms: 31, id: { scheme: 'auth', id: '' } }] });
      await assert.rejects(c.getData('/private'), NoAuthError);
      proxy.cut();
      await until(() => alice.state === 'reconnected', 5000, 'reconnected');
      assert.equal((await alice.getData('/private')).data.toString(), 's', 'still alice after the reconnect');

      const bob = await PulseClient.connect(proxy.connectionString, { sessionTimeoutMs: 3000 });
      await bob.addAuth('digest', Buffer.from('alice:secret'));
      assert.equal((await bob.getData('/private')).data.toString(), 's');
      assert.ok((await bob.whoAmI()).some((i) => i.authScheme === 'digest' && i.user === 'alice'));
      // An unknown scheme: the server refuses it and drops the connection; the session goes on without it.
      await assert.rejects(bob.addAuth('nosuchscheme', Buffer.from('x')), AuthFailedError);
      await until(() => bob.state === 'reconnected', 5000, 'reconnected without the bad credential');
      assert.equal((await bob.getData('/private')).data.toString(), 's');

      const failed: Error[] = [];
      const carol = new Promise<PulseClient>((resolve, reject) => {
        PulseClient.connect(proxy.connectionString, { sessionTimeoutMs: 3000, auth: [{ scheme: 'nosuchscheme', auth: Buffer.from('x') }] }).then((cl) => {
          cl.on('authFailed', (e) => failed.push(e));
          resolve(cl);
        }, reject);
      });
      const cl = await carol;
      await until(() => cl.state === 'closed', 5000, 'closed after its only credential was refused');
      assert.ok(failed[0] instanceof AuthFailedError);
      await Promise.all([alice.close(), bob.close(), proxy.close()]);
    });
  });
}
