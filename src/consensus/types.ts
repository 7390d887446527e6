/**
 * The consensus core's vocabulary: log entries, persistent state, messages between
 * members, and the Ready batch the shell acts on. The core (raft.ts) is a pure,
 * deterministic state machine in the style of etcd's raft package: ticks, messages and
 * proposals in; entries and hard state to persist, messages to send, committed
 * entries to apply and role changes out. No timers, sockets or files inside it.
 */

/** A member's id: ZooKeeper's myid (server.N). 0 means "none". */
export type MemberId = number;
export const NONE: MemberId = 0;

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader' | 'learner';

/** A membership change: Raft's single-server change (one voter or learner at a time). */
export interface ConfigChange {
  op: 'add-voter' | 'add-learner' | 'remove';
  id: MemberId;
  /** Opaque to the core: the member's addresses as the shell writes them (ZooKeeper's server.N value). */
  context: string;
}

export interface Membership {
  voters: MemberId[];
  /** Non-voting members (ZooKeeper's observers): they receive the log but never vote or count for a quorum. */
  learners: MemberId[];
}

/** A whole configuration: the membership and every member's context (addresses). */
export interface Configuration {
  membership: Membership;
  contexts: Record<MemberId, string>;
}

export interface Entry {
  index: number;
  term: number;
  /** 'normal': an application command; 'config': a membership change; 'empty': a new leader's first entry. */
  kind: 'normal' | 'config' | 'empty';
  /** The command, for 'normal' entries. */
  data?: Uint8Array;
  /** The change, for 'config' entries. */
  change?: ConfigChange;
  /**
   * For 'config' entries: the whole configuration after the change, written by the leader, so a
   * member adopts it without knowing the configuration before (a member added later starts with
   * an empty bootstrap). Storage and transport must keep it; the core refuses config entries without it.
   */
  config?: Configuration;
}

/** What must be on stable storage before messages that depend on it leave. */
export interface HardState {
  term: number;
  vote: MemberId;
  commit: number;
}

export interface SnapshotMeta {
  /** Last log index the snapshot covers, and its term. */
  index: number;
  term: number;
  /** Membership as of `index`, with every member's context (addresses). */
  membership: Membership;
  contexts: Record<MemberId, string>;
}

interface MessageBase {
  from: MemberId;
  to: MemberId;
  term: number;
}

export type Message = MessageBase &
  (
    | { type: 'append'; /** index and term of the entry before `entries` */ index: number; logTerm: number; entries: Entry[]; commit: number }
    | { type: 'append-resp'; reject: boolean; /** last index matched (accept) or the rejected index */ index: number; /** rejection hint: follower's last index / conflicting term */ hintIndex: number; hintTerm: number }
    | { type: 'heartbeat'; commit: number; /** read-index round this heartbeat confirms, 0 if none */ context: number }
    | { type: 'heartbeat-resp'; context: number }
    | { type: 'pre-vote' | 'vote'; /** candidate's last log index and term */ index: number; logTerm: number; /** leadership transfer: ignore leases */ transfer: boolean }
    | { type: 'pre-vote-resp' | 'vote-resp'; reject: boolean }
    | { type: 'snapshot'; snapshot: SnapshotMeta }
    | { type: 'snapshot-status'; reject: boolean }
    | { type: 'timeout-now' }
    /** A follower forwards proposals to its leader. */
    | { type: 'propose'; entries: Entry[] }
    /** Follower asks the leader for a read index (ZooKeeper's sync); the leader answers once its leadership is confirmed. */
    | { type: 'read-index'; context: number }
    | { type: 'read-index-resp'; index: number; context: number }
  );

export type MessageType = Message['type'];

/** A read index became known: everything up to `index` must be applied before answering `context`. */
export interface ReadState {
  index: number;
  context: number;
}

export interface SoftState {
  leader: MemberId;
  role: Role;
}

/**
 * A batch of work for the shell. In order:
 *  1. persist `snapshot` (if any), then `entries` (the first may overwrite a suffix of the stored log),
 *     then `hardState` (if any), with one fsync covering them all;
 *  2. send `messages`;
 *  3. apply `committed` in order (and install `snapshot` first, if any);
 *  4. call advance(ready).
 * `messagesBeforePersist` may leave before step 1: they are the leader's appends and heartbeats,
 * which do not depend on the leader's own storage (a leader counts itself toward a quorum only
 * after advance() says its entries are stable).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: SnapshotMeta;
  committed: Entry[];
  messagesBeforePersist: Message[];
  messages: Message[];
  readStates: ReadState[];
}

export interface PeerStatus {
  id: MemberId;
  voter: boolean;
  /** Highest index known to be replicated on the peer. */
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  /** Ticks since the leader last heard from this peer. */
  ticksSinceHeard: number;
}

export interface Status {
  id: MemberId;
  term: number;
  role: Role;
  leader: MemberId;
  commit: number;
  applied: number;
  lastIndex: number;
  membership: Membership;
  /** Leader only: one per other member. */
  peers: PeerStatus[];
}

export interface RaftConfig {
  id: MemberId;
  /** Ticks without hearing from a leader before a follower campaigns; randomised to [n, 2n). */
  electionTicks: number;
  /** Leader heartbeat interval in ticks (< electionTicks). */
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Append messages in flight per follower before the leader waits for acknowledgements. */
  maxInflight: number;
  /** Soft limit on the bytes of entries in one append message. */
  maxMessageBytes: number;
  /** Entries kept in memory behind a snapshot, so a slightly slow follower still gets entries, not a snapshot. */
  keepBehindSnapshot: number;
  /** Uniform [0, 1): randomises election timeouts. Seeded in simulations. */
  random: () => number;
  /** Leader refuses proposals while its uncommitted entries exceed this many bytes. Default 64 MiB. */
  maxUncommittedBytes?: number;
}

/** State a member starts from: what its storage recovered. */
export interface Restored {
  hardState: HardState;
  /** Latest snapshot on disk (entries before snapshot.index + 1 are gone). */
  snapshot?: SnapshotMeta;
  /** Entries after the snapshot, in order. */
  entries: Entry[];
  /** Membership when there is neither snapshot nor config entry: the initial (bootstrap) configuration. */
  bootstrap: { membership: Membership; contexts: Record<MemberId, string> };
  /** Highest index already applied to the state machine (the snapshot's index after recovery). */
  applied: number;
}
