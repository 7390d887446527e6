/**
 * The commit step of the write path (prepare -> commit -> apply).
 *
 * A committer orders proposed transactions, gives each its zxid and hands every
 * committed transaction back, in log order, to the applier the server installed.
 * The applier is called for all committed transactions, including ones proposed
 * elsewhere (a replicated log delivers other members' writes too); `ref` is the
 * proposer's local handle and is undefined for transactions it did not propose here.
 */
export interface Committer<P extends object> {
  propose(txn: P, ref: unknown): void;
  onCommit(apply: (txn: P & { zxid: number }, ref: unknown) => void): void;
  /** Zxid of the last committed transaction. */
  readonly lastZxid: number;
  close(): Promise<void>;
}

/**
 * Commits in memory, synchronously: the transaction is applied before propose()
 * returns. Nothing is durable; a restart loses the data tree.
 */
export class MemoryCommitter<P extends object> implements Committer<P> {
  private apply: ((txn: P & { zxid: number }, ref: unknown) => void) | undefined;
  private zxid: number;

  constructor(startZxid = 0) {
    this.zxid = startZxid;
  }

  get lastZxid(): number {
    return this.zxid;
  }

  onCommit(apply: (txn: P & { zxid: number }, ref: unknown) => void): void {
    this.apply = apply;
  }

  propose(txn: P, ref: unknown): void {
    if (!this.apply) throw new Error('committer has no applier');
    const committed = txn as P & { zxid: number };
    committed.zxid = ++this.zxid;
    this.apply(committed, ref);
  }

  async close(): Promise<void> {}
}
