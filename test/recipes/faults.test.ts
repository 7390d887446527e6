/**
 * Every recipe under faults, against Apache ZooKeeper and pulsekeeper:
 * - a member process that holds leadership, a lock, a write lock, roles, a place
 *   in a double barrier and is counting is killed with SIGKILL;
 * - a member's session is expired;
 * - the server is restarted, or fails over (on targets that can).
 * Survivors must take over exactly what the dead member held, and no state may be
 * lost across a restart or failover.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PulseClient, type ConnectionState } from '../../src/client/index.js';
import {
  Barrier,
  DistributedCounter,
  DoubleBarrier,
  GroupMembership,
  LeaderElection,
  Lock,
  ReadWriteLock,
  RoleAssignment,
  watchConfig,
} from '../../src/recipes/index.js';
import type { MembershipEvent } from '../../src/membership/events.js';
import { clientTargets, connectTo, skipUnless, type Capability, type ClientTestServer } from '../support/client-targets.js';
import { assertBetween, expireSession, leadershipLog, MemberProcess, sleep, TIMING_SLACK_MS, until } from '../support/client-faults.js';

const ROLES = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
/** The servers' tick: a session expires within a tick after its timeout. */
const TICK_MS = 100;

for (const target of clientTargets({ ensemble: true, zookeeperEnsemble: true })) {
  describe(`recipes under faults against ${target.name}`, () => {
    let server: ClientTestServer;
    const clients: PulseClient[] = [];
    const connect = async (sessionTimeoutMs = 4000) => {
      const c = await connectTo(server, { sessionTimeoutMs });
      clients.push(c);
      return c;
    };
    before(async () => {
      server = await target.start({ tickTime: TICK_MS, minSessionTimeout: 200, maxSessionTimeout: 40_000 });
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      await server?.stop();
    });

    test('a member process killed with SIGKILL: survivors take over all it held, once its session timeout has passed and within a tick after', async () => {
      const base = '/kill';
      const timeoutMs = 2500;
      const member = MemberProcess.spawn({ connectionString: server.connectionString, keepHostOrder: true, sessionTimeoutMs: timeoutMs, id: 'doomed', base, roles: ROLES });
      try {
        const { token: deadToken } = await member.next('elected');
        const c = await connect();
        const observer = await GroupMembership.join(c, { path: `${base}/group` });
        const events: MembershipEvent[] = [];
        let failedAt = 0;
        observer.on('change', (e) => {
          events.push(e);
          if (e.type === 'failed' && e.member.id === 'doomed') failedAt = performance.now();
        });
        const candidate = new LeaderElection(c, `${base}/election`, 'survivor');
        let electedAt = 0;
        candidate.once('elected', () => (electedAt = performance.now()));
        await candidate.start();
        await member.next('ready');
        const lock = new Lock(c, `${base}/lock`);
        const locked = lock.acquire(30_000);
        const reading = new ReadWriteLock(c, `${base}/rw`).readLock.acquire(30_000);
        const roles = await RoleAssignment.start(c, { path: `${base}/roles`, roles: ROLES, id: 'survivor' });
        await until(() => roles.mine.length === 3 && roles.rolesOf('doomed').length === 3, 10_000, 'an even split');
        const barrier = new DoubleBarrier(c, `${base}/double`, 2);
        member.send('barrier');
        await barrier.enter(10_000);
        await member.next('entered');
        member.send('count');
        await until(() => member.events.filter((e) => e.event === 'added').length >= 20, 10_000, 'counting');
        assert.equal(candidate.isLeader, false);
        assert.equal(lock.held, false);

        // A moment after which the server surely heard from the member: two of its adds end after
        // this read of the counter, and the second is sent only once the first was applied after the read.
        const heardAfter = performance.now();
        const seen = await new DistributedCounter(c, `${base}/counter`).get();
        await until(() => member.events.some((e) => e.event === 'added' && (e.value as number) >= seen + 2), 10_000, 'two more adds');
        const killedAt = performance.now();
        await member.kill();
        const lastAdded = member.events.filter((e) => e.event === 'added').at(-1)!.value as number;
        await until(() => failedAt > 0, 20_000, 'the group reports it failed');
        await until(() => candidate.isLeader, 10_000, 'the survivor leads');
        // Not before the server could expire the session (a timeout after it last heard from it), and
        // within a tick of the timeout after the kill (with slack for a busy machine).
        const latest = killedAt - heardAfter + timeoutMs + TICK_MS + TIMING_SLACK_MS;
        assertBetween(failedAt - heardAfter, timeoutMs, latest, 'the killed member reported failed');
        assertBetween(electedAt - heardAfter, timeoutMs, latest, 'the survivor elected');
        assert.ok(candidate.fencingToken > (deadToken as number), 'with a larger fencing token');
        await locked;
        await reading;
        await until(() => roles.mine.length === 6, 10_000, 'the survivor holds every role');
        await barrier.leave(10_000);
        const value = await new DistributedCounter(c, `${base}/counter`).get();
        assert.ok(value === lastAdded || value === lastAdded + 1, `counter ${value} after ${lastAdded} acknowledged adds (at most one in flight)`);
        await Promise.all([candidate.close(), lock.release(), roles.close(), observer.close()]);
      } finally {
        await member.kill();
      }
    });

    test('a member whose session expires loses what it held at once, then rejoins with a new session', async () => {
      const base = '/expire';
      const m = await connect();
      const s = await connect();
      const mStates: ConnectionState[] = [];
      m.on('state', (st) => mStates.push(st));
      const observer = await GroupMembership.join(s, { path: `${base}/group` });
      const events: string[] = [];
      observer.on('change', (e) => events.push(`${e.type}:${e.member.id}`));
      await GroupMembership.join(m, { path: `${base}/group`, id: 'm' });
      await GroupMembership.join(s, { path: `${base}/group`, id: 's' });
      const mElection = new LeaderElection(m, `${base}/election`, 'm');
      const sElection = new LeaderElection(s, `${base}/election`, 's');
      const leadership = leadershipLog([mElection, sElection]);
      await mElection.start();
      await sElection.start();
      await until(() => mElection.isLeader, 5000, 'm leads');
      const mLock = new Lock(m, `${base}/lock`);
      await mLock.acquire();
      let lost = false;
      mLock.on('lost', () => (lost = true));
      const sLocked = new Lock(s, `${base}/lock`).acquire(30_000);
      const mRoles = await RoleAssignment.start(m, { path: `${base}/roles`, roles: ROLES, id: 'm' });
      const sRoles = await RoleAssignment.start(s, { path: `${base}/roles`, roles: ROLES, id: 's' });
      await until(() => mRoles.mine.length === 3 && sRoles.mine.length === 3, 10_000, 'an even split');
      await s.create(`${base}/config`, Buffer.from('1'));
      const seen: number[] = [];
      const stream = (async () => {
        for await (const v of watchConfig(m, `${base}/config`, (d) => Number(d.toString()))) {
          seen.push(v);
          if (v === 2) return;
        }
      })();
      await until(() => seen.length === 1, 5000, 'the first config value');
      const mRead = new ReadWriteLock(m, `${base}/rw`).readLock;
      await mRead.acquire();
      let readLost = false;
      mRead.on('lost', () => (readLost = true));
      const sWrites = new ReadWriteLock(s, `${base}/rw`).writeLock;
      const sWriting = sWrites.acquire(30_000);
      const gate = new Barrier(s, `${base}/gate`);
      await gate.set();
      let released = false;
      const mWaits = new Barrier(m, `${base}/gate`).wait(60_000).then(() => (released = true));
      const counter = new DistributedCounter(m, `${base}/counter`);
      await counter.add(1);
      const oldSession = m.sessionId;

      await expireSession(server.connectionString, m, server.clientOptions);
      await until(() => mStates.includes('connected'), 10_000, 'a new session');
      // On an ensemble the client may get back in once before the close is committed.
      assert.equal(mStates[0], 'suspended');
      assert.ok(mStates.indexOf('expired') > 0 && mStates.indexOf('expired') < mStates.indexOf('connected'), `states ${mStates}`);
      assert.notEqual(m.sessionId, oldSession);
      assert.equal(lost, true, 'the lock holder heard it lost the lock');
      await sLocked;
      await until(() => sElection.isLeader, 10_000, 's leads');
      // (The session is closed from outside while m's connection is healthy, so m and s hear of it at the
      // same moment; with a real expiry m has given up when its connection went quiet, as the election test shows.)
      assert.deepEqual(leadership.events.filter((e) => e.endsWith(':m')).slice(0, 2), ['elected:m', 'notLeader:m']);
      assert.ok(leadership.events.includes('elected:s'));
      await until(() => events.includes('failed:m') && events.at(-1) === 'join:m', 10_000, 'm fails, then rejoins');
      await until(async () => (await s.getChildren(`${base}/election`)).length === 2, 10_000, 'm stands again');
      assert.equal(mElection.isLeader, false);
      await until(() => mRoles.mine.length === 3 && sRoles.mine.length === 3, 10_000, 'm gets its share back');
      await sWriting;
      assert.equal(readLost, true, 'the reader heard it lost its read lock');
      await sWrites.release();
      assert.equal(released, false, 'the barrier still holds m');
      await gate.remove();
      await mWaits;
      assert.equal(await counter.add(1), 2, 'the counter carries on with the new session');
      await s.setData(`${base}/config`, Buffer.from('2'));
      await until(() => seen.length === 2, 20_000, 'the config value set after the expiry');
      await stream;
      assert.deepEqual(seen, [1, 2], 'the config stream carried on');
      await Promise.all([mElection.close(), sElection.close(), mRoles.close(), sRoles.close(), observer.close()]);
    });

    for (const fault of ['restart', 'failover'] as Capability[]) {
      test(`every recipe keeps its state through a server ${fault}`, { skip: skipUnless(target, fault) }, async (t) => {
        const base = `/${fault}`;
        // Session timeouts longer than a JVM takes to restart on a busy machine (20 s was not, in a CI run
        // that ran beside other work: one session expired across ZooKeeper's restart).
        const [a, b, o] = [await connect(40_000), await connect(40_000), await connect(40_000)];
        const states = new Map<PulseClient, ConnectionState[]>([a, b, o].map((c) => [c, []]));
        for (const [c, list] of states) c.on('state', (s: ConnectionState) => list.push(s));
        const observer = await GroupMembership.join(o, { path: `${base}/group` });
        await GroupMembership.join(a, { path: `${base}/group`, id: 'a' });
        await GroupMembership.join(b, { path: `${base}/group`, id: 'b' });
        await until(() => observer.members().length === 2, 5000, 'two members');
        const events: string[] = [];
        observer.on('change', (e) => events.push(`${e.type}:${e.member.id}`));
        const ea = new LeaderElection(a, `${base}/election`, 'a');
        const eb = new LeaderElection(b, `${base}/election`, 'b');
        const leadership = leadershipLog([ea, eb]);
        await ea.start();
        await eb.start();
        await until(() => ea.isLeader, 5000, 'a leads');
        const token = ea.fencingToken;
        const la = new Lock(a, `${base}/lock`);
        await la.acquire();
        let lost = false;
        la.on('lost', () => (lost = true));
        let bLocked = false;
        const lb = new Lock(b, `${base}/lock`);
        // Waits that span the outage report their failure where they are awaited, not as a stray rejection.
        const settled = (p: Promise<unknown>) => p.then(() => 'done', (e: Error) => e.message);
        const bLocking = settled(lb.acquire(120_000).then(() => (bLocked = true)));
        const ra = await RoleAssignment.start(a, { path: `${base}/roles`, roles: ROLES, id: 'a' });
        const rb = await RoleAssignment.start(b, { path: `${base}/roles`, roles: ROLES, id: 'b' });
        await until(() => ra.mine.length === 3 && rb.mine.length === 3, 10_000, 'an even split');
        const assignment = JSON.stringify([...ra.assignment]);
        const aRead = new ReadWriteLock(a, `${base}/rw`).readLock;
        await aRead.acquire();
        let bWriting = false;
        const bWrites = new ReadWriteLock(b, `${base}/rw`).writeLock;
        const bWrite = settled(bWrites.acquire(120_000).then(() => (bWriting = true)));
        const doubles = [new DoubleBarrier(a, `${base}/double`, 2), new DoubleBarrier(b, `${base}/double`, 2)];
        await Promise.all(doubles.map((d) => d.enter(10_000)));
        const counter = new DistributedCounter(a, `${base}/counter`);
        await counter.add(41);
        await new Barrier(a, `${base}/barrier`).set();
        let released = false;
        const waiting = settled(new Barrier(b, `${base}/barrier`).wait(120_000).then(() => (released = true)));
        await o.create(`${base}/config`, Buffer.from('1'));
        const seen: number[] = [];
        const stream = (async () => {
          for await (const v of watchConfig(b, `${base}/config`, (d) => Number(d.toString()))) {
            seen.push(v);
            if (v === 2) return;
          }
        })();
        await until(() => seen.length === 1, 5000, 'the first config value');

        await (fault === 'restart' ? server.restart!() : server.failover!());
        const back = () => [...states.values()].every((list) => list.at(-1) === 'reconnected' || (list.includes('expired') && list.at(-1) === 'connected'));
        const stateLog = () => [...states.values()].map((l) => l.join('>')).join(', ');
        await until(back, 60_000, () => `every client back in its session (states: ${stateLog()})`);
        if (target.name === 'zookeeper' && [...states.values()].some((list) => list.includes('expired'))) {
          // Apache ZooKeeper (the reference, not pulsekeeper) now and then answers a reattach after its
          // SIGKILL restart as expired, whatever the session timeout (seen with 20 s and 40 s in CI runs
          // beside other work); what the recipes keep through an expiry is the expiry test's.
          t.skip(`ZooKeeper expired a session across its restart (states: ${stateLog()})`);
          return;
        }
        assert.ok([...states.values()].every((list) => !list.includes('expired')), `no session expired (states: ${stateLog()})`);

        await until(() => ea.isLeader, 10_000, 'a leads again');
        assert.equal(ea.fencingToken, token, 'the same leadership');
        assert.equal(eb.isLeader, false);
        assert.equal(leadership.max, 1, `never two leaders: ${leadership.events}`);
        assert.equal(la.held, true);
        assert.equal(lost, false);
        await sleep(200);
        assert.equal(bLocked, false, 'the waiter still waits');
        assert.equal(aRead.held, true);
        assert.equal(bWriting, false, 'the writer still waits for the reader');
        assert.deepEqual(events, [], 'no member failed or left');
        assert.deepEqual(observer.members().map((m) => m.id).sort(), ['a', 'b']);
        await until(() => ra.mine.length === 3 && rb.mine.length === 3, 10_000, 'roles held again after the reconnect');
        assert.equal(JSON.stringify([...ra.assignment]), assignment, 'the same assignment');
        assert.equal(await counter.add(1), 42);
        assert.equal(released, false);
        assert.ok(await o.exists(`${base}/barrier`));
        await o.setData(`${base}/config`, Buffer.from('2'));
        await until(() => seen.length === 2, 20_000, 'the config value set after the outage');
        await stream;
        assert.deepEqual(seen, [1, 2]);
        await aRead.release();
        assert.equal(await bWrite, 'done');
        await bWrites.release();
        await Promise.all(doubles.map((d) => d.leave(10_000)));
        await la.release();
        assert.equal(await bLocking, 'done');
        await new Barrier(o, `${base}/barrier`).remove();
        assert.equal(await waiting, 'done');
        await Promise.all([lb.release(), ea.close(), eb.close(), ra.close(), rb.close(), observer.close()]);
      });
    }
  });
}
