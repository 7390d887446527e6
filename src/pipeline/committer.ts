/**
 * The commit step of the write path (prepare -> commit -> apply).
 *
 * A committer orders proposed transactions, gives each its zxid and hands every
 * committed transaction back, in log order, to the server it is attached to. The
 * server is handed all committed transactions, including ones proposed on other
 * members (a replicated log delivers their writes too); `ref` is the proposer's local
 * handle and is undefined for transactions it did not propose here.
 */

import type { AuthId } from '../acl/acl.js';
import type { ReconfigRequest } from '../protocol/records.js';

/**
 * What this member may do for clients:
 * - standalone: the only member; it owns session expiry;
 * - leader: orders writes for the ensemble and owns session expiry;
 * - follower / observer: serves reads, forwards writes and session touches to the leader;
 * - leaderless: has no leader at the moment (an election); keeps its connections, holds writes;
 * - read-only: cut off from the quorum for a while; serves only read-only sessions;
 * - cut-off: the same without read-only mode: serves nobody until the quorum is back.
 */
export type ServingRole = 'standalone' | 'leader' | 'follower' | 'observer' | 'leaderless' | 'read-only' | 'cut-off';

export interface CommitTarget<P extends object> {
  /** A committed transaction, in log order. */
  apply(txn: P & { zxid: number }, ref: unknown): void;
  /** A proposal made here whose outcome this member will not learn (its leader changed or it was dropped). */
  abandon(ref: unknown, reason: string): void;
  /** This member's role changed. */
  roleChanged(role: ServingRole): void;
}

/** How replication stands, for srvr, mntr and `pulsekeeper status`. */
export interface ReplicationStatus {
  myid: number;
  role: ServingRole;
  term: number;
  leader: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** `spec` is the member's server.N value. */
  members: { id: number; role: 'participant' | 'observer'; clientAddress: string; spec: string }[];
  /** Leader only: one per other member. */
  peers: { id: number; voter: boolean; heartbeatAgeMs: number; lag: number; match: number; state: string; connected: boolean }[];
}

export interface Committer<P extends object> {
  attach(target: CommitTarget<P>): void;
  /** Recovers and starts taking part (replaying the committed log into the target); before clients are let in. */
  start?(): Promise<void>;
  status?(): ReplicationStatus;
  /** False when the proposal is refused at once (no leader to order it); nothing is applied then. */
  propose(txn: P, ref: unknown): boolean;
  /**
   * ZooKeeper's sync: calls done(true) once this member has applied everything the
   * ensemble had committed when sync was called; done(false) if it cannot find out.
   */
  sync(done: (ok: boolean) => void): void;
  /**
   * ZooKeeper's reconfig (incremental): done(0) once the membership change is applied
   * on this member, else ZooKeeper's error code; CONNECTIONLOSS when its outcome cannot be
   * known (the client is then disconnected). Without it, reconfig is disabled.
   */
  reconfigure?(request: ReconfigRequest, auth: readonly AuthId[], done: (err: number) => void): void;
  readonly role: ServingRole;
  /** Zxid of the last committed transaction. */
  readonly lastZxid: number;
  close(): Promise<void>;
}

/**
 * Commits in memory, synchronously: the transaction is applied before propose()
 * returns. Nothing is durable; a restart loses the data tree. For embedded use
 * (an application's tests) and as the reference the replicated log is compared with.
 */
export class MemoryCommitter<P extends object> implements Committer<P> {
  private target: CommitTarget<P> | undefined;
  private zxid: number;
  readonly role: ServingRole = 'standalone';

  constructor(startZxid = 0) {
    this.zxid = startZxid;
  }

  get lastZxid(): number {
    return this.zxid;
  }

  attach(target: CommitTarget<P>): void {
    this.target = target;
    target.roleChanged(this.role);
  }

  propose(txn: P, ref: unknown): boolean {
    if (!this.target) throw new Error('committer is not attached');
    const committed = txn as P & { zxid: number };
    committed.zxid = ++this.zxid;
    this.target.apply(committed, ref);
    return true;
  }

  sync(done: (ok: boolean) => void): void {
    done(true);
  }

  async close(): Promise<void> {}
}
