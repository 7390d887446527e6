/**
 * The leader's view of one follower's log, and the flow control of appends to it:
 * - probe: one append at a time until the follower's match is found (after a rejection, at
 *   the start of a term, after unreachability);
 * - replicate: appends are pipelined, at most maxInflight unacknowledged;
 * - snapshot: a snapshot was sent; nothing else until reportSnapshot or an acknowledgement.
 */
import type { PeerStatus } from './types.js';

export class Progress {
  match = 0;
  state: PeerStatus['state'] = 'probe';
  /** Probe: an append is out; wait for its answer or a heartbeat response before the next. */
  probeSent = false;
  /** Snapshot: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Replicate: the last index of every unacknowledged append, oldest first. */
  private inflight: number[] = [];
  ticksSinceHeard = 0;

  constructor(
    public next: number,
    private readonly maxInflight: number,
  ) {}

  becomeProbe(): void {
    this.next = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.reset('probe');
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset('replicate');
  }

  becomeSnapshot(index: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = index;
  }

  private reset(state: PeerStatus['state']): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  paused(): boolean {
    if (this.state === 'probe') return this.probeSent;
    if (this.state === 'replicate') return this.inflight.length >= this.maxInflight;
    return true;
  }

  /** An append carrying entries up to `last` (or none, when last is undefined) was sent. */
  sent(last: number | undefined): void {
    if (this.state === 'replicate') {
      if (last === undefined) return;
      this.next = last + 1;
      this.inflight.push(last);
    } else if (this.state === 'probe') this.probeSent = true;
  }

  /** The follower has everything up to `index`; false if that is old news. */
  maybeUpdate(index: number): boolean {
    this.next = Math.max(this.next, index + 1);
    if (index <= this.match) return false;
    this.match = index;
    this.probeSent = false;
    return true;
  }

  /**
   * The follower rejected an append after `rejected`; `hint` is the highest index where the
   * logs may agree. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.state !== 'probe' || this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Acknowledged appends leave the window. */
  freeUpTo(index: number): void {
    let n = 0;
    while (n < this.inflight.length && this.inflight[n] <= index) n++;
    if (n > 0) this.inflight.splice(0, n);
  }

  /** A heartbeat answered: let one more append out, in case acknowledgements were lost. */
  freeOne(): void {
    if (this.inflight.length >= this.maxInflight) this.inflight.shift();
  }
}
