/**
 * An observer declared in the config from the start (`server.4=...:observer`): it observes,
 * serves reads of writes made through other members, forwards its own clients' writes, and
 * never counts for a quorum: with two of the three voters gone the ensemble takes no write,
 * though the observer is up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpCode } from '../../src/protocol/opcodes.js';
import type { DataResponse } from '../../src/protocol/records.js';
import { sleep } from '../support/client-faults.js';
import { fourLetter } from '../support/zookeeper.js';
import { RawClient } from '../support/raw-client.js';
import {
  childrenOn,
  createBatch,
  describeRecord,
  EnsembleClient,
  ensureNode,
  OPEN_ACL,
  waitForMode,
  withEnsemble,
} from '../support/ensemble-workload.js';

const OBSERVER = 4;

/** getData on a member without sync: what it serves from its own copy (undefined while it has no such node). */
async function localRead(port: number, path: string): Promise<string | undefined> {
  const c = await RawClient.connect(port);
  try {
    const r = await c.request({ type: OpCode.getData, path, watch: false });
    return r.err === 0 ? ((r.response as DataResponse).data?.toString() ?? '') : undefined;
  } finally {
    await c.close();
  }
}

test('an observer from the config observes, serves reads and forwards writes; with one voter of three killed writes go on, with two none is acknowledged though the observer is up', { timeout: 180_000 }, async (t) => {
  await withEnsemble({ size: 3, observers: 1 }, async (e) => {
    const voters = [1, 2, 3];
    const observerPort = e.member(OBSERVER).clientPort;
    const leader = await e.waitForLeader();
    assert.equal(await e.mode(OBSERVER), 'observer');
    const m = await e.mntr(leader);
    assert.match(m.pk_members, new RegExp(`(^|,)${OBSERVER}:observer:`));
    assert.equal(m.zk_followers, '3', 'followers count the observer, as ZooKeeper counts them');
    assert.match(await fourLetter(e.member(leader).clientPort, 'srvr'), new RegExp(`^Peer ${OBSERVER}: observer, `, 'm'));

    // A write through a voter shows on the observer's own copy, without sync.
    const voter = voters.find((id) => id !== leader)!;
    await ensureNode([e.member(voter).clientPort], '/elsewhere', 'v');
    const deadline = Date.now() + 15_000;
    while ((await localRead(observerPort, '/elsewhere')) !== 'v') {
      assert.ok(Date.now() < deadline, 'the observer did not serve a committed write within 15 s');
      await sleep(50);
    }

    // Its own client's write is forwarded to the leader and acknowledged.
    const o = await RawClient.connect(observerPort);
    try {
      assert.equal((await o.request({ type: OpCode.create, path: '/from-observer', data: Buffer.from('o'), acl: OPEN_ACL, flags: 0 })).err, 0);
    } finally {
      await o.close();
    }
    assert.ok((await childrenOn(e.member(leader).clientPort, '/')).includes('from-observer'));

    // One voter of three down (the leader): the other two elect, and the observer's clients write.
    await e.kill(leader);
    const next = await e.waitForLeader(30_000, [...voters.filter((id) => id !== leader), OBSERVER]);
    assert.notEqual(next, OBSERVER);
    await ensureNode([observerPort], '/one-down');
    const last = voters.find((id) => id !== leader && id !== next)!;
    assert.ok((await childrenOn(e.member(last).clientPort, '/')).includes('one-down'));
    await ensureNode([observerPort], '/w');

    // Sessions opened before the second kill, so that the writes are sent after it.
    const clients = await Promise.all(
      [observerPort, e.member(next).clientPort].map((port) => EnsembleClient.open({ ports: [port], heartbeat: false, reconnectWithinMs: 1000, requestTimeoutMs: 20_000 })),
    );
    // The follower, not the leader: the leader stays up with the observer still acknowledging its appends.
    await e.kill(last);
    const batches = clients.map((c, i) => createBatch(c, '/w', `two-down-${i}`, 5));
    await Promise.all(batches.map((b) => b.done));
    for (const [i, b] of batches.entries()) t.diagnostic(`creates through ${i === 0 ? 'the observer' : `member ${next}`} with two voters down: ${describeRecord(b.record)}`);
    assert.deepEqual([...batches[0].record.acked], [], 'a write through the observer was acknowledged with one voter of three up: the observer counted for the quorum');
    assert.deepEqual([...batches[1].record.acked], [], `member ${next} acknowledged a write with only the observer behind it`);
    // Check-quorum counts voters only: the lone voter stops leading.
    await waitForMode(e, next, ['not serving', 'follower']);
    assert.notEqual(await e.mode(OBSERVER), 'leader');
  });
});
