import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiateTimeout, SessionTracker } from '../../src/session/tracker.js';
import { ManualClock } from '../../src/util/clock.js';
import { Rng } from '../support/random.js';

const TICK = 100;

test('a session untouched for its timeout expires at the first tick boundary at or after its deadline', () => {
  const clock = new ManualClock(1234);
  const t = new SessionTracker(TICK, clock.now());
  t.add(1n, 1000, clock.now()); // deadline 2234 -> bucket 2300
  clock.set(2299);
  assert.deepEqual(t.tick(clock.now()), []);
  clock.set(2300);
  const out = t.tick(clock.now());
  assert.equal(out.length, 1);
  assert.equal(out[0].id, 1n);
  assert.equal(out[0].sinceLastHeardMs, 2300 - 1234);
  assert.deepEqual(t.tick(5000), [], 'each session is expired once');
  assert.equal(t.touch(1n, 5000), false, 'an expiring session cannot be renewed');
});

test('touches move the deadline; closing and removed sessions never expire', () => {
  const t = new SessionTracker(TICK, 0);
  t.add(1n, 500, 0);
  t.add(2n, 500, 0);
  t.add(3n, 500, 0);
  t.touch(1n, 400);
  t.setClosing(2n);
  t.remove(3n);
  assert.deepEqual(t.tick(600).map((e) => e.id), []);
  assert.deepEqual(t.tick(900).map((e) => e.id), [1n]);
  assert.equal(t.has(2n), false);
});

test('property: expiry within [timeout, timeout + tick] of the last touch; never while touched every timeout/3', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rng = new Rng(seed);
    const clock = new ManualClock(rng.int(10_000));
    const t = new SessionTracker(TICK, clock.now());
    const last = new Map<bigint, number>();
    const timeouts = new Map<bigint, number>();
    const pingers = new Set<bigint>();
    for (let i = 1n; i <= 200n; i++) {
      const timeout = 200 + rng.int(3000);
      t.add(i, timeout, clock.now());
      last.set(i, clock.now());
      timeouts.set(i, timeout);
      if (rng.chance(0.5)) pingers.add(i);
    }
    const expired = new Set<bigint>();
    // The shell ticks on every boundary; pingers touch at least every timeout/3.
    for (let step = 0; step < 600; step++) {
      clock.advance(rng.int(TICK) + 1);
      for (const id of pingers) {
        if (clock.now() - last.get(id)! >= timeouts.get(id)! / 3 - TICK) {
          assert.equal(t.touch(id, clock.now()), true);
          last.set(id, clock.now());
        }
      }
      for (const e of t.tick(clock.now())) {
        assert.ok(!pingers.has(e.id), `seed ${seed}: pinging session ${e.id} expired`);
        assert.ok(!expired.has(e.id));
        expired.add(e.id);
        const since = clock.now() - last.get(e.id)!;
        assert.ok(since >= timeouts.get(e.id)!, `seed ${seed}: expired after ${since} < ${timeouts.get(e.id)}`);
        // The check is made at this tick: the deadline passed at most one tick (plus this step) ago.
        assert.ok(since <= timeouts.get(e.id)! + 2 * TICK, `seed ${seed}: expired after ${since}, timeout ${timeouts.get(e.id)}`);
      }
    }
    for (const id of timeouts.keys()) if (!pingers.has(id)) assert.ok(expired.has(id), `seed ${seed}: silent session ${id} never expired`);
  }
});

test('with a tick on every boundary, expiry is within one tick of the deadline', () => {
  const t = new SessionTracker(TICK, 0);
  for (let i = 0; i < 100; i++) t.add(BigInt(i), 300 + i * 7, i * 13);
  for (let now = TICK; now <= 5000; now += TICK) {
    for (const e of t.tick(now)) {
      assert.ok(e.sinceLastHeardMs >= e.timeoutMs);
      assert.ok(e.sinceLastHeardMs <= e.timeoutMs + TICK);
    }
  }
  assert.equal([...t.entries()].filter((e) => e.expiresAt >= 0).length, 0);
});

test('timeouts are negotiated into [min, max]', () => {
  assert.equal(negotiateTimeout(1, 4000, 40000), 4000);
  assert.equal(negotiateTimeout(10000, 4000, 40000), 10000);
  assert.equal(negotiateTimeout(99999, 4000, 40000), 40000);
});

test('renewAll gives every live session a fresh full timeout from now (a new leader after a failover)', () => {
  const t = new SessionTracker(TICK, 0);
  t.add(1n, 1000, 0);
  t.add(2n, 1000, 0);
  t.add(3n, 1000, 0);
  t.setClosing(3n);
  // The new leader takes over at 900, long after these sessions were last heard of (by the old leader).
  t.renewAll(900);
  assert.deepEqual(t.tick(1800).map((e) => e.id), [], 'nobody expires one timeout after the old deadline');
  assert.equal(t.has(3n), false, 'a closing session stays closing');
  const out = t.tick(1900);
  assert.deepEqual(out.map((e) => e.id).sort(), [1n, 2n]);
  for (const e of out) assert.equal(e.sinceLastHeardMs, 1000);
});
