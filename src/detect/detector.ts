/**
 * Failure detectors: pure, clock injected. Each watches one peer's heartbeats and
 * says, at a given moment, how suspicious the silence is.
 */
export interface FailureDetector {
  /** Records a heartbeat from the peer at monotonic time now (ms). */
  heartbeat(now: number): void;
  /** Whether the peer is considered alive at now. */
  isAvailable(now: number): boolean;
  /** A suspicion level: 0 for none, growing with silence (phi for phi accrual; silence / T for a fixed timeout). */
  suspicion(now: number): number;
}
