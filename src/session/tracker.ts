/**
 * The session tracker: heartbeat-based liveness of client sessions, as a pure
 * state machine. Touches (any ping or request) and clock readings go in; expired
 * sessions come out of tick().
 *
 * Deadlines are rounded up to the next tick boundary and sessions are kept in one
 * bucket per boundary (ZooKeeper's ExpiryQueue), so a touch is O(1) and a sweep
 * looks only at the buckets that are due. A session not touched for its timeout is
 * returned by the first tick at or after its deadline: within [timeout, timeout +
 * tickTime] of its last touch when the shell ticks on every boundary.
 */

export interface Expired {
  id: bigint;
  timeoutMs: number;
  lastHeardAt: number;
  sinceLastHeardMs: number;
}

interface Entry {
  timeoutMs: number;
  lastHeardAt: number;
  /** The bucket (tick boundary) the session is in; -1 once it is expiring or closing. */
  bucket: number;
}

export class SessionTracker {
  private readonly sessions = new Map<bigint, Entry>();
  private readonly buckets = new Map<number, Set<bigint>>();
  /** The next boundary not swept yet. */
  private nextSweep: number;

  constructor(
    readonly tickTime: number,
    now = 0,
  ) {
    this.nextSweep = this.boundaryAfter(now);
  }

  /** The first tick boundary strictly after t. */
  private boundaryAfter(t: number): number {
    return (Math.floor(t / this.tickTime) + 1) * this.tickTime;
  }

  /** The tick boundary at or after the session's deadline. */
  private deadlineBucket(now: number, timeoutMs: number): number {
    return Math.ceil((now + timeoutMs) / this.tickTime) * this.tickTime;
  }

  get size(): number {
    return this.sessions.size;
  }

  has(id: bigint): boolean {
    const e = this.sessions.get(id);
    return e !== undefined && e.bucket >= 0;
  }

  add(id: bigint, timeoutMs: number, now: number): void {
    this.remove(id);
    const e: Entry = { timeoutMs, lastHeardAt: now, bucket: -1 };
    this.sessions.set(id, e);
    this.place(id, e, now);
  }

  private place(id: bigint, e: Entry, now: number): void {
    const b = Math.max(this.deadlineBucket(now, e.timeoutMs), this.nextSweep);
    if (b === e.bucket) return;
    if (e.bucket >= 0) this.unbucket(id, e.bucket);
    let set = this.buckets.get(b);
    if (!set) this.buckets.set(b, (set = new Set()));
    set.add(id);
    e.bucket = b;
  }

  private unbucket(id: bigint, b: number): void {
    const set = this.buckets.get(b);
    if (!set) return;
    set.delete(id);
    if (set.size === 0) this.buckets.delete(b);
  }

  /** Renews a live session. False if unknown, expiring or closing. */
  touch(id: bigint, now: number): boolean {
    const e = this.sessions.get(id);
    if (!e || e.bucket < 0) return false;
    e.lastHeardAt = now;
    this.place(id, e, now);
    return true;
  }

  /** Stops tracking liveness of a session that is being closed (it is no longer expired by a sweep). */
  setClosing(id: bigint): void {
    const e = this.sessions.get(id);
    if (!e || e.bucket < 0) return;
    this.unbucket(id, e.bucket);
    e.bucket = -1;
  }

  remove(id: bigint): void {
    const e = this.sessions.get(id);
    if (!e) return;
    if (e.bucket >= 0) this.unbucket(id, e.bucket);
    this.sessions.delete(id);
  }

  /** Gives a session a fresh full timeout (after a leader change, for instance). */
  renew(id: bigint, now: number): void {
    const e = this.sessions.get(id);
    if (e && e.bucket >= 0) {
      e.lastHeardAt = now;
      this.place(id, e, now);
    }
  }

  /**
   * Gives every live session a fresh full timeout and restarts the sweep at now: a
   * new leader does this so that a failover never expires sessions whose touches
   * went to the old leader.
   */
  renewAll(now: number): void {
    this.buckets.clear();
    this.nextSweep = this.boundaryAfter(now);
    for (const [id, e] of this.sessions) {
      if (e.bucket < 0) continue;
      e.bucket = -1;
      e.lastHeardAt = now;
      this.place(id, e, now);
    }
  }

  /**
   * Sweeps every boundary up to now. Returns the sessions whose deadline passed,
   * each once; they stay known (and untouchable) until remove().
   */
  tick(now: number): Expired[] {
    const out: Expired[] = [];
    while (this.nextSweep <= now) {
      const b = this.nextSweep;
      const set = this.buckets.get(b);
      if (set) {
        this.buckets.delete(b);
        for (const id of set) {
          const e = this.sessions.get(id)!;
          e.bucket = -1;
          out.push({ id, timeoutMs: e.timeoutMs, lastHeardAt: e.lastHeardAt, sinceLastHeardMs: now - e.lastHeardAt });
        }
      }
      this.nextSweep += this.tickTime;
    }
    return out;
  }

  /** The tick boundary a live session expires at, if it is tracked and not expiring or closing. */
  expiresAt(id: bigint): number | undefined {
    const e = this.sessions.get(id);
    return e && e.bucket >= 0 ? e.bucket : undefined;
  }

  /** When the shell should call tick() next. */
  nextTickAt(): number {
    return this.nextSweep;
  }

  *entries(): IterableIterator<{ id: bigint; timeoutMs: number; lastHeardAt: number; expiresAt: number }> {
    for (const [id, e] of this.sessions) yield { id, timeoutMs: e.timeoutMs, lastHeardAt: e.lastHeardAt, expiresAt: e.bucket };
  }
}

/** Clamps a requested timeout into [min, max], as ZooKeeper negotiates it. */
export function negotiateTimeout(requested: number, min: number, max: number): number {
  return Math.min(Math.max(requested, min), max);
}
