/**
 * The SWIM core in the deterministic simulator at 100 members or so: crashes are
 * detected by everyone, nobody healthy is declared failed (paused members, lossy,
 * one-way-broken and WAN-like links), fast restarts are not declared dead, members
 * declared dead that restart rejoin for good, partitions heal, load per member does
 * not grow with the cluster, and runs replay exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, simulate, type Scenario, type SimReport } from '../../src/sim/simulator.js';
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

test('every member hears of each crash by gossip: none waits for its own probe round or a push-pull', () => {
  // lan-fixed at 100 members puts 10 deaths on 8 retransmits each; before deaths got a second round on
  // pings and acks, about one crash in 30 left a member without a copy for up to 50 s.
  const cfg = PULSEKEEPER_DEFAULTS;
  const s = scenario('lan-fixed');
  // Detection and the suspicion timeout, a paused observer's pause, and a few probe periods for
  // Lifeguard's slowed probes, the last-chance probe and the gossip; far below one push-pull
  // interval (90 s at this size) or one probe round (50 s).
  const bound = cfg.minSuspicionTimeoutMs + s.pauseMs + 10 * cfg.probeIntervalMs;
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = simulate(100, s, cfg, 'pulsekeeper', seed);
    assert.equal(r.allAgreeMs.count, 10, `seed ${seed}`);
    assert.ok(r.allAgreeMs.max <= bound, `seed ${seed}: a crash took ${r.allAgreeMs.max} ms to reach everyone (bound ${bound} ms)`);
    assert.equal(r.falseFailures, 0, `seed ${seed}`);
  }
});

test("the defaults detect crashes at least twice as fast as memberlist's LAN defaults, with no more false declarations", () => {
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
  for (const seed of [7, 8]) {
    const r = simulate(100, scenario('lan', { crashFraction: 0 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', seed);
    assert.equal(r.falseFailures, 0, `seed ${seed}`);
  }
});

test('one-way broken links: the indirect and TCP probes keep deaf members alive; crashes are still found', () => {
  const r = simulate(100, scenario('asymmetric', { crashFraction: 0.03 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 2);
  assert.equal(r.falseFailures, 0);
  assert.equal(r.undetected, 0);
  assert.ok(r.messagesByType['ping-req'] > 0 && r.messagesByType['tcp-ping'] > 0);
  // Without the fallbacks the same links make healthy members look dead.
  const bare = simulate(100, scenario('asymmetric', { crashFraction: 0.03 }), { ...PULSEKEEPER_DEFAULTS, indirectChecks: 0, tcpFallbackProbe: false }, 'bare', 2);
  assert.ok(bare.falseFailures > 0, 'direct probes alone accuse the deaf members');
});

test('members that restart quickly are not declared dead', () => {
  const r = simulate(100, scenario('restart'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 1);
  assert.equal(r.firstFailedMs.count, 0);
  assert.equal(r.falseFailures, 0);
  assert.equal(r.finalViewGaps, 0);
});

test('members declared dead that restart with a higher incarnation rejoin every view and are not declared failed again', () => {
  for (const seed of [1, 2, 3]) {
    const r = simulate(100, scenario('restart-dead'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', seed);
    assert.equal(r.crashed, 5);
    // Every crash was declared failed by every running member before its restart, once per observer.
    assert.equal(r.restarted, 5);
    assert.equal(r.restartedAfterAgreement, 5, `seed ${seed}: restarted before everyone declared them dead`);
    assert.equal(r.repeatedFailures, 0, `seed ${seed}: a crash reported failed twice by one member`);
    // Each is then counted alive by every running member, and nobody declares it failed again.
    assert.equal(r.rejoinMs.count, 5, `seed ${seed}: ${r.rejoinMs.count} of 5 back in every view`);
    assert.equal(r.failedAfterRestart, 0, `seed ${seed}`);
    assert.equal(r.falseFailures, 0, `seed ${seed}`);
    assert.equal(r.finalViewGaps, 0, `seed ${seed}`);
  }
});

test('WAN-like latency (20-50 ms links, jitter, a heavy tail) with 1% loss: no false declarations; crashes are detected', () => {
  for (const seed of [1, 2, 3]) {
    const r = simulate(100, scenario('wan', { crashFraction: 0.05 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', seed);
    assert.equal(r.crashed, 5);
    assert.equal(r.falseFailures, 0, `seed ${seed}`);
    assert.equal(r.undetected, 0, `seed ${seed}`);
    assert.equal(r.allAgreeMs.count, 5);
    assert.equal(r.updateSpreadMs.count, 3);
    assert.equal(r.finalViewGaps, 0, `seed ${seed}`);
  }
  // The latency is really there: with a probe timeout under most round trips (40 ms), most probes go indirect.
  const hasty = simulate(100, scenario('wan'), { ...PULSEKEEPER_DEFAULTS, probeTimeoutMs: 40 }, 'hasty', 1);
  assert.ok(hasty.messagesByType['ping-req'] > 1, `${hasty.messagesByType['ping-req']} ping-req per member per second`);
});

test('a healed partition converges back to one view', () => {
  const r = simulate(100, scenario('partition'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 1);
  assert.ok(r.falseFailures > 0, 'each side declared the other failed during the partition');
  assert.equal(r.finalViewGaps, 0);
});

test("the real-process test's faults settle in the simulator", () => {
  const r = simulate(30, scenario('processes'), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 1);
  assert.equal(r.crashed, 4);
  assert.ok(r.settledMs !== undefined && r.settledMs < 20_000, `settled after ${r.settledMs} ms`);
  assert.equal(r.falseFailures, 0);
});

test('metadata updates reach every member; load per member does not grow with the cluster', () => {
  const run = (n: number, name: string): SimReport => simulate(n, scenario(name, { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 3);
  const small = run(50, 'quiet');
  const large = run(400, 'quiet');
  assert.equal(large.updateSpreadMs.count, 3);
  assert.ok(large.messagesPerMemberSecond < small.messagesPerMemberSecond * 1.3, `quiet: ${small.messagesPerMemberSecond} vs ${large.messagesPerMemberSecond}`);
  // With pauses, loss and crashes too: a pause costs a few messages, not a flood, so load stays flat.
  const lanSmall = run(50, 'lan');
  const lanLarge = run(400, 'lan');
  assert.ok(lanLarge.messagesPerMemberSecond < lanSmall.messagesPerMemberSecond * 1.3, `lan: ${lanSmall.messagesPerMemberSecond} vs ${lanLarge.messagesPerMemberSecond}`);
  // Gossiped suspicions (memberlist's way) are the difference.
  const gossiped = simulate(400, scenario('lan', { durationMs: 60_000 }), MEMBERLIST_LAN, 'memberlist-lan', 3);
  const gossipedSmall = simulate(50, scenario('lan', { durationMs: 60_000 }), MEMBERLIST_LAN, 'memberlist-lan', 3);
  assert.ok(gossiped.messagesPerMemberSecond > gossipedSmall.messagesPerMemberSecond * 1.3, `memberlist: ${gossipedSmall.messagesPerMemberSecond} vs ${gossiped.messagesPerMemberSecond}`);
});

test('a seed replays exactly', () => {
  const a = simulate(60, scenario('lan', { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 42);
  const b = simulate(60, scenario('lan', { durationMs: 60_000 }), PULSEKEEPER_DEFAULTS, 'pulsekeeper', 42);
  assert.deepEqual({ ...a, wallSeconds: 0, cpuSeconds: 0 }, { ...b, wallSeconds: 0, cpuSeconds: 0 });
});
