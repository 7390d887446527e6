/**
 * A graceful restart: SIGTERM on the leader hands leadership to an up-to-date
 * follower before the process exits, so the ensemble does not sit out an election
 * timeout, and clients writing through followers carry on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateMode, OpCode } from '../../src/protocol/opcodes.js';
import type { CountResponse } from '../../src/protocol/records.js';
import { TestEnsemble } from '../support/ensemble.js';
import { RawClient } from '../support/raw-client.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

test('SIGTERM on the leader hands leadership over; writes through a follower keep succeeding', async () => {
  const e = await TestEnsemble.start({ size: 3 });
  try {
    const leader = await e.waitForLeader();
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const c = await RawClient.connect(e.member(follower).clientPort);
    const termBefore = Number((await e.mntr(follower)).pk_term);
    assert.equal((await c.request({ type: OpCode.create, path: '/w', data: Buffer.alloc(0), acl: OPEN, flags: 0 })).err, 0);
    let stop = false;
    let acked = 0;
    let failed = 0;
    const writer = (async () => {
      for (let i = 0; !stop && i < 100_000; i++) {
        // Sequential: a write applied twice would leave one node too many.
        const r = await c.request({ type: OpCode.create, path: '/w/n-', data: Buffer.alloc(10), acl: OPEN, flags: CreateMode.PERSISTENT_SEQUENTIAL });
        if (r.err === 0) acked++;
        else failed++;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await e.signal(leader, 'SIGTERM');
    const next = await e.waitForLeader(10_000, [1, 2, 3].filter((id) => id !== leader));
    const handedOver = /"msg":"leadership handed over","to":(\d)/.exec(e.member(leader).log);
    assert.ok(handedOver, `the old leader says it handed over:\n${e.member(leader).log.slice(-3000)}`);
    assert.equal(Number(handedOver[1]), next, 'to the member that now leads');
    assert.equal(Number((await e.mntr(next)).pk_term), termBefore + 1, 'one new term: no election rounds were needed');
    const ackedAtHandover = acked;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await writer;
    assert.ok(acked > ackedAtHandover, 'writes go on under the new leader');
    assert.equal(failed, 0, 'no write failed');
    assert.equal(c.closed, false, "the follower's client kept its connection");
    await c.request({ type: OpCode.sync, path: '/w' });
    const count = await c.request({ type: OpCode.getAllChildrenNumber, path: '/w' });
    assert.equal((count.response as CountResponse).totalNumber, acked, 'every acknowledged write once, nothing more');
    await c.close();
  } catch (err) {
    console.log(e.logs());
    throw err;
  } finally {
    await e.close();
  }
});
