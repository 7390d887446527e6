/**
 * The SWIM core in the deterministic simulator at 100 members: crashes are
 * detected by everyone, nobody healthy is declared failed, fast restarts are not
 * declared dead, partitions heal, and runs replay exactly from their seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, simulate, type Scenario } from '../../src/sim/simulator.js';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS } from '../../src/membership/core/types.js';

const scenario = (name: string, over: Partial<Scenario> = {}): Scenario => ({ name, ...SCENARIOS[name], ...over });

test('crashed members are declared failed by every live member; no false declarations', () => {
  for (const seed of [1, 2, 3]) {
    const r = simulate(100, scenario('crash'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', seed);
    assert.equal(r.crashed, 5);
    assert.equal(r.undetected, 0, `seed ${seed}`);
    assert.equal(r.allAgreeMs.count, 5);
    assert.equal(r.falseFailures, 0, `seed ${seed}`);
    assert.equal(r.finalViewGaps, 0);
  }
});

test('the tuned defaults detect crashes at least twice as fast as memberlist\'s LAN defaults, with no more false declarations', () => {
  const agree = (cfg: typeof MEMBERLIST_LAN, name: string) => {
    const times: number[] = [];
    let falseFailures = 0;
    for (const seed of [1, 2, 3, 4]) {
      const r = simulate(100, scenario('lan', { crashFraction: 0.05 }), cfg, name, seed);
      times.push(r.allAgreeMs.p50);
      falseFailures += r.falseFailures;
      assert.equal(r.undetected, 0);
    }
    times.sort((a, b) => a - b);
    return { median: (times[1] + times[2]) / 2, falseFailures };
  };
  const pk = agree(PULSEKEEPER_DEFAULTS, 'pulsekeeper');
  const ml = agree(MEMBERLIST_LAN, 'memberlist-lan');
  assert.ok(pk.median * 2 <= ml.median, `pulsekeeper ${pk.median} ms vs memberlist ${ml.median} ms`);
  assert.ok(pk.falseFailures <= ml.falseFailures, `false declarations ${pk.falseFailures} vs ${ml.falseFailures}`);
});

test('members paused for 2 s are not declared failed under 1% loss', () => {
  const r = simulate(100, scenario('lan', { crashFraction: 0 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 7);
  assert.equal(r.falseFailures, 0);
});

test('members that restart quickly are not declared dead', () => {
  const r = simulate(100, scenario('restart'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 1);
  assert.equal(r.firstFailedMs.count, 0);
  assert.equal(r.falseFailures, 0);
  assert.equal(r.finalViewGaps, 0);
});

test('a healed partition converges back to one view', () => {
  const r = simulate(100, scenario('partition'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 1);
  assert.ok(r.falseFailures > 0, 'each side declared the other failed during the partition');
  assert.equal(r.finalViewGaps, 0);
});

test('metadata updates reach every member; load per member stays flat from 50 to 200 members', () => {
  const small = simulate(50, scenario('quiet', { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 3);
  const large = simulate(200, scenario('quiet', { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 3);
  assert.equal(large.updateSpreadMs.count, 3);
  assert.ok(large.messagesPerMemberSecond < small.messagesPerMemberSecond * 1.5, `${small.messagesPerMemberSecond} vs ${large.messagesPerMemberSecond}`);
});

test('a seed replays exactly', () => {
  const a = simulate(60, scenario('lan', { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 42);
  const b = simulate(60, scenario('lan', { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 42);
  assert.deepEqual({ ...a, wallSeconds: 0 }, { ...b, wallSeconds: 0 });
});
