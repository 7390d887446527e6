import type { FailureDetector } from './detector.js';

/**
 * The phi accrual failure detector (Hayashibara et al., 2004), configured as
 * Akka's: a sliding window of heartbeat inter-arrival times, modelled as a normal
 * distribution; phi = -log10(P(a heartbeat arrives later than now)).
 *
 * P uses a logistic approximation of the normal CDF (Bowling et al., 2009, as in
 * Akka): with y = (t - mean) / stddev,
 *   P(later) = e / (1 + e),  e = exp(-y * (1.5976 + 0.070566 * y^2)),
 * whose error against the exact CDF stays below 1.4e-4; phi itself stays within
 * 3% of the exact value up to 3.5 standard deviations (tested). Below the mean
 * the form 1 - 1/(1 + e) avoids dividing huge numbers; phi is -log10 of P.
 */
export interface PhiAccrualOptions {
  /** phi above which the peer is considered failed (Akka: 8). */
  threshold: number;
  /** Inter-arrival samples kept (Akka: 1000). */
  maxSampleSize: number;
  /** Floor on the standard deviation, so very regular heartbeats do not make phi explode (Akka: 100 ms). */
  minStdDeviationMs: number;
  /** Pause tolerated on top of the mean before suspicion grows quickly (Akka: 3 s). */
  acceptableHeartbeatPauseMs: number;
  /** Expected interval before any sample exists (Akka: 1 s). */
  firstHeartbeatEstimateMs: number;
}

export const AKKA_DEFAULTS: PhiAccrualOptions = {
  threshold: 8,
  maxSampleSize: 1000,
  minStdDeviationMs: 100,
  acceptableHeartbeatPauseMs: 3000,
  firstHeartbeatEstimateMs: 1000,
};

/** The window is allocated up front, so its size is bounded. */
const MAX_SAMPLES = 100_000;

export class PhiAccrualDetector implements FailureDetector {
  readonly options: PhiAccrualOptions;
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;
  private sum = 0;
  private sumSq = 0;
  private last: number | undefined;

  constructor(options: Partial<PhiAccrualOptions> = {}) {
    this.options = { ...AKKA_DEFAULTS, ...options };
    if (!(this.options.threshold > 0)) throw new Error('threshold must be positive');
    if (!(Number.isInteger(this.options.maxSampleSize) && this.options.maxSampleSize >= 1 && this.options.maxSampleSize <= MAX_SAMPLES)) {
      throw new Error(`maxSampleSize must be an integer in 1..${MAX_SAMPLES}`);
    }
    if (!(this.options.minStdDeviationMs > 0)) throw new Error('minStdDeviationMs must be positive');
    if (!(this.options.acceptableHeartbeatPauseMs >= 0)) throw new Error('acceptableHeartbeatPauseMs must not be negative');
    if (!(this.options.firstHeartbeatEstimateMs > 0)) throw new Error('firstHeartbeatEstimateMs must be positive');
    this.samples = new Float64Array(this.options.maxSampleSize);
    // Seed the window as Akka does: two samples around the first estimate.
    const mean = this.options.firstHeartbeatEstimateMs;
    const sd = mean / 4;
    this.add(mean - sd);
    this.add(mean + sd);
  }

  private add(interval: number): void {
    if (this.count === this.samples.length) {
      const old = this.samples[this.next];
      this.sum -= old;
      this.sumSq -= old * old;
    } else {
      this.count++;
    }
    this.samples[this.next] = interval;
    this.next = (this.next + 1) % this.samples.length;
    this.sum += interval;
    this.sumSq += interval * interval;
  }

  heartbeat(now: number): void {
    if (this.last !== undefined) this.add(now - this.last);
    this.last = now;
  }

  get mean(): number {
    return this.sum / this.count;
  }

  get stdDeviation(): number {
    const m = this.mean;
    return Math.sqrt(Math.max(0, this.sumSq / this.count - m * m));
  }

  suspicion(now: number): number {
    return this.phi(now);
  }

  phi(now: number): number {
    if (this.last === undefined) return 0;
    const elapsed = now - this.last;
    const mean = this.mean + this.options.acceptableHeartbeatPauseMs;
    const sd = Math.max(this.stdDeviation, this.options.minStdDeviationMs);
    return phiOf(elapsed, mean, sd);
  }

  isAvailable(now: number): boolean {
    return this.phi(now) < this.options.threshold;
  }
}

/** phi for a silence of `elapsed` ms given the inter-arrival mean and standard deviation. */
export function phiOf(elapsed: number, mean: number, stdDeviation: number): number {
  const y = (elapsed - mean) / stdDeviation;
  const logE = -y * (1.5976 + 0.070566 * y * y);
  if (elapsed > mean) {
    // -log10(e / (1 + e)) in log space, so a long silence gives a large phi, not Infinity.
    return -logE / Math.LN10 + Math.log10(1 + Math.exp(logE));
  }
  const e = Math.exp(logE);
  return -Math.log10(1 - 1 / (1 + e));
}
