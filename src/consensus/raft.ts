/**
 * The Raft consensus core: a pure, deterministic state machine (no timers, I/O, clocks or
 * Math.random; randomness comes from config.random). Ticks, messages and proposals go in;
 * Ready batches of entries to persist, messages to send, entries to apply and read states
 * come out.
 *
 * Driving it (the shell):
 *  - call tick() once per tick interval of monotonic time, step(m) for every message received
 *    (it returns a reason if it dropped the message as malformed), and propose /
 *    proposeConfigChange / readIndex / transferLeadership on requests;
 *  - then, while hasReady(): rd = ready(); send rd.messagesBeforePersist; write rd.snapshot,
 *    rd.entries (the first may overwrite a suffix of the stored log) and rd.hardState with one
 *    fsync; send rd.messages; install rd.snapshot and apply rd.committed in order; answer each
 *    of rd.readStates once applied >= its index; call advance(rd). One Ready is outstanding at
 *    a time; ticks, messages and requests may keep arriving before advance();
 *  - snapshots: meta = snapshotMeta(applied) (the membership as of that index, which may differ
 *    from membership() while a change is uncommitted); write the state with it, then call
 *    snapshotTaken(meta): the in-memory log is dropped up to meta.index - keepBehindSnapshot.
 *    A 'snapshot' message to send names the newest snapshot taken; attach its bytes, and always
 *    call reportSnapshot(to, delivered) afterwards, or the follower waits in snapshot state.
 *    A snapshot newer than the commit index received from the leader shows up as rd.snapshot,
 *    and the log restarts after it (unless the log already holds the snapshot's last entry:
 *    then the commit index just moves up to it);
 *  - restart with Restored from storage. A member added to a running ensemble starts with an
 *    empty bootstrap membership: it learns the configuration from the log or a snapshot.
 *
 * Membership: single-server changes, one at a time. A configuration takes effect on a member
 * as soon as its entry is in the member's log, committed or not: the latest configuration in
 * the log governs quorums, votes counted and replication; if the entry is overwritten, the
 * member goes back to the previous one. Config entries carry the whole resulting
 * configuration. The leader proposes a change only when the previous change is committed and it
 * has committed an entry of its own term, which keeps the quorums of any two configurations in
 * use overlapping, across leader changes too. A member campaigns if it is a voter in its latest
 * configuration or in the one at its commit index (a member whose removal is not yet committed
 * may be needed to elect the leader that commits it; it does not count its own vote then). A
 * leader that removes itself keeps leading, without counting itself, until the removal
 * commits, tells the others, and steps down. Learners receive the log and never campaign; a
 * candidate or leader counts only the voters of its configuration, so a learner's vote or
 * acknowledgement never counts (a learner still answers vote requests: the candidate may
 * already know it as promoted).
 *
 * Elections use pre-vote (a member that cannot win does not raise its term) and, with
 * checkQuorum, leases: a member that heard from a leader within the election timeout ignores
 * (pre-)votes unless they come from a leadership transfer, and a leader that has not heard
 * from a quorum within an election timeout steps down. A new leader appends an empty entry
 * and commits by counting only entries of its own term. Reads: readIndex() records the commit
 * index, confirms leadership with a heartbeat round to a quorum (reads arriving before the
 * round leaves share it), and then emits a ReadState; a new leader defers reads until its
 * empty entry commits.
 */
import { applyChange, checkChange, ConfigHistory, copyConfiguration, isLearner, isVoter, quorum, validConfiguration } from './config.js';
import { entryBytes, RaftLog } from './log.js';
import { Progress } from './progress.js';
import {
  NONE,
  type ConfigChange,
  type Configuration,
  type Entry,
  type HardState,
  type MemberId,
  type Membership,
  type Message,
  type MessageType,
  type RaftConfig,
  type ReadState,
  type Ready,
  type Restored,
  type Role,
  type SnapshotMeta,
  type SoftState,
  type Status,
} from './types.js';

const DEFAULT_MAX_UNCOMMITTED_BYTES = 64 * 1024 * 1024;
/** Read requests a leader holds at once (waiting for a heartbeat round or its first commit). */
const MAX_PENDING_READS = 4096;
/** What a leader sends that does not depend on its own storage, so it may leave before the fsync. */
const LEADER_EARLY_MESSAGES = new Set<MessageType>(['append', 'heartbeat', 'snapshot', 'timeout-now', 'read-index-resp']);

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message as the core builds it: `from` is filled in, `term` defaults to the current term. */
type Outgoing = DistributiveOmit<Message, 'from' | 'term'> & { term?: number };

interface PendingRead {
  index: number;
  context: number;
  from: MemberId;
  /** Heartbeat round whose acknowledgement by a quorum confirms this read. */
  round: number;
}

export class RaftNode {
  readonly id: MemberId;
  private readonly cfg: RaftConfig;
  private readonly maxUncommittedBytes: number;
  private readonly log: RaftLog;
  private readonly configs: ConfigHistory;

  private currentTerm: number;
  private vote: MemberId;
  private lead: MemberId = NONE;
  private currentRole: Role = 'follower';
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<MemberId, boolean>();

  // Leader state.
  private progress = new Map<MemberId, Progress>();
  private termStart = 0;
  private uncommittedBytes = 0;
  private transferee: MemberId = NONE;
  private transferElapsed = 0;
  private timeoutNowSent = false;
  private appendPending = false;
  private readRound = 0;
  private roundSent = true;
  private readAcks = new Map<MemberId, number>();
  private pendingReads: PendingRead[] = [];
  private deferredReads: { from: MemberId; context: number }[] = [];

  private appliedIndex: number;
  /** Committed entries up to here have been handed to the shell. */
  private handedOut: number;
  private latestSnapshot?: SnapshotMeta;
  private pendingSnapshot?: SnapshotMeta;
  private msgs: Message[] = [];
  private earlyMsgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;
  private outstanding?: Ready;

  constructor(config: RaftConfig, restored: Restored) {
    checkRaftConfig(config);
    this.id = config.id;
    this.cfg = config;
    this.maxUncommittedBytes = config.maxUncommittedBytes ?? DEFAULT_MAX_UNCOMMITTED_BYTES;

    const snap = restored.snapshot;
    if (snap && (!isIndex(snap.index) || !isIndex(snap.term) || !validConfiguration(snap))) throw new Error('restored snapshot metadata is malformed');
    const base = snap ?? restored.bootstrap;
    if (!validConfiguration(base)) throw new Error('restored bootstrap membership is malformed');
    this.log = new RaftLog(snap?.index ?? 0, snap?.term ?? 0);
    this.configs = new ConfigHistory(copyConfiguration(base), this.log.start);
    let prevTerm = this.log.startTerm;
    for (let i = 0; i < restored.entries.length; i++) {
      const e = restored.entries[i];
      const problem = badEntry(e, this.log.start + 1 + i, prevTerm, Infinity);
      if (problem) throw new Error(`restored entry ${e?.index}: ${problem}`);
      prevTerm = e.term;
    }
    this.log.append(restored.entries);
    this.log.unstable = this.log.lastIndex() + 1;
    this.log.persisted = this.log.lastIndex();
    for (const e of restored.entries) if (e.kind === 'config') this.configs.push(e.index, e.config!);

    const hs = restored.hardState;
    if (!isIndex(hs.term) || !isIndex(hs.vote) || !isIndex(hs.commit)) throw new Error('restored hard state is malformed');
    if (hs.commit > this.log.lastIndex()) throw new Error(`restored commit ${hs.commit} is beyond the last entry ${this.log.lastIndex()}`);
    if (hs.term < this.log.lastTerm()) throw new Error(`restored term ${hs.term} is below the last entry's term ${this.log.lastTerm()}`);
    this.currentTerm = hs.term;
    this.vote = hs.vote;
    this.log.commit = Math.max(hs.commit, this.log.start);
    if (!isIndex(restored.applied) || restored.applied > this.log.commit) throw new Error(`restored applied ${restored.applied} is beyond commit ${this.log.commit}`);
    this.appliedIndex = Math.max(restored.applied, this.log.start);
    this.handedOut = this.appliedIndex;
    this.latestSnapshot = snap && { ...snap, ...copyConfiguration(snap) };

    this.becomeFollower(this.currentTerm, NONE);
    this.prevHard = this.hardState();
    this.prevSoft = this.softState();
  }

  // ---- Queries ----

  get term(): number {
    return this.currentTerm;
  }
  get role(): Role {
    return this.currentRole;
  }
  get leader(): MemberId {
    return this.lead;
  }
  get commit(): number {
    return this.log.commit;
  }
  get applied(): number {
    return this.appliedIndex;
  }
  get lastIndex(): number {
    return this.log.lastIndex();
  }

  /** The term of the entry at `index`, if it is held in memory (or is the compaction point). */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  membership(): Membership {
    return copyConfiguration(this.config()).membership;
  }

  /** Every current member's context (address string), by id. */
  contexts(): Record<MemberId, string> {
    return { ...this.config().contexts };
  }

  /**
   * The metadata for a snapshot covering up to `index`; undefined unless `index` is applied and
   * still in the log (not when a snapshot from the leader is being installed past it).
   */
  snapshotMeta(index: number): SnapshotMeta | undefined {
    const term = this.log.term(index);
    if (index > this.appliedIndex || term === undefined) return undefined;
    return { index, term, ...copyConfiguration(this.configs.at(index)) };
  }

  status(): Status {
    const peers = this.currentRole !== 'leader' ? [] : [...this.progress.entries()]
      .sort(([a], [b]) => a - b)
      .map(([id, pr]) => ({
        id,
        voter: isVoter(this.config(), id),
        match: pr.match,
        next: pr.next,
        state: pr.state,
        ticksSinceHeard: pr.ticksSinceHeard,
      }));
    return {
      id: this.id,
      term: this.currentTerm,
      role: this.currentRole,
      leader: this.lead,
      commit: this.log.commit,
      applied: this.appliedIndex,
      lastIndex: this.log.lastIndex(),
      membership: this.membership(),
      peers,
    };
  }

  // ---- Inputs ----

  tick(): void {
    if (this.currentRole === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Handles one message. Returns why a malformed message was dropped (undefined if it was taken). */
  step(m: Message): string | undefined {
    const problem = malformed(m, this.id);
    if (problem) return problem;

    if (m.term > this.currentTerm) {
      if (m.type === 'vote' || m.type === 'pre-vote') {
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTicks;
        if (inLease && !m.transfer) return undefined;
      }
      if (m.type === 'pre-vote' || (m.type === 'pre-vote-resp' && !m.reject)) {
        // A pre-vote does not change terms; a granted pre-vote carries the term the candidate would take.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.currentTerm) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A deposed leader (or one cut off while others moved on) learns the newer term and steps down.
        this.send({ type: 'append-resp', to: m.from, reject: false, index: 0, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'pre-vote') {
        this.send({ type: 'pre-vote-resp', to: m.from, reject: true });
      }
      return undefined;
    }

    if (m.type === 'vote' || m.type === 'pre-vote') {
      this.handleVoteRequest(m);
      return undefined;
    }
    switch (this.currentRole) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      default:
        this.stepFollower(m);
    }
    return undefined;
  }

  /**
   * Proposes commands. On the leader they are appended (and replicated with the next Ready);
   * a follower or learner forwards them to its leader. False if dropped: no leader known, a
   * leadership transfer under way, or too much uncommitted.
   */
  propose(data: Uint8Array[]): boolean {
    if (this.currentRole === 'leader') {
      if (this.transferee !== NONE) return false;
      return this.appendProposals(data);
    }
    if (this.lead === NONE || (this.currentRole !== 'follower' && this.currentRole !== 'learner')) return false;
    this.send({ type: 'propose', to: this.lead, entries: data.map((d) => ({ index: 0, term: 0, kind: 'normal', data: d })) });
    return true;
  }

  /** Proposes a membership change (leader only). Returns why it was refused, or undefined. */
  proposeConfigChange(change: ConfigChange): string | undefined {
    if (this.currentRole !== 'leader') return 'not the leader';
    if (this.transferee !== NONE) return 'a leadership transfer is in progress';
    if (this.log.commit < this.termStart) return 'the leader has not yet committed an entry in its term';
    if (this.configs.latestIndex() > this.log.commit) return 'a configuration change is still uncommitted';
    const why = checkChange(this.config(), change);
    if (why) return why;
    const next = applyChange(this.config(), change);
    const ch: ConfigChange = { op: change.op, id: change.id, context: change.context };
    this.appendEntries([{ index: 0, term: 0, kind: 'config', change: ch, config: next }]);
    this.appendPending = true;
    return undefined;
  }

  /**
   * Hands leadership to `to` (leader only): catch it up, then tell it to campaign at once.
   * Proposals are refused until it succeeds or an election timeout passes.
   */
  transferLeadership(to: MemberId): string | undefined {
    if (this.currentRole !== 'leader') return 'not the leader';
    if (to === this.id) return 'already the leader';
    if (!isVoter(this.config(), to)) return `member ${to} is not a voter`;
    if (this.transferee === to) return undefined;
    this.transferee = to;
    this.transferElapsed = 0;
    this.timeoutNowSent = false;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
    return undefined;
  }

  /**
   * ZooKeeper's sync: a ReadState for `context` will carry an index such that everything
   * committed before this call is at or below it. False if dropped (no leader known, too many
   * reads waiting).
   */
  readIndex(context: number): boolean {
    if (this.currentRole === 'leader') return this.leaderRead(this.id, context);
    if (this.lead === NONE || (this.currentRole !== 'follower' && this.currentRole !== 'learner')) return false;
    this.send({ type: 'read-index', to: this.lead, context });
    return true;
  }

  /**
   * The shell has durably written a snapshot covering up to meta.index (<= applied); meta should
   * come from snapshotMeta(). Snapshots sent to followers carry the membership as of meta.index.
   */
  snapshotTaken(meta: SnapshotMeta): void {
    if (meta.index > this.appliedIndex) throw new RangeError(`snapshot at ${meta.index} is beyond applied ${this.appliedIndex}`);
    if (this.latestSnapshot && meta.index <= this.latestSnapshot.index) return;
    const term = this.log.term(meta.index);
    if (term === undefined) return; // older than the log's compaction point
    if (term !== meta.term) throw new RangeError(`snapshot at ${meta.index} has term ${meta.term}, the log has ${term}`);
    const latest: SnapshotMeta = { index: meta.index, term: meta.term, ...copyConfiguration(this.configs.at(meta.index)) };
    this.latestSnapshot = latest;
    // Snapshot messages not yet handed out name the newest snapshot: the shell keeps only that one.
    for (const queue of [this.earlyMsgs, this.msgs]) {
      for (let i = 0; i < queue.length; i++) {
        const m = queue[i];
        if (m.type === 'snapshot') queue[i] = { ...m, snapshot: latest };
      }
    }
    const to = meta.index - this.cfg.keepBehindSnapshot;
    if (to > this.log.start) {
      this.log.compact(to);
      this.configs.compact(to);
    }
  }

  /** The connection to a peer failed: stop pipelining to it and probe. */
  reportUnreachable(id: MemberId): void {
    const pr = this.currentRole === 'leader' ? this.progress.get(id) : undefined;
    if (pr?.state === 'replicate') pr.becomeProbe();
  }

  /** Sending a snapshot to `id` finished (ok) or failed. */
  reportSnapshot(id: MemberId, ok: boolean): void {
    const pr = this.currentRole === 'leader' ? this.progress.get(id) : undefined;
    if (pr?.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat) before the next append.
    pr.probeSent = true;
  }

  // ---- Ready ----

  hasReady(): boolean {
    if (this.outstanding) return false;
    return (
      this.log.unstable <= this.log.lastIndex() ||
      this.pendingSnapshot !== undefined ||
      this.handedOut < this.log.commit ||
      this.msgs.length > 0 ||
      this.earlyMsgs.length > 0 ||
      this.readStates.length > 0 ||
      (this.currentRole === 'leader' && !this.roundSent) ||
      !sameHard(this.hardState(), this.prevHard) ||
      !sameSoft(this.softState(), this.prevSoft)
    );
  }

  ready(): Ready {
    if (this.outstanding) throw new Error('ready() called before advance() of the previous Ready');
    if (this.currentRole === 'leader') {
      if (this.appendPending) {
        this.appendPending = false;
        for (const id of this.progress.keys()) while (this.sendAppend(id, false));
      }
      if (!this.roundSent) this.bcastHeartbeat();
    }
    const last = this.log.lastIndex();
    const rd: Ready = {
      entries: this.log.unstable <= last ? this.log.slice(this.log.unstable, last + 1) : [],
      committed: this.handedOut < this.log.commit ? this.log.slice(this.handedOut + 1, this.log.commit + 1, this.cfg.maxMessageBytes) : [],
      messagesBeforePersist: this.earlyMsgs,
      messages: this.msgs,
      readStates: this.readStates,
    };
    if (this.pendingSnapshot) rd.snapshot = this.pendingSnapshot;
    const hs = this.hardState();
    if (!sameHard(hs, this.prevHard)) rd.hardState = hs;
    const ss = this.softState();
    if (!sameSoft(ss, this.prevSoft)) rd.softState = ss;

    this.log.unstable = last + 1;
    if (rd.committed.length) this.handedOut = rd.committed[rd.committed.length - 1].index;
    this.pendingSnapshot = undefined;
    this.earlyMsgs = [];
    this.msgs = [];
    this.readStates = [];
    this.prevHard = hs;
    this.prevSoft = ss;
    this.outstanding = rd;
    return rd;
  }

  /** The shell has done everything `rd` asked: persisted, sent, applied. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new Error('advance() must be given the Ready last returned by ready()');
    this.outstanding = undefined;
    if (rd.snapshot) {
      this.log.stableSnapshot(rd.snapshot);
      this.appliedIndex = Math.max(this.appliedIndex, rd.snapshot.index);
    }
    if (rd.entries.length) this.log.stableTo(rd.entries);
    if (rd.committed.length) this.appliedIndex = Math.max(this.appliedIndex, rd.committed[rd.committed.length - 1].index);
    // The leader's own entries now count toward its quorum.
    if (this.currentRole === 'leader' && rd.entries.length && this.maybeCommit()) this.committed();
  }

  // ---- Roles ----

  private config(): Configuration {
    return this.configs.latest();
  }

  private promotable(): boolean {
    return isVoter(this.config(), this.id);
  }

  /**
   * A member campaigns if it votes in its latest configuration, or in the committed one: a
   * member whose removal is not yet committed may still be needed to elect a leader that
   * commits it (it does not count its own vote then).
   */
  private mayCampaign(): boolean {
    return this.promotable() || isVoter(this.configs.at(this.log.commit), this.id);
  }

  private hardState(): HardState {
    return { term: this.currentTerm, vote: this.vote, commit: this.log.commit };
  }

  private softState(): SoftState {
    return { leader: this.lead, role: this.currentRole };
  }

  private resetRoleState(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + Math.floor(this.cfg.random() * this.cfg.electionTicks);
    this.votes.clear();
    this.progress.clear();
    this.uncommittedBytes = 0;
    this.abortTransfer();
    this.appendPending = false;
    this.roundSent = true;
    this.readAcks.clear();
    this.pendingReads = [];
    this.deferredReads = [];
  }

  private becomeFollower(term: number, lead: MemberId): void {
    if (term !== this.currentTerm) {
      this.currentTerm = term;
      this.vote = NONE;
    }
    this.resetRoleState();
    this.lead = lead;
    this.currentRole = isLearner(this.config(), this.id) ? 'learner' : 'follower';
  }

  private becomeLeader(): void {
    this.resetRoleState();
    this.currentRole = 'leader';
    this.lead = this.id;
    const next = this.log.lastIndex() + 1;
    for (const id of this.members()) this.progress.set(id, new Progress(next, this.cfg.maxInflight));
    this.termStart = next;
    this.appendEntries([{ index: 0, term: 0, kind: 'empty' }]);
    this.bcastAppend();
  }

  /** Every member but this one. */
  private members(): MemberId[] {
    const { voters, learners } = this.config().membership;
    return [...voters, ...learners].filter((id) => id !== this.id);
  }

  /** Starts a pre-vote round, or an election (a transfer's skips pre-vote and leases). */
  private campaign(mode: 'pre-vote' | 'election' | 'transfer'): void {
    if (!this.mayCampaign()) return;
    const pre = mode === 'pre-vote';
    if (pre) {
      this.resetRoleState();
      this.currentRole = 'pre-candidate';
      this.lead = NONE;
    } else {
      this.currentTerm++;
      this.vote = this.id;
      this.resetRoleState();
      this.currentRole = 'candidate';
      this.lead = NONE;
    }
    this.votes.set(this.id, true);
    if (this.tally() === 'won') {
      if (pre) this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const term = pre ? this.currentTerm + 1 : this.currentTerm;
    for (const v of this.config().membership.voters) {
      if (v === this.id) continue;
      this.send({ type: pre ? 'pre-vote' : 'vote', to: v, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), transfer: mode === 'transfer' });
    }
  }

  private tally(): 'won' | 'lost' | 'pending' {
    const voters = this.config().membership.voters;
    let granted = 0;
    let rejected = 0;
    for (const v of voters) {
      const g = this.votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    const q = quorum(voters.length);
    if (granted >= q) return 'won';
    return rejected > voters.length - q ? 'lost' : 'pending';
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) this.campaign(this.cfg.preVote ? 'pre-vote' : 'election');
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const pr of this.progress.values()) pr.ticksSinceHeard++;
    if (this.transferee !== NONE && ++this.transferElapsed >= this.cfg.electionTicks) this.abortTransfer();
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.currentTerm, NONE);
        return;
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Has the leader heard from a quorum of voters (itself included) within an election timeout? */
  private quorumActive(): boolean {
    const voters = this.config().membership.voters;
    let active = 0;
    for (const v of voters) {
      const pr = this.progress.get(v);
      if (v === this.id || (pr && pr.ticksSinceHeard < this.cfg.electionTicks)) active++;
    }
    return active >= quorum(voters.length);
  }

  // ---- Messages by role ----

  private handleVoteRequest(m: Extract<Message, { type: 'pre-vote' | 'vote' }>): void {
    const respType = m.type === 'vote' ? 'vote-resp' : 'pre-vote-resp';
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === 'pre-vote' && m.term > this.currentTerm);
    if (canVote && this.candidateIsUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers in the candidate's prospective term, so it is not taken as stale.
      this.send({ type: respType, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  /** Raft's election restriction. Protected so fault-injection tests can break it. */
  protected candidateIsUpToDate(index: number, logTerm: number): boolean {
    return this.log.isUpToDate(index, logTerm);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'propose':
        if (this.transferee === NONE) this.appendProposals(m.entries.map((e) => e.data!));
        return;
      case 'read-index':
        this.leaderRead(m.from, m.context);
        return;
    }
    const pr = this.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case 'append-resp':
        pr.ticksSinceHeard = 0;
        this.handleAppendResponse(m, pr);
        break;
      case 'heartbeat-resp':
        pr.ticksSinceHeard = 0;
        pr.probeSent = false;
        if (pr.state === 'replicate') pr.freeOne();
        if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(m.from, true);
        if (m.context > 0) {
          this.readAcks.set(m.from, Math.max(this.readAcks.get(m.from) ?? 0, m.context));
          this.releaseReads();
        }
        break;
      case 'snapshot-status':
        pr.ticksSinceHeard = 0;
        this.reportSnapshot(m.from, !m.reject);
        break;
    }
  }

  private handleAppendResponse(m: Extract<Message, { type: 'append-resp' }>, pr: Progress): void {
    if (m.reject) {
      const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm)[0] : m.hintIndex;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const updated = pr.maybeUpdate(m.index);
    if (!updated && !(pr.state === 'probe' && pr.match === m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= this.log.start) pr.becomeReplicate();
    else if (pr.state === 'replicate') pr.freeUpTo(m.index);
    if (this.maybeCommit()) this.committed();
    if (this.currentRole !== 'leader') return;
    while (this.sendAppend(m.from, false));
    if (m.from === this.transferee && !this.timeoutNowSent && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Someone won this term.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'pre-vote-resp':
      case 'vote-resp': {
        if ((m.type === 'vote-resp') !== (this.currentRole === 'candidate')) return;
        this.votes.set(m.from, !m.reject);
        const outcome = this.tally();
        if (outcome === 'won') {
          if (this.currentRole === 'pre-candidate') this.campaign('election');
          else this.becomeLeader();
        } else if (outcome === 'lost') {
          this.becomeFollower(this.currentTerm, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.commitTo(Math.min(m.commit, this.log.lastIndex()));
        this.send({ type: 'heartbeat-resp', to: m.from, context: m.context });
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeout-now':
        this.campaign('transfer');
        return;
      case 'read-index-resp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
    }
  }

  private handleAppend(m: Extract<Message, { type: 'append' }>): void {
    if (m.index < this.log.commit) {
      this.send({ type: 'append-resp', to: m.from, reject: false, index: this.log.commit, hintIndex: 0, hintTerm: 0 });
      return;
    }
    if (!this.log.matchTerm(m.index, m.logTerm)) {
      const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
      this.send({ type: 'append-resp', to: m.from, reject: true, index: m.index, hintIndex, hintTerm });
      return;
    }
    const first = this.log.merge(m.entries);
    if (first > 0) {
      const wasIndex = this.configs.latestIndex();
      this.configs.truncate(first);
      let changed = this.configs.latestIndex() !== wasIndex;
      for (const e of m.entries) {
        if (e.index >= first && e.kind === 'config') {
          this.configs.push(e.index, e.config!);
          changed = true;
        }
      }
      if (changed) this.configChanged();
    }
    const lastNew = m.index + m.entries.length;
    this.commitTo(Math.min(m.commit, lastNew));
    this.send({ type: 'append-resp', to: m.from, reject: false, index: lastNew, hintIndex: 0, hintTerm: 0 });
  }

  private handleSnapshot(m: Extract<Message, { type: 'snapshot' }>): void {
    const s = m.snapshot;
    if (s.index > this.log.commit) {
      if (this.log.matchTerm(s.index, s.term)) {
        this.commitTo(s.index);
      } else {
        this.log.restore(s);
        const meta: SnapshotMeta = { index: s.index, term: s.term, ...copyConfiguration(s) };
        this.configs.reset(s.index, copyConfiguration(meta));
        this.latestSnapshot = meta;
        this.pendingSnapshot = meta;
        this.handedOut = s.index;
        this.configChanged();
      }
    }
    this.send({ type: 'append-resp', to: m.from, reject: false, index: this.log.commit, hintIndex: 0, hintTerm: 0 });
  }

  private commitTo(index: number): void {
    if (index > this.log.commit) this.log.commit = index;
  }

  /** The latest configuration changed (appended, overwritten or restored). */
  private configChanged(): void {
    if (this.currentRole === 'follower' || this.currentRole === 'learner') {
      this.currentRole = isLearner(this.config(), this.id) ? 'learner' : 'follower';
      return;
    }
    if (this.currentRole !== 'leader') return;
    const members = new Set(this.members());
    for (const id of members) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(this.log.lastIndex() + 1, this.cfg.maxInflight));
    }
    for (const id of [...this.progress.keys()]) {
      if (members.has(id)) continue;
      this.progress.delete(id);
      this.readAcks.delete(id);
      if (this.transferee === id) this.abortTransfer();
    }
    // The quorum changed: entries may now be committed, or reads confirmed.
    if (this.maybeCommit()) this.committed();
    if (this.currentRole === 'leader') this.releaseReads();
  }

  // ---- Leader: log and commit ----

  private appendProposals(data: Uint8Array[]): boolean {
    if (data.length === 0) return true;
    const entries: Entry[] = data.map((d) => ({ index: 0, term: 0, kind: 'normal', data: d }));
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e);
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.maxUncommittedBytes) return false;
    this.appendEntries(entries);
    this.appendPending = true;
    return true;
  }

  /** Appends on the leader, giving entries their index and term. */
  private appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    let config = false;
    for (const e of entries) {
      e.index = ++index;
      e.term = this.currentTerm;
      this.uncommittedBytes += entryBytes(e);
    }
    this.log.append(entries);
    for (const e of entries) {
      if (e.kind !== 'config') continue;
      this.configs.push(e.index, e.config!);
      config = true;
    }
    if (config) this.configChanged();
  }

  /** Raft's commit rule: the highest index on a quorum of voters, if it is of the leader's term. */
  private maybeCommit(): boolean {
    const voters = this.config().membership.voters;
    if (voters.length === 0) return false;
    const matches = voters.map((v) => (v === this.id ? this.log.persisted : (this.progress.get(v)?.match ?? 0)));
    matches.sort((a, b) => b - a);
    const index = matches[quorum(voters.length) - 1];
    if (index <= this.log.commit || !this.mayCommitByCounting(index)) return false;
    for (let i = this.log.commit + 1; i <= index; i++) this.uncommittedBytes -= entryBytes(this.log.entry(i)!);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes);
    this.log.commit = index;
    return true;
  }

  /** Only entries of the leader's own term commit by counting replicas. Protected so fault-injection tests can break it. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.term(index) === this.currentTerm;
  }

  /** The leader's commit index advanced. */
  private committed(): void {
    this.bcastAppend();
    if (this.deferredReads.length && this.log.commit >= this.termStart) {
      const deferred = this.deferredReads;
      this.deferredReads = [];
      for (const r of deferred) this.leaderRead(r.from, r.context);
    }
    // A leader removed by a change that is now committed hands over by stepping down.
    if (!this.promotable() && this.configs.latestIndex() <= this.log.commit) this.becomeFollower(this.currentTerm, NONE);
  }

  // ---- Leader: replication ----

  /** Sends the next append (or a snapshot) to `to` unless its flow is paused. True if something was sent. */
  private sendAppend(to: MemberId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.paused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      if (prevIndex > this.log.lastIndex()) {
        pr.next = this.log.lastIndex() + 1;
        return this.sendAppend(to, sendIfEmpty);
      }
      // The follower needs entries that were compacted away.
      const snap = this.latestSnapshot;
      if (!snap) return false;
      this.send({ type: 'snapshot', to, snapshot: snap });
      pr.becomeSnapshot(snap.index);
      return true;
    }
    const entries = pr.next <= this.log.lastIndex() ? this.log.slice(pr.next, this.log.lastIndex() + 1, this.cfg.maxMessageBytes) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.commit });
    pr.sent(entries.length ? entries[entries.length - 1].index : undefined);
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) this.sendAppend(id, true);
  }

  private bcastHeartbeat(): void {
    this.roundSent = true;
    for (const [id, pr] of this.progress) {
      this.send({ type: 'heartbeat', to: id, commit: Math.min(pr.match, this.log.commit), context: this.readRound });
    }
  }

  private sendTimeoutNow(to: MemberId): void {
    this.timeoutNowSent = true;
    this.send({ type: 'timeout-now', to });
  }

  private abortTransfer(): void {
    this.transferee = NONE;
    this.transferElapsed = 0;
    this.timeoutNowSent = false;
  }

  // ---- Leader: reads ----

  private leaderRead(from: MemberId, context: number): boolean {
    if (this.pendingReads.length + this.deferredReads.length >= MAX_PENDING_READS) return false;
    if (this.log.commit < this.termStart) {
      // The commit index of a new leader may lag the ensemble's until an entry of its term commits.
      this.deferredReads.push({ from, context });
      return true;
    }
    const voters = this.config().membership.voters;
    if (voters.length === 1 && voters[0] === this.id) {
      this.answerRead(from, this.log.commit, context);
      return true;
    }
    // Reads that arrive before the next heartbeat round leaves share it.
    if (this.roundSent) {
      this.readRound++;
      this.roundSent = false;
    }
    this.pendingReads.push({ index: this.log.commit, context, from, round: this.readRound });
    return true;
  }

  /** Answers, in order, every read whose heartbeat round a quorum of voters has acknowledged. */
  private releaseReads(): void {
    const voters = this.config().membership.voters;
    const q = quorum(voters.length);
    while (this.pendingReads.length) {
      const r = this.pendingReads[0];
      let acks = 0;
      for (const v of voters) if (v === this.id || (this.readAcks.get(v) ?? 0) >= r.round) acks++;
      if (acks < q) return;
      this.pendingReads.shift();
      this.answerRead(r.from, r.index, r.context);
    }
  }

  private answerRead(from: MemberId, index: number, context: number): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'read-index-resp', to: from, index, context });
  }

  private send(out: Outgoing): void {
    const m = { ...out, from: this.id, term: out.term ?? this.currentTerm } as Message;
    if (this.currentRole === 'leader' && LEADER_EARLY_MESSAGES.has(m.type)) this.earlyMsgs.push(m);
    else this.msgs.push(m);
  }
}

// ---- Validation ----

function isIndex(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function checkRaftConfig(c: RaftConfig): void {
  const positive = (name: keyof RaftConfig) => {
    if (!Number.isSafeInteger(c[name]) || (c[name] as number) < 1) throw new RangeError(`raft config: ${name} must be a positive integer`);
  };
  positive('id');
  positive('electionTicks');
  positive('heartbeatTicks');
  positive('maxInflight');
  positive('maxMessageBytes');
  if (c.heartbeatTicks >= c.electionTicks) throw new RangeError('raft config: heartbeatTicks must be below electionTicks');
  if (!isIndex(c.keepBehindSnapshot)) throw new RangeError('raft config: keepBehindSnapshot must be a non-negative integer');
  if (c.maxUncommittedBytes !== undefined) positive('maxUncommittedBytes');
  if (typeof c.random !== 'function') throw new TypeError('raft config: random must be a function');
}

/** Why an entry that should sit at `index`, after one of term `prevTerm`, is unacceptable. */
function badEntry(e: Entry, index: number, prevTerm: number, maxTerm: number): string | undefined {
  if (!e || typeof e !== 'object') return 'not an entry';
  if (e.index !== index) return `index ${e.index} where ${index} was expected`;
  if (!isIndex(e.term) || e.term < prevTerm || e.term > maxTerm) return `term ${e.term} out of order`;
  switch (e.kind) {
    case 'normal':
      return e.data instanceof Uint8Array ? undefined : 'normal entry without data';
    case 'config':
      if (!e.change || !validConfiguration(e.config)) return 'config entry without its change and configuration';
      return undefined;
    case 'empty':
      return undefined;
    default:
      return `unknown entry kind ${String((e as Entry).kind)}`;
  }
}

/** Why a message cannot be taken (undefined if it can): wrong address or malformed fields. */
function malformed(m: Message, self: MemberId): string | undefined {
  if (!m || typeof m !== 'object') return 'not a message';
  if (m.to !== self) return `addressed to ${m.to}, not ${self}`;
  if (!isIndex(m.from) || m.from === NONE || m.from === self) return `bad sender ${m.from}`;
  if (!isIndex(m.term)) return `bad term ${m.term}`;
  const ints = (...xs: unknown[]) => xs.every(isIndex);
  switch (m.type) {
    case 'append': {
      if (!ints(m.index, m.logTerm, m.commit) || !Array.isArray(m.entries)) return 'malformed append';
      let prev = m.logTerm;
      for (let i = 0; i < m.entries.length; i++) {
        const problem = badEntry(m.entries[i], m.index + 1 + i, prev, m.term);
        if (problem) return `append entry ${i}: ${problem}`;
        prev = m.entries[i].term;
      }
      return undefined;
    }
    case 'append-resp':
      return ints(m.index, m.hintIndex, m.hintTerm) ? undefined : 'malformed append-resp';
    case 'heartbeat':
      return ints(m.commit, m.context) ? undefined : 'malformed heartbeat';
    case 'heartbeat-resp':
    case 'read-index':
      return ints(m.context) ? undefined : `malformed ${m.type}`;
    case 'pre-vote':
    case 'vote':
      return ints(m.index, m.logTerm) ? undefined : `malformed ${m.type}`;
    case 'snapshot': {
      const s = m.snapshot;
      return s && ints(s.index, s.term) && validConfiguration(s) ? undefined : 'malformed snapshot';
    }
    case 'propose':
      if (!Array.isArray(m.entries)) return 'malformed propose';
      return m.entries.every((e) => e && e.kind === 'normal' && e.data instanceof Uint8Array) ? undefined : 'propose carries something other than commands';
    case 'read-index-resp':
      return ints(m.index, m.context) ? undefined : 'malformed read-index-resp';
    case 'pre-vote-resp':
    case 'vote-resp':
    case 'snapshot-status':
    case 'timeout-now':
      return undefined;
    default:
      return `unknown message type ${String((m as { type: unknown }).type)}`;
  }
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}
