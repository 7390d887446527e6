/**
 * Sessions across a three-member ensemble of real processes: a client whose member is
 * SIGKILLed moves to another member with its session id and password and keeps its
 * session, its ephemerals and its watches (changes made while it was away fire when it
 * re-sets them); a client that vanishes without closing its session loses its ephemerals
 * exactly once, after its timeout and not before, also when the leader is killed in the
 * meantime, while live clients keep their sessions and ephemerals through the failover; a
 * client of a follower that cannot reach the leader keeps its session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddWatchMode, EventType, OpCode } from '../../src/protocol/opcodes.js';
import type { StatResponse } from '../../src/protocol/records.js';
import { sleep } from '../support/client-faults.js';
import type { TestEnsemble } from '../support/ensemble.js';
import {
  childrenOn,
  clientPorts,
  EnsembleClient,
  ensureNode,
  OPEN_ACL,
  withEnsemble,
} from '../support/ensemble-workload.js';

const EPHEMERAL = 1;

async function ok(client: EnsembleClient, body: Parameters<EnsembleClient['request']>[0], what: string) {
  const r = await client.request(body);
  assert.equal(r.err, 0, `${what}: error ${r.err}`);
  return r;
}

/** The owner of a znode as a member sees it after a sync, or undefined if it does not exist. */
async function ownerOn(e: TestEnsemble, id: number, path: string): Promise<bigint | undefined> {
  const c = new EnsembleClient({ ports: [e.member(id).clientPort], heartbeat: false });
  try {
    const [, r] = await c.pipeline([
      { type: OpCode.sync, path },
      { type: OpCode.exists, path, watch: false },
    ]);
    return r.err === 0 ? (r.response as StatResponse).stat.ephemeralOwner : undefined;
  } finally {
    await c.close().catch(() => {});
  }
}

for (const victim of ['leader', 'follower'] as const) {
  test(`a client whose member (the ${victim}) is killed moves to another with its session, ephemerals and watches`, { timeout: 120_000 }, async () => {
    await withEnsemble({ size: 3 }, async (e) => {
      const ids = [...e.members.keys()];
      const leader = await e.waitForLeader();
      const target = victim === 'leader' ? leader : ids.find((id) => id !== leader)!;
      const survivors = ids.filter((id) => id !== target);
      const ports = clientPorts(e);
      await ensureNode(ports, '/w', 'v0');

      // No heartbeat: the test decides when the client comes back (after the changes below).
      const client = await EnsembleClient.open({ ports, prefer: ids.indexOf(target), timeoutMs: 20_000, heartbeat: false });
      assert.equal(client.port, e.member(target).clientPort);
      const session = client.sessionId;
      await ok(client, { type: OpCode.create, path: '/mine', data: Buffer.alloc(0), acl: OPEN_ACL, flags: EPHEMERAL }, 'create ephemeral');
      await ok(client, { type: OpCode.getData, path: '/w', watch: true }, 'getData watch');
      await ok(client, { type: OpCode.getChildren, path: '/w', watch: true }, 'getChildren watch');
      assert.equal((await client.request({ type: OpCode.exists, path: '/later', watch: true })).err, -101);
      await ok(client, { type: OpCode.ping }, 'ping');

      await e.kill(target);
      await e.waitForLeader(30_000, survivors);
      // Changes the client misses while it is away.
      const other = await EnsembleClient.open({ ports: clientPorts(e, survivors) });
      await ok(other, { type: OpCode.setData, path: '/w', data: Buffer.from('v1'), version: -1 }, 'setData');
      await ok(other, { type: OpCode.create, path: '/w/child', data: Buffer.alloc(0), acl: OPEN_ACL, flags: 0 }, 'create child');
      await ok(other, { type: OpCode.create, path: '/later', data: Buffer.alloc(0), acl: OPEN_ACL, flags: 0 }, 'create');
      await other.close();

      // Back on another member, within the session timeout: same session, watches re-set as of the last zxid seen.
      await ok(client, { type: OpCode.ping }, 'ping after the kill');
      assert.equal(client.sessionId, session);
      assert.notEqual(client.port, e.member(target).clientPort);
      const events = await client.waitForEvents(3, 20_000);
      const got = events.map((ev) => `${ev.type} ${ev.path}`).sort();
      assert.deepEqual(got, [`${EventType.NodeCreated} /later`, `${EventType.NodeDataChanged} /w`, `${EventType.NodeChildrenChanged} /w`].sort());

      await e.startMember(target);
      await e.waitForLeader();
      for (const id of ids) assert.equal(await ownerOn(e, id, '/mine'), session, `member ${id}: /mine owned by the session`);
      // Still alive: the session is not expired when the client goes on using it.
      await ok(client, { type: OpCode.setData, path: '/w', data: Buffer.from('v2'), version: -1 }, 'write after moving');
      await client.close();
      for (const id of ids) assert.equal(await ownerOn(e, id, '/mine'), undefined, `member ${id}: /mine gone with the closed session`);
    });
  });
}

for (const failover of [false, true]) {
  test(`a client that dies loses its ephemerals exactly once, after its timeout${failover ? ', with the leader killed meanwhile' : ''}; live clients keep theirs`, { timeout: 180_000 }, async (t) => {
    await withEnsemble({ size: 3 }, async (e) => {
      const ids = [...e.members.keys()];
      const leader = await e.waitForLeader();
      const [f1, f2] = ids.filter((id) => id !== leader);
      const ports = clientPorts(e);
      const at = (id: number) => ids.indexOf(id);
      await ensureNode(ports, '/eph');

      // Watchers on the followers, which stay up.
      const watchers = await Promise.all([f1, f2].map((id) => EnsembleClient.open({ ports, prefer: at(id), timeoutMs: 20_000 })));
      for (const w of watchers) await ok(w, { type: OpCode.addWatch, path: '/eph', mode: AddWatchMode.PERSISTENT_RECURSIVE }, 'addWatch');
      // Live clients, one on the leader (it must move if the leader dies) and one on a follower.
      const live = await Promise.all([leader, f1].map((id) => EnsembleClient.open({ ports, prefer: at(id), timeoutMs: 10_000 })));
      for (const [i, c] of live.entries()) await ok(c, { type: OpCode.create, path: `/eph/live${i}`, data: Buffer.alloc(0), acl: OPEN_ACL, flags: EPHEMERAL }, 'create live ephemeral');

      const timeoutMs = 6000;
      const dead = await EnsembleClient.open({ ports, prefer: at(f2), timeoutMs, heartbeat: false });
      assert.equal(dead.negotiatedTimeoutMs, timeoutMs);
      await ok(dead, { type: OpCode.create, path: '/eph/dead', data: Buffer.alloc(0), acl: OPEN_ACL, flags: EPHEMERAL }, 'create ephemeral');
      // The last thing the servers hear from it: no member can have heard it later than this was sent.
      let lastSent = 0;
      await dead.request({ type: OpCode.ping }, () => (lastSent = performance.now()));
      await dead.crash();

      if (failover) {
        await sleep(500);
        await e.kill(leader);
        await e.waitForLeader(30_000, [f1, f2]);
        await e.startMember(leader);
        await e.waitForLeader();
      }

      const deletedAt: number[] = [];
      for (const w of watchers) {
        const deadline = performance.now() + 60_000;
        while (!w.events.some((ev) => ev.type === EventType.NodeDeleted && ev.path === '/eph/dead')) {
          assert.ok(performance.now() < deadline, 'the dead client\'s ephemeral was never deleted');
          await sleep(10);
        }
        deletedAt.push(performance.now());
      }
      const early = deletedAt.filter((when) => when < lastSent + timeoutMs);
      assert.deepEqual(early, [], `the ephemeral went before the ${timeoutMs} ms session timeout had passed since the client was last heard`);
      t.diagnostic(`deleted ${Math.round(Math.min(...deletedAt) - lastSent)} ms after the client was last heard (timeout ${timeoutMs} ms)`);

      // Time for a second deletion, if there were one, to arrive.
      await sleep(2000);
      for (const [i, w] of watchers.entries()) {
        const deleted = w.events.filter((ev) => ev.type === EventType.NodeDeleted).map((ev) => ev.path);
        assert.deepEqual(deleted, ['/eph/dead'], `watcher ${i}: NodeDeleted events`);
      }
      // The live sessions went on through it all, with their ephemerals on every member.
      for (const [i, c] of live.entries()) {
        await ok(c, { type: OpCode.setData, path: '/eph', data: Buffer.from(`live${i}`), version: -1 }, `live client ${i} after the failover`);
        for (const id of ids) assert.equal(await ownerOn(e, id, `/eph/live${i}`), c.sessionId, `member ${id}: /eph/live${i}`);
      }
      if (failover) assert.ok(live[0].connections >= 2, 'the live client of the killed leader moved');
      for (const id of ids) assert.deepEqual((await childrenOn(e.member(id).clientPort, '/eph')).sort(), ['live0', 'live1']);
      await Promise.all([...live, ...watchers].map((c) => c.close()));
    });
  });
}

test('a client of a follower that hears the leader but cannot reach it keeps its session', { timeout: 120_000 }, async (t) => {
  await withEnsemble({ size: 3 }, async (e) => {
    const ids = [...e.members.keys()];
    const leader = await e.waitForLeader();
    const follower = ids.find((id) => id !== leader)!;
    const timeoutMs = 4000;
    // Tries the follower first; a pinging client that is dropped moves on to the others.
    const client = await EnsembleClient.open({ ports: clientPorts(e, [follower, ...ids.filter((id) => id !== follower)]), timeoutMs });
    assert.equal(client.port, e.member(follower).clientPort);
    await ok(client, { type: OpCode.create, path: '/mine', data: Buffer.alloc(0), acl: OPEN_ACL, flags: EPHEMERAL }, 'create ephemeral');

    // The follower's connection to the leader fails; the leader's to it still works.
    e.link(follower, leader).set('refuse');
    const deadline = performance.now() + 3 * timeoutMs;
    let owner: bigint | undefined = client.sessionId;
    while (performance.now() < deadline && owner === client.sessionId) {
      await sleep(500);
      owner = await ownerOn(e, leader, '/mine');
    }
    t.diagnostic(`follower ${follower} is ${await e.mode(follower)}; the client made ${client.connections} connection(s)`);
    assert.equal(owner, client.sessionId, `the session expired on the leader while its client kept pinging follower ${follower}, which never passed that on`);
    e.heal();
    await ok(client, { type: OpCode.ping }, 'ping after healing');
    await client.close();
  });
});
