/**
 * The in-memory Raft log: the entries after `start` (a snapshot or compaction point whose
 * term is still known), with how far they have been handed to the shell for persisting and
 * how far the shell has confirmed them durable.
 */
import type { Entry, SnapshotMeta } from './types.js';

/** Rough encoded size of an entry, for batching and flow-control limits. */
export function entryBytes(e: Entry): number {
  let n = 24 + (e.data?.length ?? 0);
  if (e.change) n += 16 + e.change.context.length;
  if (e.config) {
    n += 8 * (e.config.membership.voters.length + e.config.membership.learners.length);
    for (const c of Object.values(e.config.contexts)) n += 8 + c.length;
  }
  return n;
}

export class RaftLog {
  /** Entries at start+1, start+2, ... */
  private entries: Entry[] = [];
  /** First index not yet handed to the shell in a Ready. */
  unstable: number;
  /** Entries in (start, persisted] are on the shell's stable storage. */
  persisted: number;
  commit = 0;

  constructor(
    public start: number,
    public startTerm: number,
  ) {
    this.unstable = start + 1;
    this.persisted = start;
  }

  lastIndex(): number {
    return this.start + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length ? this.entries[this.entries.length - 1].term : this.startTerm;
  }

  /** The term at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.start) return this.startTerm;
    if (index < this.start || index > this.lastIndex()) return undefined;
    return this.entries[index - this.start - 1].term;
  }

  entry(index: number): Entry | undefined {
    return index > this.start && index <= this.lastIndex() ? this.entries[index - this.start - 1] : undefined;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft's election restriction: is a log ending at (index, term) at least as up to date as this one? */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi), at most `maxBytes` of them but always at least one. The range must be
   * held in memory (lo > start).
   */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const from = lo - this.start - 1;
    const to = Math.min(hi, this.lastIndex() + 1) - this.start - 1;
    if (from < 0) throw new RangeError(`log slice from ${lo} is compacted (log starts after ${this.start})`);
    if (maxBytes === Infinity) return this.entries.slice(from, Math.max(from, to));
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = from; i < to; i++) {
      bytes += entryBytes(this.entries[i]);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(this.entries[i]);
    }
    return out;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: where a leader's and a
   * follower's logs may still agree (fast backtracking). Terms never decrease along a log, so a
   * binary search does.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    let hi = Math.min(index, this.lastIndex());
    if (hi < this.start) return [hi, 0];
    let lo = this.start;
    if (this.startTerm > term) return [this.start, 0];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.term(mid)! <= term) lo = mid;
      else hi = mid - 1;
    }
    return [lo, this.term(lo)!];
  }

  /** Appends entries that follow on from the last one (the leader's own proposals). */
  append(entries: Entry[]): void {
    for (const e of entries) this.entries.push(e);
  }

  /**
   * A follower's append: entries follow on from an index whose term already matches. Entries
   * already present are kept; from the first conflict on, the log is replaced. Returns the
   * index of the first entry written (so configurations from there on are re-read), or 0 if
   * every entry was already there.
   */
  merge(entries: Entry[]): number {
    let i = 0;
    while (i < entries.length && this.term(entries[i].index) === entries[i].term) i++;
    if (i === entries.length) return 0;
    const first = entries[i].index;
    if (first <= this.lastIndex()) {
      if (first <= this.commit) throw new Error(`log conflict at committed index ${first} (commit ${this.commit})`);
      this.entries.length = first - this.start - 1;
      this.unstable = Math.min(this.unstable, first);
      this.persisted = Math.min(this.persisted, first - 1);
    }
    for (; i < entries.length; i++) this.entries.push(entries[i]);
    return first;
  }

  /** The log restarts after a snapshot from the leader. */
  restore(meta: SnapshotMeta): void {
    this.entries = [];
    this.start = meta.index;
    this.startTerm = meta.term;
    this.unstable = meta.index + 1;
    // Stable storage holds the old log until the snapshot is persisted.
    this.persisted = Math.min(this.persisted, meta.index - 1);
    this.commit = meta.index;
  }

  /** Drops entries up to `index` (which must be durable and applied). */
  compact(index: number): void {
    if (index <= this.start) return;
    const term = this.term(index);
    if (term === undefined) throw new RangeError(`cannot compact to ${index}: beyond the log's end ${this.lastIndex()}`);
    this.entries = this.entries.slice(index - this.start);
    this.start = index;
    this.startTerm = term;
  }

  /** The shell made a Ready durable: its entries, as far as they still match the log in memory. */
  stableTo(entries: Entry[]): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (this.term(e.index) === e.term && e.index > this.start) {
        this.persisted = Math.max(this.persisted, e.index);
        return;
      }
    }
  }

  stableSnapshot(meta: SnapshotMeta): void {
    if (this.start === meta.index && this.startTerm === meta.term) this.persisted = Math.max(this.persisted, meta.index);
  }
}
