/**
 * A member a little behind the leader does not turn clients away: a session created a
 * moment ago on another member, or a client that has seen a later zxid, gets its answer
 * once this member has caught up with the leader (ZooKeeper's followers ask the leader).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpCode } from '../../src/protocol/opcodes.js';
import { TestEnsemble } from '../support/ensemble.js';
import { RawClient } from '../support/raw-client.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

test('a session created on the leader can be attached through a follower at once; a client ahead of a follower is served after it catches up', async () => {
  const e = await TestEnsemble.start({ size: 3 });
  try {
    const leader = await e.waitForLeader();
    const followers = [1, 2, 3].filter((id) => id !== leader);
    for (let i = 0; i < 30; i++) {
      const created = await RawClient.connect(e.member(leader).clientPort, { timeout: 10_000 });
      // A burst of writes keeps the followers a little behind while the client moves.
      await Promise.all(Array.from({ length: 20 }, (_, j) => created.request({ type: OpCode.create, path: `/burst-${i}-${j}`, data: Buffer.alloc(100), acl: OPEN, flags: 0 })));
      const moved = await RawClient.connect(e.member(followers[i % 2]).clientPort, {
        sessionId: created.session.sessionId,
        passwd: created.session.passwd,
        lastZxidSeen: created.lastZxid,
        timeout: 10_000,
      });
      assert.equal(moved.session.sessionId, created.session.sessionId, `round ${i}: the follower attaches the session instead of calling it expired`);
      const r = await moved.request({ type: OpCode.exists, path: `/burst-${i}-19`, watch: false });
      assert.equal(r.err, 0, `round ${i}: and has caught up with everything the client saw`);
      await moved.close();
      await created.destroy();
    }
  } catch (err) {
    console.log(e.logs());
    throw err;
  } finally {
    await e.close();
  }
});
