import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FixedTimeoutDetector, PhiAccrualDetector, phiOf } from '../../src/detect/index.js';

/** The exact complementary error function (continued fraction / series; |error| < 1e-12 here). */
function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    // erf by its Taylor series, then 1 - erf.
    let sum = x;
    let term = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Lentz's continued fraction for erfc.
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const a = n / 2;
    d = x + a * d;
    d = 1 / d;
    c = x + a / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(-x * x) / (f * Math.sqrt(Math.PI));
}

const exactPhi = (elapsed: number, mean: number, sd: number) => -Math.log10(0.5 * erfc((elapsed - mean) / sd / Math.SQRT2));

test('phi matches the exact normal tail closely over the range that decides', () => {
  for (const [mean, sd] of [
    [1000, 100],
    [1000, 250],
    [4000, 500],
  ]) {
    for (let y = -3; y <= 3.5; y += 0.25) {
      const elapsed = mean + y * sd;
      const approx = phiOf(elapsed, mean, sd);
      const exact = exactPhi(elapsed, mean, sd);
      assert.ok(Math.abs(approx - exact) <= 0.02 + 0.03 * exact, `y=${y}: ${approx} vs ${exact}`);
    }
  }
  // Reference points: at the mean phi = log10(2); one sd later ~0.80; three sd later ~2.87.
  assert.ok(Math.abs(phiOf(1000, 1000, 100) - Math.log10(2)) < 1e-9);
  assert.ok(Math.abs(phiOf(1100, 1000, 100) - 0.7995) < 0.01);
  assert.ok(Math.abs(phiOf(1300, 1000, 100) - 2.8697) < 0.05);
  assert.ok(Number.isFinite(phiOf(1e9, 1000, 100)), 'no overflow for very long silences');
});

test('phi accrual: regular heartbeats keep phi low; silence makes it cross the threshold', () => {
  const d = new PhiAccrualDetector({ threshold: 8, acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 50 });
  let t = 0;
  for (let i = 0; i < 100; i++) {
    t += 1000 + ((i * 37) % 41) - 20;
    d.heartbeat(t);
  }
  assert.ok(d.isAvailable(t + 1000));
  assert.ok(d.phi(t + 1000) < 1);
  assert.ok(d.phi(t + 1500) > d.phi(t + 1200), 'phi grows with silence');
  assert.ok(!d.isAvailable(t + 3000), `phi ${d.phi(t + 3000)} after a 3 s silence`);
});

test('phi accrual adapts to latency: jittery heartbeats tolerate longer gaps', () => {
  const steady = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 10 });
  const jittery = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 10 });
  let a = 0;
  let b = 0;
  for (let i = 0; i < 200; i++) {
    steady.heartbeat((a += 1000));
    jittery.heartbeat((b += i % 2 ? 600 : 1400));
  }
  assert.ok(jittery.phi(b + 1800) < steady.phi(a + 1800));
  assert.ok(!steady.isAvailable(a + 1800) && jittery.isAvailable(b + 1800));
});

test('phi accrual: the acceptable pause shifts suspicion later; the window is bounded', () => {
  const tolerant = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 3000, maxSampleSize: 10 });
  const strict = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, maxSampleSize: 10 });
  for (let t = 0; t <= 20_000; t += 1000) {
    tolerant.heartbeat(t);
    strict.heartbeat(t);
  }
  assert.ok(strict.phi(23_000) > 8);
  assert.ok(tolerant.phi(23_000) < 1);
  assert.equal(tolerant.mean, 1000, 'only the last 10 intervals count');
});

test('bad detector parameters are refused before anything is allocated', () => {
  assert.throws(() => new PhiAccrualDetector({ maxSampleSize: 1e12 }), /maxSampleSize/);
  assert.throws(() => new PhiAccrualDetector({ maxSampleSize: 0 }), /maxSampleSize/);
  assert.throws(() => new PhiAccrualDetector({ minStdDeviationMs: 0 }), /minStdDeviationMs/);
  assert.throws(() => new PhiAccrualDetector({ threshold: -1 }), /threshold/);
  assert.throws(() => new FixedTimeoutDetector(0, 1000), /interval/);
});

test('fixed timeout: available until T has passed since the last heartbeat', () => {
  assert.throws(() => new FixedTimeoutDetector(1000, 1000));
  const d = new FixedTimeoutDetector(1000, 3000);
  assert.ok(d.isAvailable(0));
  d.heartbeat(500);
  assert.ok(d.isAvailable(3499));
  assert.ok(!d.isAvailable(3500));
  assert.equal(d.suspicion(2000), 0.5);
  d.heartbeat(3600);
  assert.ok(d.isAvailable(3700));
});
