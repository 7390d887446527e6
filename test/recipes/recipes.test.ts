/**
 * The recipes against Apache ZooKeeper and pulsekeeper, in normal operation and
 * with members whose network goes silent: group membership, leader election
 * (checking with the server's own watch table that each candidate watches only its
 * predecessor), locks, role assignment, the configuration stream, barriers and
 * the counter. Process kills, expiry and restarts are in faults.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PulseClient } from '../../src/client/index.js';
import {
  Barrier,
  BarrierTimeoutError,
  DistributedCounter,
  DoubleBarrier,
  GroupMembership,
  LeaderElection,
  Lock,
  LockTimeoutError,
  ReadWriteLock,
  type QueueLock,
  RoleAssignment,
  watchConfig,
} from '../../src/recipes/index.js';
import type { MembershipEvent } from '../../src/membership/events.js';
import { clientTargets, type ClientTestServer } from '../support/client-targets.js';
import { assertBetween, leadershipLog, PartitionProxy, sleep, TIMING_SLACK_MS, until } from '../support/client-faults.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { fourLetter } from '../support/zookeeper.js';

/** The servers' tick: a session expires within a tick after its timeout. */
const TICK_MS = 100;

/** The server's watch table by path (wchp), for paths under `under`: the sessions (hex ids) watching each. */
async function watchTable(port: number, under: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let path: string | undefined;
  for (const line of (await fourLetter(port, 'wchp')).split('\n')) {
    if (line.startsWith('/')) path = line.trim();
    else if (line.trim().startsWith('0x') && path?.startsWith(under)) out.set(path, [...(out.get(path) ?? []), line.trim()]);
  }
  return out;
}

/** How many sessions watch each path under `under`. */
async function watchersByPath(port: number, under: string): Promise<Map<string, number>> {
  return new Map([...(await watchTable(port, under))].map(([path, sessions]) => [path, sessions.length]));
}

/** The paths under `under` a session watches. */
async function watchedBy(port: number, under: string, client: PulseClient): Promise<string[]> {
  const id = '0x' + BigInt.asUintN(64, client.sessionId).toString(16);
  return [...(await watchTable(port, under))].filter(([, sessions]) => sessions.includes(id)).map(([path]) => path);
}

for (const target of clientTargets()) {
  describe(`recipes against ${target.name}`, () => {
    let server: ClientTestServer;
    const clients: PulseClient[] = [];
    const proxies: TcpProxy[] = [];
    const client = async (opts: { sessionTimeoutMs?: number; viaProxy?: boolean } = {}) => {
      let proxy: TcpProxy | undefined;
      if (opts.viaProxy) proxies.push((proxy = await TcpProxy.start(server.ports[0])));
      const c = await PulseClient.connect(proxy?.connectionString ?? server.connectionString, { sessionTimeoutMs: opts.sessionTimeoutMs ?? 4000 });
      clients.push(c);
      return { c, proxy };
    };
    const partitions: PartitionProxy[] = [];
    /** A client whose network can be cut off silently, closes included: it must notice by its own heartbeats. */
    const partitionable = async (sessionTimeoutMs: number) => {
      const partition = await PartitionProxy.start(server.ports[0]);
      partitions.push(partition);
      const c = await PulseClient.connect(partition.connectionString, { sessionTimeoutMs });
      clients.push(c);
      return { c, partition };
    };
    before(async () => {
      server = await target.start({ tickTime: TICK_MS, minSessionTimeout: 200, maxSessionTimeout: 10_000 });
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      await Promise.all([...proxies, ...partitions].map((p) => p.close()));
      await server?.stop();
    });

    test('group membership: join, update, leave, and a silent member fails once its session timeout has passed, within a tick after', async () => {
      const { c: obsClient } = await client();
      const observer = await GroupMembership.join(obsClient, { path: '/groups/g1' });
      const events: MembershipEvent[] = [];
      let failedAt = 0;
      observer.on('change', (e) => {
        events.push(e);
        if (e.type === 'failed') failedAt = performance.now();
      });
      const { c: ca } = await client();
      const { c: cb, proxy } = await client({ sessionTimeoutMs: 1500, viaProxy: true });
      const a = await GroupMembership.join(ca, { path: '/groups/g1', id: 'a', meta: Buffer.from('v1') });
      await GroupMembership.join(cb, { path: '/groups/g1', id: 'b' });
      await until(() => observer.members().length === 2, 5000, 'two members');
      await a.update(Buffer.from('v2'));
      await until(() => events.some((e) => e.type === 'updated' && e.member.id === 'a'), 5000, 'update');
      assert.equal(Buffer.from(observer.members().find((m) => m.id === 'a')!.meta).toString(), 'v2');
      // b's network goes silent, as if its machine had stopped: it fails once the server expires its session,
      // a session timeout after the server last heard from it (no sooner than this request was sent).
      const lastSpoke = performance.now();
      await cb.exists('/');
      const silencedAt = performance.now();
      proxy!.silence();
      await until(() => events.some((e) => e.type === 'failed' && e.member.id === 'b'), 10_000, 'b failed');
      const timeoutMs = cb.sessionTimeoutMs;
      assertBetween(failedAt - lastSpoke, timeoutMs, silencedAt - lastSpoke + timeoutMs + TICK_MS + TIMING_SLACK_MS, 'the silent member reported failed');
      await a.leave();
      await until(() => events.some((e) => e.type === 'left' && e.member.id === 'a'), 5000, 'a left');
      assert.deepEqual(observer.members(), []);
      assert.deepEqual(events.map((e) => `${e.type}:${e.member.id}`), ['join:a', 'join:b', 'updated:a', 'failed:b', 'left:a']);
      await observer.close();
    });

    test('a member whose node is deleted by hand rejoins; a second holder of the same id waits for the first', async () => {
      const { c: c1 } = await client();
      const { c: c2 } = await client();
      const g = await GroupMembership.join(c1, { path: '/groups/g2', id: 'same' });
      await c2.delete('/groups/g2/same');
      await until(async () => (await c2.exists('/groups/g2/same'))?.ephemeralOwner === c1.sessionId, 5000, 'rejoined');
      let joined = false;
      const second = GroupMembership.join(c2, { path: '/groups/g2', id: 'same' }).then((m) => ((joined = true), m));
      await sleep(300);
      assert.equal(joined, false, 'the name is taken while the first holder lives');
      await g.leave();
      await (await second).leave();
      assert.equal(joined, true);
    });

    test('leader election: one leader, each candidate watches only its predecessor, fencing tokens grow, suspension drops leadership at once', async () => {
      const elections: LeaderElection[] = [];
      const made: { c: PulseClient; proxy?: TcpProxy }[] = [];
      for (let i = 0; i < 4; i++) {
        const m = await client({ sessionTimeoutMs: 3000, viaProxy: true });
        made.push(m);
        const e = new LeaderElection(m.c, '/election/e1', `cand-${i}`);
        elections.push(e);
        await e.start();
      }
      await until(() => elections.filter((e) => e.isLeader).length === 1, 5000, 'a leader');
      assert.equal(elections[0].isLeader, true, 'the first candidate leads');
      assert.equal(await elections[3].getLeader(), 'cand-0');
      const nodes = (await made[0].c.getChildren('/election/e1')).sort((a, b) => Number(a.slice(-10)) - Number(b.slice(-10)));
      assert.equal(elections[0].fencingToken, (await made[0].c.exists(`/election/e1/${nodes[0]}`))!.czxid, 'the token is the czxid');
      // No herd: every node but the last is watched by exactly one session, its successor.
      const watched = await watchersByPath(server.ports[0], '/election/e1/');
      assert.deepEqual(
        [...watched].sort(),
        nodes
          .slice(0, 3)
          .map((n) => [`/election/e1/${n}`, 1])
          .sort(),
      );
      const firstToken = elections[0].fencingToken;
      await elections[0].resign();
      await until(() => elections[1].isLeader, 5000, 'the next candidate');
      assert.equal(elections.filter((e) => e.isLeader).length, 1);
      assert.ok(elections[1].fencingToken > firstToken);
      let dropped = false;
      elections[1].once('notLeader', () => (dropped = true));
      made[1].proxy!.cut();
      await until(() => dropped, 2000, 'leadership dropped on suspension');
      assert.equal(elections[1].isLeader, false);
      await until(() => elections.filter((e) => e.isLeader).length === 1, 8000, 'a leader again');
      await Promise.all(elections.map((e) => e.close()));
    });

    test('leader election: a leader gone silent steps down before the next is elected, which is not before its session timeout; never two leaders', async () => {
      // Long enough that the third of it between stepping down and expiry outlasts a busy machine's stalls.
      const timeoutMs = 3000;
      const { c: leaderClient, partition } = await partitionable(timeoutMs);
      const candidates = [leaderClient, (await client({ sessionTimeoutMs: timeoutMs })).c, (await client({ sessionTimeoutMs: timeoutMs })).c];
      const elections = candidates.map((c, i) => new LeaderElection(c, '/election/silent', `cand-${i}`));
      const leadership = leadershipLog(elections);
      for (const e of elections) await e.start();
      await until(() => elections[0].isLeader, 5000, 'the first candidate leads');
      // The server last hears from the leader no sooner than this request was sent; then its network goes
      // silent, closes included: it must give up by its own clock, and the server expire it by its own.
      const lastSpoke = performance.now();
      await leaderClient.exists('/');
      const silencedAt = performance.now();
      partition.partition();
      await until(() => elections[1].isLeader, 15_000, 'the next candidate leads');
      assert.deepEqual(leadership.events, ['elected:cand-0', 'notLeader:cand-0', 'elected:cand-1'], 'the old leader stepped down before the new one was elected');
      assert.equal(leadership.max, 1, 'never two leaders');
      const electedAt = leadership.times[2];
      assertBetween(electedAt - lastSpoke, timeoutMs, silencedAt - lastSpoke + timeoutMs + TICK_MS + TIMING_SLACK_MS, 'the next leader elected');
      assert.equal(elections[0].isLeader, false);
      assert.equal(elections[2].isLeader, false);
      // The silent candidate's client cannot reach the server to resign; it is closed with the others at the end.
      await Promise.all(elections.slice(1).map((e) => e.close()));
    });

    test('locks: mutual exclusion without a herd (mutex and read-write), timeouts, reentrancy, read-write', async () => {
      const { c: c1 } = await client();
      const { c: c2 } = await client();
      const { c: c3 } = await client();
      const counter = { inside: 0, max: 0 };
      const work = async (c: PulseClient) => {
        const lock = new Lock(c, '/locks/l1');
        for (let i = 0; i < 5; i++) {
          await lock.acquire();
          counter.inside++;
          counter.max = Math.max(counter.max, counter.inside);
          await sleep(5);
          counter.inside--;
          await lock.release();
        }
      };
      await Promise.all([work(c1), work(c2), work(c3)]);
      assert.equal(counter.max, 1);

      const holder = new Lock(c1, '/locks/queue');
      await holder.acquire();
      const waiters = [new Lock(c2, '/locks/queue'), new Lock(c3, '/locks/queue')];
      const acquired: Promise<void>[] = [];
      for (const [i, w] of waiters.entries()) {
        acquired.push(w.acquire(10_000));
        await until(async () => (await c1.getChildren('/locks/queue')).length === i + 2, 5000, `waiter ${i} queued`);
      }
      await sleep(100);
      assert.deepEqual([...(await watchersByPath(server.ports[0], '/locks/queue/')).values()], [1, 1], 'each waiter watches one node');
      await holder.release();
      await acquired[0];
      assert.equal(waiters[1].held, false);
      await waiters[0].release();
      await acquired[1];
      await waiters[1].release();

      const held = new Lock(c1, '/locks/l2', { reentrant: true });
      await held.acquire();
      await held.acquire();
      await assert.rejects(new Lock(c2, '/locks/l2').acquire(200), LockTimeoutError);
      assert.deepEqual(await c1.getChildren('/locks/l2').then((n) => n.length), 1, 'a timed-out waiter leaves the queue');
      await held.release();
      assert.ok(held.held);
      await held.release();
      const other = new Lock(c2, '/locks/l2');
      await other.acquire(2000);
      await assert.rejects(other.acquire(), /already held/);
      await other.release();

      // Read-write queue: every waiter watches one node, a reader the last writer before it, a writer its predecessor.
      const { c: c4 } = await client();
      const { c: c5 } = await client();
      const writer = new ReadWriteLock(c1, '/locks/rwq').writeLock;
      await writer.acquire();
      const queued: [PulseClient, QueueLock][] = [
        [c2, new ReadWriteLock(c2, '/locks/rwq').readLock],
        [c3, new ReadWriteLock(c3, '/locks/rwq').readLock],
        [c4, new ReadWriteLock(c4, '/locks/rwq').writeLock],
        [c5, new ReadWriteLock(c5, '/locks/rwq').readLock],
      ];
      const turns: Promise<void>[] = [];
      for (const [i, [, l]] of queued.entries()) {
        turns.push(l.acquire(10_000));
        await until(async () => (await c1.getChildren('/locks/rwq')).length === i + 2, 5000, `waiter ${i} queued`);
      }
      const queue = (await c1.getChildren('/locks/rwq')).sort((a, b) => Number(a.slice(-10)) - Number(b.slice(-10))).map((n) => `/locks/rwq/${n}`);
      const waitsFor = [queue[0], queue[0], queue[2], queue[3]];
      const port = server.ports[0];
      const watchCount = async () => [...(await watchersByPath(port, '/locks/rwq/')).values()].reduce((a, b) => a + b, 0);
      await until(async () => (await watchCount()) >= queued.length, 5000, 'every waiter watching');
      await sleep(100);
      for (const [i, [c]] of queued.entries()) assert.deepEqual(await watchedBy(port, '/locks/rwq/', c), [waitsFor[i]], `waiter ${i} watches only the node it waits for`);
      assert.deepEqual([...(await watchersByPath(port, '/locks/rwq/')).values()].sort(), [1, 1, 2], 'one watch per waiter');
      await writer.release();
      await Promise.all(turns.slice(0, 2));
      assert.deepEqual(queued.map(([, l]) => l.held), [true, true, false, false], 'the two readers share; the writer and the reader behind it wait');
      await Promise.all(queued.slice(0, 2).map(([, l]) => l.release()));
      await turns[2];
      assert.equal(queued[3][1].held, false, 'the last reader waits for the writer before it');
      await queued[2][1].release();
      await turns[3];
      await queued[3][1].release();

      const rw1 = new ReadWriteLock(c1, '/locks/rw');
      const rw2 = new ReadWriteLock(c2, '/locks/rw');
      await rw1.readLock.acquire();
      await rw2.readLock.acquire(1000);
      await assert.rejects(rw2.writeLock.acquire(200), LockTimeoutError);
      await rw1.readLock.release();
      await rw2.readLock.release();
      await rw2.writeLock.acquire(1000);
      await assert.rejects(rw1.readLock.acquire(200), LockTimeoutError);
      await rw2.writeLock.release();
      await rw1.readLock.acquire(1000);
      await rw1.readLock.release();
    });

    test('roles: even, the same for every member, sticky when a member joins; a silent member drops its roles before survivors take them, once its session timeout has passed', async () => {
      const roles = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
      const { c: watcherClient } = await client();
      const follower = await RoleAssignment.start(watcherClient, { path: '/roles/svc', roles });
      const { c: ca } = await client();
      const { c: cb, partition } = await partitionable(1500);
      const a = await RoleAssignment.start(ca, { path: '/roles/svc', roles, id: 'a' });
      const b = await RoleAssignment.start(cb, { path: '/roles/svc', roles, id: 'b' });
      const sameEverywhere = () => [a, b].every((x) => JSON.stringify([...x.assignment]) === JSON.stringify([...follower.assignment]));
      await until(() => a.mine.length === 3 && b.mine.length === 3 && sameEverywhere(), 5000, 'an even split seen by all');
      const beforeJoin = follower.assignment;
      const { c: cc } = await client();
      const c = await RoleAssignment.start(cc, { path: '/roles/svc', roles, id: 'c' });
      await until(() => c.mine.length === 2 && sameEverywhere(), 5000, 'the newcomer gets its share');
      for (const m of ['a', 'b']) {
        const lost = beforeJoin.get(m)!.filter((r) => !follower.rolesOf(m).includes(r));
        assert.equal(lost.length, 1, `${m} gave up only one role`);
        assert.ok(lost.every((r) => c.mine.includes(r)), 'and only to the newcomer');
      }
      // Who acts on b's roles, in order: b must stop before any survivor starts.
      const bRoles = b.mine;
      const acting: string[] = [];
      let takenAt = 0;
      b.on('assigned', (mine: string[]) => mine.length === 0 && acting.push('b drops'));
      for (const [id, x] of [['a', a], ['c', c]] as const) {
        x.on('assigned', (mine: string[]) => {
          if (!mine.some((r) => bRoles.includes(r))) return;
          acting.push(`${id} takes`);
          takenAt ||= performance.now();
        });
      }
      // The server last hears from b no sooner than this request was sent; then b's network goes silent, closes included.
      const lastSpoke = performance.now();
      await cb.exists('/');
      const silencedAt = performance.now();
      partition.partition();
      await until(() => acting.includes('b drops'), 5000, 'the silent member stops acting on its roles');
      await until(() => a.mine.length === 3 && c.mine.length === 3, 10_000, "survivors take over b's roles");
      assert.equal(acting[0], 'b drops', `b dropped its roles before a survivor took one: ${acting}`);
      assert.deepEqual([...new Set(acting.slice(1))].sort(), ['a takes', 'c takes']);
      const timeoutMs = cb.sessionTimeoutMs;
      assertBetween(takenAt - lastSpoke, timeoutMs, silencedAt - lastSpoke + timeoutMs + TICK_MS + TIMING_SLACK_MS, "a survivor took one of b's roles");
      await until(() => [a, c].every((x) => JSON.stringify([...x.assignment]) === JSON.stringify([...follower.assignment])), 5000, 'every survivor sees it');
      await Promise.all([a.close(), c.close()]);
    });

    test('configuration stream: typed values, each version once, through a reconnect', async () => {
      const { c: c1, proxy } = await client({ viaProxy: true });
      const { c: c2 } = await client();
      const seen: { limit: number }[] = [];
      const reader = (async () => {
        for await (const v of watchConfig(c1, '/config/limit', (d) => JSON.parse(d.toString()) as { limit: number })) {
          seen.push(v);
          if (v.limit === 4) return;
        }
      })();
      await sleep(100);
      await c2.create('/config');
      await c2.create('/config/limit', Buffer.from('{"limit":1}'));
      await until(() => seen.length === 1, 3000, 'first value');
      await c2.setData('/config/limit', Buffer.from('{"limit":2}'));
      await until(() => seen.length === 2, 3000, 'second value');
      proxy!.refuse();
      proxy!.cut();
      await c2.setData('/config/limit', Buffer.from('{"limit":3}'));
      proxy!.accept();
      await until(() => seen.length === 3, 5000, 'the value set while disconnected');
      await c2.setData('/config/limit', Buffer.from('{"limit":4}'));
      await reader;
      assert.deepEqual(seen.map((v) => v.limit), [1, 2, 3, 4]);
    });

    test('barriers and the counter', async () => {
      const { c: c1 } = await client();
      const { c: c2 } = await client();
      const barrier = new Barrier(c1, '/barriers/b');
      await barrier.set();
      let released = false;
      const waiter = new Barrier(c2, '/barriers/b').wait(10_000).then(() => (released = true));
      await assert.rejects(new Barrier(c2, '/barriers/b').wait(100), BarrierTimeoutError);
      assert.equal(released, false);
      await barrier.remove();
      await waiter;

      const d1 = new DoubleBarrier(c1, '/barriers/double', 2);
      const d2 = new DoubleBarrier(c2, '/barriers/double', 2);
      const entered: string[] = [];
      const first = d1.enter(10_000).then(() => entered.push('one'));
      await sleep(200);
      assert.deepEqual(entered, [], 'the first waits for the second');
      await d2.enter(10_000);
      await first;
      await Promise.all([d1.leave(10_000), d2.leave(10_000)]);
      assert.deepEqual(await c1.getChildren('/barriers/double'), [], 'the barrier is clean after a round');
      await assert.rejects(new DoubleBarrier(c1, '/barriers/alone', 2).enter(200), BarrierTimeoutError);
      assert.deepEqual(await c1.getChildren('/barriers/alone'), [], 'a timed-out participant leaves');

      const n1 = new DistributedCounter(c1, '/counters/c');
      const n2 = new DistributedCounter(c2, '/counters/c');
      assert.equal(await n1.get(), 0);
      await Promise.all([...Array.from({ length: 10 }, () => n1.add()), ...Array.from({ length: 10 }, () => n2.add(2))]);
      assert.equal(await n1.get(), 30);
      await c1.setData('/counters/c', Buffer.from('not a number'));
      await assert.rejects(n2.add(), /not an integer/);
    });
  });
}
