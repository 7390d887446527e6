/**
 * The recipes against Apache ZooKeeper and pulsekeeper, with faults: members whose
 * network goes silent until their session expires (as a killed process), and
 * connections cut under a leader.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PulseClient } from '../../src/client/index.js';
import {
  assignRoles,
  Barrier,
  DistributedCounter,
  DoubleBarrier,
  GroupMembership,
  LeaderElection,
  Lock,
  LockTimeoutError,
  ReadWriteLock,
  RoleAssignment,
  watchConfig,
} from '../../src/recipes/index.js';
import type { MembershipEvent } from '../../src/membership/events.js';
import { targets, type TestServer } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number, what = 'condition'): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('role assignment is even, deterministic and sticky when a member joins', () => {
  const roles = Array.from({ length: 12 }, (_, i) => `shard-${i}`);
  const three = assignRoles(roles, ['a', 'b', 'c']);
  assert.deepEqual([...three.values()].map((r) => r.length), [4, 4, 4]);
  assert.deepEqual(assignRoles(roles, ['c', 'a', 'b']), three, 'the same for everyone');
  const four = assignRoles(roles, ['a', 'b', 'c', 'd']);
  assert.deepEqual([...four.values()].map((r) => r.length), [3, 3, 3, 3]);
  let moved = 0;
  for (const m of ['a', 'b', 'c']) moved += three.get(m)!.filter((r) => !four.get(m)!.includes(r)).length;
  assert.equal(moved, 3, 'only the roles the new member takes move');
});

for (const target of targets()) {
  describe(`recipes against ${target.name}`, () => {
    let server: TestServer;
    const clients: PulseClient[] = [];
    const proxies: TcpProxy[] = [];
    const client = async (opts: { sessionTimeoutMs?: number; viaProxy?: boolean } = {}) => {
      let cs = server.connectionString;
      if (opts.viaProxy) {
        const p = await TcpProxy.start(server.port);
        proxies.push(p);
        cs = p.connectionString;
      }
      const c = await PulseClient.connect(cs, { sessionTimeoutMs: opts.sessionTimeoutMs ?? 4000, requestTimeoutMs: 500 });
      clients.push(c);
      return { c, proxy: opts.viaProxy ? proxies[proxies.length - 1] : undefined };
    };
    before(async () => {
      server = await target.start({ tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 10_000 });
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      await Promise.all(proxies.map((p) => p.close()));
      await server?.stop();
    });

    test('group membership: join, update, leave, and a silent member fails within its timeout', async () => {
      const { c: obsClient } = await client();
      const observer = await GroupMembership.join(obsClient, { path: '/groups/g1' });
      const events: MembershipEvent[] = [];
      observer.on('change', (e) => events.push(e));
      const { c: ca } = await client();
      const { c: cb, proxy } = await client({ sessionTimeoutMs: 800, viaProxy: true });
      const a = await GroupMembership.join(ca, { path: '/groups/g1', id: 'a', meta: Buffer.from('v1') });
      await GroupMembership.join(cb, { path: '/groups/g1', id: 'b' });
      await until(() => observer.members().length === 2, 5000, 'two members');
      await a.update(Buffer.from('v2'));
      await until(() => events.some((e) => e.type === 'updated' && e.member.id === 'a'), 5000, 'update');
      assert.equal(Buffer.from(observer.members().find((m) => m.id === 'a')!.meta).toString(), 'v2');
      // b's network goes silent, as if its process were killed: it fails within its session timeout.
      const silencedAt = performance.now();
      proxy!.silence();
      await until(() => events.some((e) => e.type === 'failed' && e.member.id === 'b'), 5000, 'b failed');
      assert.ok(performance.now() - silencedAt < 800 + 2000, 'detected within the session timeout plus slack');
      await a.leave();
      await until(() => events.some((e) => e.type === 'left' && e.member.id === 'a'), 5000, 'a left');
      assert.deepEqual(observer.members(), []);
      assert.deepEqual(events.map((e) => `${e.type}:${e.member.id}`), ['join:a', 'join:b', 'updated:a', 'failed:b', 'left:a']);
    });

    test('leader election: one leader, no herd, fencing tokens grow, suspension drops leadership at once', async () => {
      const elections: LeaderElection[] = [];
      const made: { c: PulseClient; proxy?: TcpProxy }[] = [];
      for (let i = 0; i < 3; i++) {
        const m = await client({ sessionTimeoutMs: 3000, viaProxy: true });
        made.push(m);
        const e = new LeaderElection(m.c, '/election/e1', `cand-${i}`);
        elections.push(e);
        await e.start();
      }
      await until(() => elections.filter((e) => e.isLeader).length === 1, 5000, 'a leader');
      assert.equal(elections[0].isLeader, true, 'the first candidate leads');
      assert.equal(await elections[2].getLeader(), 'cand-0');
      const firstToken = elections[0].fencingToken;
      await elections[0].resign();
      await until(() => elections[1].isLeader, 5000, 'the next candidate');
      assert.equal(elections[2].isLeader, false);
      assert.ok(elections[1].fencingToken > firstToken);
      let dropped = false;
      elections[1].once('notLeader', () => (dropped = true));
      made[1].proxy!.cut();
      await until(() => dropped, 2000, 'leadership dropped on suspension');
      assert.equal(elections[1].isLeader, false);
      await until(() => elections.filter((e) => e.isLeader).length === 1, 8000, 'a leader again');
    });

    test('locks: mutual exclusion, timeouts, reentrancy, read-write', async () => {
      const { c: c1 } = await client();
      const { c: c2 } = await client();
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
      await Promise.all([work(c1), work(c2)]);
      assert.equal(counter.max, 1);
      const held = new Lock(c1, '/locks/l2', { reentrant: true });
      await held.acquire();
      await held.acquire();
      await assert.rejects(new Lock(c2, '/locks/l2').acquire(200), LockTimeoutError);
      await held.release();
      assert.ok(held.held);
      await held.release();
      const other = new Lock(c2, '/locks/l2');
      await other.acquire(2000);
      await other.release();
      const rw1 = new ReadWriteLock(c1, '/locks/rw');
      const rw2 = new ReadWriteLock(c2, '/locks/rw');
      const r1 = await rw1.read();
      const r2 = await rw2.read(1000);
      await assert.rejects(rw2.write(200), LockTimeoutError);
      await r1();
      await r2();
      const w = await rw2.write(1000);
      await assert.rejects(rw1.read(200), LockTimeoutError);
      await w();
    });

    test('roles are reassigned to survivors when a member fails', async () => {
      const roles = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
      const { c: watcherClient } = await client();
      const view = await GroupMembership.join(watcherClient, { path: '/groups/roles' });
      const assignment = new RoleAssignment(view, roles);
      const { c: ca } = await client();
      const { c: cb, proxy } = await client({ sessionTimeoutMs: 800, viaProxy: true });
      await GroupMembership.join(ca, { path: '/groups/roles', id: 'a' });
      await GroupMembership.join(cb, { path: '/groups/roles', id: 'b' });
      await until(() => assignment.rolesOf('a').length === 3 && assignment.rolesOf('b').length === 3, 5000, 'an even split');
      proxy!.silence();
      await until(() => assignment.rolesOf('a').length === 6, 5000, 'a takes over b\'s roles');
    });

    test('configuration stream, barriers and the counter', async () => {
      const { c: c1 } = await client();
      const { c: c2 } = await client();
      const seen: number[] = [];
      const reader = (async () => {
        for await (const v of watchConfig(c1, '/config/limit', (d) => Number(d.toString()))) {
          seen.push(v);
          if (v === 3) return;
        }
      })();
      await sleep(100);
      await c2.create('/config');
      await c2.create('/config/limit', Buffer.from('1'));
      await until(() => seen.includes(1), 3000, 'first value');
      await c2.setData('/config/limit', Buffer.from('3'));
      await reader;
      assert.deepEqual(seen, [1, 3]);

      const barrier = new Barrier(c1, '/barriers/b');
      await barrier.set();
      let released = false;
      const waiter = new Barrier(c2, '/barriers/b').wait().then(() => (released = true));
      await sleep(100);
      assert.equal(released, false);
      await barrier.remove();
      await waiter;

      const d1 = new DoubleBarrier(c1, '/barriers/double', 2, 'one');
      const d2 = new DoubleBarrier(c2, '/barriers/double', 2, 'two');
      await Promise.all([d1.enter(), d2.enter()]);
      await Promise.all([d1.leave(), d2.leave()]);

      const n1 = new DistributedCounter(c1, '/counters/c');
      const n2 = new DistributedCounter(c2, '/counters/c');
      await Promise.all([...Array.from({ length: 10 }, () => n1.add()), ...Array.from({ length: 10 }, () => n2.add(2))]);
      assert.equal(await n1.get(), 30);
    });
  });
}
