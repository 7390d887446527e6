/**
 * The client against Apache ZooKeeper and pulsekeeper: every operation and its
 * typed errors, watches as callbacks and async iterators, chroot, and connection
 * states through a fault-injecting proxy (suspended, reconnected with the session
 * and ephemerals kept, expired, requests failing after their deadline).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BadVersionError,
  ConnectionLossError,
  NodeExistsError,
  NoNodeError,
  NoAuthError,
  NotEmptyError,
  PulseClient,
  SessionExpiredError,
  ZooKeeperError,
  type WatchEvent,
} from '../../src/client/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { targets, type TestServer } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error('timed out');
    await sleep(20);
  }
}

for (const target of targets()) {
  describe(`client against ${target.name}`, () => {
    let server: TestServer;
    let c: PulseClient;
    before(async () => {
      server = await target.start({ tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 10_000 });
      c = await PulseClient.connect(server.connectionString, { sessionTimeoutMs: 4000 });
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
      assert.equal(await c.getAllChildrenNumber('/a'), 2);
      await assert.rejects(c.delete('/a'), NotEmptyError);
      const err = await c.delete('/nope').catch((e) => e);
      assert.ok(err instanceof ZooKeeperError && err.code === ErrorCode.NONODE && err.path === '/nope');
      await c.create('/locked', Buffer.alloc(0), { acl: [{ perms: 1, id: { scheme: 'world', id: 'anyone' } }] });
      await assert.rejects(c.setData('/locked', Buffer.from('x')), NoAuthError);
      await c.sync('/');
      assert.ok((await c.whoAmI()).some((i) => i.authScheme === 'ip'));
    });

    test('multi is atomic and reports the failing operation', async () => {
      const ok = await c.multi([
        { op: 'create', path: '/m', data: Buffer.from('m') },
        { op: 'create', path: '/m/1' },
        { op: 'check', path: '/m', version: 0 },
        { op: 'setData', path: '/m', data: Buffer.from('n') },
      ]);
      assert.equal(ok.length, 4);
      const err = await c.multi([{ op: 'create', path: '/m/2' }, { op: 'delete', path: '/m/nope' }]).catch((e) => e);
      assert.ok(err instanceof NoNodeError);
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
      const other = await PulseClient.connect(server.connectionString);
      await other.setData('/w', Buffer.from('x'));
      await other.create('/w/child');
      await until(() => seen.length === 3, 5000);
      assert.deepEqual(seen.map((e) => `${e.type} ${e.path}`).sort(), ['childrenChanged /w', 'created /w/child', 'dataChanged /w']);

      const events: string[] = [];
      const loop = (async () => {
        for await (const e of c.watch('/w', { recursive: true })) {
          events.push(`${e.type} ${e.path}`);
          if (events.length === 3) break;
        }
      })();
      await sleep(100);
      await other.setData('/w/child', Buffer.from('1'));
      await other.delete('/w/child');
      await other.setData('/w', Buffer.from('2'));
      await loop;
      assert.deepEqual(events, ['dataChanged /w/child', 'deleted /w/child', 'dataChanged /w']);
      await other.close();
    });

    test('chroot', async () => {
      await c.create('/app');
      const rooted = await PulseClient.connect(`${server.connectionString}/app`);
      assert.equal(await rooted.create('/k', Buffer.from('v')), '/k');
      assert.equal((await c.getData('/app/k')).data.toString(), 'v');
      assert.deepEqual(await rooted.getChildren('/'), ['k']);
      await rooted.close();
    });

    test('a lost connection suspends, then reconnects with the session, ephemerals and watches', async () => {
      const proxy = await TcpProxy.start(server.port);
      const states: string[] = [];
      const p = await PulseClient.connect(proxy.connectionString, { sessionTimeoutMs: 3000 });
      p.on('state', (s) => states.push(s));
      await p.create('/survivor', Buffer.alloc(0), { mode: 'ephemeral' });
      const fired: WatchEvent[] = [];
      await p.getData('/survivor', (e) => fired.push(e));
      const id = p.sessionId;
      proxy.cut();
      await until(() => states.includes('reconnected'), 5000);
      assert.deepEqual(states, ['suspended', 'reconnected']);
      assert.equal(p.sessionId, id);
      assert.ok(await c.exists('/survivor'), 'the ephemeral outlived the connection');
      await c.setData('/survivor', Buffer.from('changed'));
      await until(() => fired.length === 1, 5000);
      assert.equal(fired[0].type, 'dataChanged', 'the watch was re-registered with setWatches');
      await p.close();
      await proxy.close();
    });

    test('silence is detected; requests while suspended fail after their deadline; expiry is reported', async () => {
      const proxy = await TcpProxy.start(server.port);
      const p = await PulseClient.connect(proxy.connectionString, { sessionTimeoutMs: 1200, requestTimeoutMs: 300 });
      await p.create('/doomed', Buffer.alloc(0), { mode: 'ephemeral' });
      proxy.silence();
      await until(() => p.state === 'suspended', 3000);
      await assert.rejects(p.getData('/doomed'), ConnectionLossError);
      // Stay silent past the session timeout: the server expires the session.
      let gone = false;
      const deadline = performance.now() + 6000;
      while (!gone && performance.now() < deadline) {
        gone = (await c.exists('/doomed')) === null;
        await sleep(100);
      }
      assert.ok(gone, 'the silent session expired on the server');
      proxy.heal();
      await until(() => p.state === 'expired', 5000);
      await assert.rejects(p.getData('/'), SessionExpiredError);
      await p.close();
      await proxy.close();
    });
  });
}
