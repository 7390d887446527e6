import type { FailureDetector } from './detector.js';

/**
 * The classic detector: heartbeats every t ms; a peer not heard from for the
 * failure time T (> t) is declared failed.
 */
export class FixedTimeoutDetector implements FailureDetector {
  private last: number | undefined;

  constructor(
    readonly heartbeatIntervalMs: number,
    readonly failureTimeMs: number,
  ) {
    if (!(heartbeatIntervalMs > 0)) throw new Error('the heartbeat interval t must be positive');
    if (!(failureTimeMs > heartbeatIntervalMs)) throw new Error('failure time T must exceed the heartbeat interval t');
  }

  heartbeat(now: number): void {
    this.last = now;
  }

  /** A peer never heard from counts as available: callers start its clock with a first heartbeat when they learn of it. */
  isAvailable(now: number): boolean {
    return this.last === undefined || now - this.last < this.failureTimeMs;
  }

  suspicion(now: number): number {
    return this.last === undefined ? 0 : Math.max(0, now - this.last) / this.failureTimeMs;
  }

  get lastHeartbeat(): number | undefined {
    return this.last;
  }
}
