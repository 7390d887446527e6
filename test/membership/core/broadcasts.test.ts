import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BroadcastQueue } from '../../../src/membership/core/broadcasts.js';
import { gossipSize } from '../../../src/membership/core/size.js';
import type { Gossip } from '../../../src/membership/core/types.js';

const alive = (id: string, incarnation = 0): Gossip => ({ kind: 'alive', id, incarnation, address: `${id}:1` });
const ids = (gs: Gossip[]) => gs.map((g) => `${g.id}@${g.incarnation}`);

test('least-sent first, newest first among equals, dropped after the limit', () => {
  const q = new BroadcastQueue();
  q.put(1, alive('a'));
  q.put(2, alive('b'));
  assert.deepEqual(ids(q.take(1000, 3)), ['b@0', 'a@0']);
  q.put(3, alive('c'));
  assert.deepEqual(ids(q.take(1000, 3)).slice(0, 1), ['c@0'], 'c has been sent least');
  assert.deepEqual(ids(q.take(1000, 3)).sort(), ['a@0', 'b@0', 'c@0']);
  assert.deepEqual(ids(q.take(1000, 3)), ['c@0'], 'a and b have been sent three times');
  assert.equal(q.size, 0);
});

test('newer news of a member replaces the older and starts its count again', () => {
  const q = new BroadcastQueue();
  q.put(1, alive('a'));
  q.take(1000, 5);
  q.take(1000, 5);
  q.put(2, alive('b'));
  q.put(1, alive('a', 1));
  assert.equal(q.size, 2);
  assert.deepEqual(ids(q.take(1000, 5)), ['a@1', 'b@0']);
});

test('items fill the byte budget; a smaller one further back still fits; one oversized item goes alone', () => {
  const q = new BroadcastQueue();
  const big: Gossip = { ...alive('big'), meta: new Uint8Array(300) };
  q.put(1, alive('a'));
  q.put(2, big);
  q.put(3, alive('c'));
  const room = gossipSize(big) + gossipSize(alive('a'));
  assert.deepEqual(ids(q.take(room, 9)), ['c@0', 'big@0'], 'c and big fill it; a no longer fits');
  assert.deepEqual(ids(q.take(gossipSize(alive('a')) + 1, 9)), ['a@0'], 'the least sent that fits');
  assert.deepEqual(ids(q.take(10, 9)).length, 1, 'nothing fits 10 bytes: one item goes alone');
});

test('an item put with encore gets a second round, handed out only to late takers and after first-round items', () => {
  const q = new BroadcastQueue();
  const dead: Gossip = { kind: 'dead', id: 'd', incarnation: 0, from: 'x' };
  q.put(1, dead, true);
  assert.deepEqual(ids(q.take(1000, 2)), ['d@0']);
  assert.deepEqual(ids(q.take(1000, 2)), ['d@0']);
  assert.equal(q.size, 1);
  assert.equal(q.fresh, 0, 'its first round is used up');
  assert.deepEqual(q.take(1000, 2), [], 'the gossip timer does not send it again');
  q.put(2, alive('a'));
  assert.deepEqual(ids(q.take(gossipSize(alive('a')), 2, true)), ['a@0'], 'first-round items come first');
  assert.deepEqual(ids(q.take(1000, 2, true)), ['a@0', 'd@0']);
  assert.deepEqual(ids(q.take(1000, 2, true)), ['d@0']);
  assert.equal(q.size, 0, 'dropped after its second round');
  q.put(1, dead, true);
  q.take(1000, 1);
  q.put(1, { ...dead, incarnation: 1 });
  assert.equal(q.fresh, 1, 'newer news replaces a second-round item');
  assert.deepEqual(ids(q.take(1000, 1, true)), ['d@1']);
  assert.equal(q.size, 0);
});
