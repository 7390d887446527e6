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

const NONE = -1;

/**
 * Sessions live in columns of typed arrays indexed by a slot number, and each bucket is
 * a doubly linked list threaded through the slots (`next`, `prev`): a session costs a few
 * dozen bytes and a map entry, and a touch moves it between lists without allocating.
 * The shell may attach a value of its own to each session (its connection), kept only
 * while the session is tracked.
 */
export class SessionTracker<A = never> {
  private readonly slotOf = new Map<bigint, number>();
  private ids = new BigInt64Array(0);
  private timeouts = new Int32Array(0);
  private lastHeard = new Float64Array(0);
  /** The tick boundary each session's bucket stands for; -1 once expiring or closing. */
  private bucketAt = new Float64Array(0);
  private next = new Int32Array(0);
  private prev = new Int32Array(0);
  private readonly attachments: (A | undefined)[] = [];
  /** Slots given back by removed sessions, as a list through `next`. */
  private free = NONE;
  private used = 0;
  /** The first slot of each bucket, by its tick boundary. */
  private readonly buckets = new Map<number, number>();
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
    return this.slotOf.size;
  }

  has(id: bigint): boolean {
    const i = this.slotOf.get(id);
    return i !== undefined && this.bucketAt[i] >= 0;
  }

  private allocate(): number {
    if (this.free !== NONE) {
      const i = this.free;
      this.free = this.next[i];
      return i;
    }
    // Grown by half at a time: the columns are most of what a session costs here.
    if (this.used === this.ids.length) this.grow(Math.max(1024, Math.ceil(this.used * 1.5)));
    return this.used++;
  }

  private grow(capacity: number): void {
    const widen = <T extends BigInt64Array | Float64Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old as never);
      return next;
    };
    this.ids = widen(this.ids, (n) => new BigInt64Array(n));
    this.timeouts = widen(this.timeouts, (n) => new Int32Array(n));
    this.lastHeard = widen(this.lastHeard, (n) => new Float64Array(n));
    this.bucketAt = widen(this.bucketAt, (n) => new Float64Array(n));
    this.next = widen(this.next, (n) => new Int32Array(n));
    this.prev = widen(this.prev, (n) => new Int32Array(n));
  }

  add(id: bigint, timeoutMs: number, now: number): void {
    this.remove(id);
    const i = this.allocate();
    this.slotOf.set(id, i);
    this.ids[i] = id;
    this.timeouts[i] = timeoutMs;
    this.lastHeard[i] = now;
    this.bucketAt[i] = -1;
    this.place(i, now);
  }

  private place(i: number, now: number): void {
    const b = Math.max(this.deadlineBucket(now, this.timeouts[i]), this.nextSweep);
    if (b === this.bucketAt[i]) return;
    this.unlink(i);
    const head = this.buckets.get(b) ?? NONE;
    this.next[i] = head;
    this.prev[i] = NONE;
    if (head !== NONE) this.prev[head] = i;
    this.buckets.set(b, i);
    this.bucketAt[i] = b;
  }

  /** Takes a session out of its bucket's list, if it is in one. */
  private unlink(i: number): void {
    const b = this.bucketAt[i];
    if (b < 0) return;
    const { next, prev } = this;
    if (prev[i] !== NONE) next[prev[i]] = next[i];
    else if (next[i] !== NONE) this.buckets.set(b, next[i]);
    else this.buckets.delete(b);
    if (next[i] !== NONE) prev[next[i]] = prev[i];
    this.bucketAt[i] = -1;
  }

  /** Renews a live session. False if unknown, expiring or closing. */
  touch(id: bigint, now: number): boolean {
    const i = this.slotOf.get(id);
    if (i === undefined || this.bucketAt[i] < 0) return false;
    this.lastHeard[i] = now;
    this.place(i, now);
    return true;
  }

  /** Stops tracking liveness of a session that is being closed (it is no longer expired by a sweep). */
  setClosing(id: bigint): void {
    const i = this.slotOf.get(id);
    if (i !== undefined) this.unlink(i);
  }

  remove(id: bigint): void {
    const i = this.slotOf.get(id);
    if (i === undefined) return;
    this.unlink(i);
    this.slotOf.delete(id);
    this.attachments[i] = undefined;
    this.next[i] = this.free;
    this.free = i;
  }

  /** Gives a session a fresh full timeout (after a leader change, for instance). */
  renew(id: bigint, now: number): void {
    const i = this.slotOf.get(id);
    if (i !== undefined && this.bucketAt[i] >= 0) {
      this.lastHeard[i] = now;
      this.place(i, now);
    }
  }

  /**
   * Gives every live session a fresh full timeout and restarts the sweep at now: a
   * new leader does this so that a failover never expires sessions whose touches
   * went to the old leader.
   */
  renewAll(now: number): void {
    this.nextSweep = this.boundaryAfter(now);
    for (const i of this.slotOf.values()) {
      if (this.bucketAt[i] < 0) continue;
      this.lastHeard[i] = now;
      this.place(i, now);
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
      let i = this.buckets.get(b) ?? NONE;
      this.buckets.delete(b);
      while (i !== NONE) {
        const after = this.next[i];
        this.bucketAt[i] = -1;
        out.push({ id: this.ids[i], timeoutMs: this.timeouts[i], lastHeardAt: this.lastHeard[i], sinceLastHeardMs: now - this.lastHeard[i] });
        i = after;
      }
      this.nextSweep += this.tickTime;
    }
    return out;
  }

  /** Attaches the shell's value to a tracked session (false if it is not tracked); undefined detaches. */
  attach(id: bigint, value: A | undefined): boolean {
    const i = this.slotOf.get(id);
    if (i === undefined) return false;
    this.attachments[i] = value;
    return true;
  }

  attachment(id: bigint): A | undefined {
    const i = this.slotOf.get(id);
    return i === undefined ? undefined : this.attachments[i];
  }

  /** The tick boundary a live session expires at, if it is tracked and not expiring or closing. */
  expiresAt(id: bigint): number | undefined {
    const i = this.slotOf.get(id);
    return i !== undefined && this.bucketAt[i] >= 0 ? this.bucketAt[i] : undefined;
  }

  /** When the shell should call tick() next. */
  nextTickAt(): number {
    return this.nextSweep;
  }

  *entries(): IterableIterator<{ id: bigint; timeoutMs: number; lastHeardAt: number; expiresAt: number }> {
    for (const [id, i] of this.slotOf) yield { id, timeoutMs: this.timeouts[i], lastHeardAt: this.lastHeard[i], expiresAt: this.bucketAt[i] };
  }
}

/** Clamps a requested timeout into [min, max], as ZooKeeper negotiates it. */
export function negotiateTimeout(requested: number, min: number, max: number): number {
  return Math.min(Math.max(requested, min), max);
}
