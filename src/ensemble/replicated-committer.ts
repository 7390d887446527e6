/**
 * The commit step of an ensemble member: the server's writes go through the Raft
 * core and a durable log, and every member applies the committed log in order.
 *
 *   server.propose -> encode txn -> core.propose (leader appends; follower forwards)
 *   core.ready -> send leader's appends -> WAL append + one fsync -> send -> apply -> advance
 *
 * This is the imperative shell around the pure core (src/consensus/raft.ts): it owns
 * the timer that ticks the core, the peer connections, the write-ahead log and the
 * snapshot files, and it turns the core's role into what the server may do for
 * clients (ServingRole). A single server is an ensemble of one with the same log.
 */
import type { ConfigChange, Configuration, Entry, Message, MemberId, Ready, SnapshotMeta } from '../consensus/types.js';
import { checkPerm, type AuthId } from '../acl/acl.js';
import { Perms } from '../protocol/opcodes.js';
import type { ReconfigRequest } from '../protocol/records.js';
import { OpCode } from '../protocol/opcodes.js';
import { RaftNode } from '../consensus/raft.js';
import type { Committer, CommitTarget, ReplicationStatus, ServingRole } from '../pipeline/committer.js';
import { ErrorCode } from '../protocol/errors.js';
import type { Proposal } from '../server/server.js';
import type { ServerConfig } from '../server/config.js';
import { beginSnapshot, loadSnapshot } from '../tree/snapshot.js';
import type { DataTree } from '../tree/data-tree.js';
import { decodeTxn, encodeTxn, txnProposer } from '../tree/txn-codec.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { openMemberStorage, type MemberStorage } from '../storage/member-storage.js';
import type { SnapshotReceiver } from '../storage/snapshot-files.js';
import { clientAddress, configMembersText, formatServerSpec, parseServerSpec, type EnsembleConfig, type MemberSpec } from './config.js';
import type { PeerFrame } from './peer-codec.js';
import { PeerTransport, type PeerAddress } from './peer-transport.js';


/** The server side of a state transfer: the member replaced its whole tree. */
export interface ReplicatedTarget extends CommitTarget<Proposal> {
  /** A snapshot from the leader replaced the state: drop what was derived from the old tree. */
  restore(tree: DataTree): void;
  drainTouches(): bigint[];
  touchSessions(ids: Iterable<bigint>): void;
}

/** A write proposed here (or passed on by another member), until it is applied. */
interface Proposed {
  seq: number;
  data: Uint8Array;
  ref: unknown;
  /** Another member's write this member passes on to the leader; nobody here waits for it. */
  foreign?: boolean;
  /** Tick it was (last) sent at, and the leader it went to; 0 while it is held. */
  at: number;
  leader: MemberId;
  /**
   * The bytes of the current attempt to send it: a view of `data` of its own, so a message
   * built for an earlier attempt (and overtaken by a resend) is told apart and not sent.
   */
  attempt?: Uint8Array;
  /** Applied (or given up): a held copy need not be sent. */
  settled?: boolean;
}

/** A change's outcome: ZooKeeper's error code, or unknown (the client must be told its connection is lost). */
export type ChangeOutcome = { err: number; index: number } | { err: 'unknown'; index: 0 };
const UNKNOWN: ChangeOutcome = { err: 'unknown', index: 0 };
/** On the wire, an unknown outcome travels as this (not a ZooKeeper error code). */
const UNKNOWN_WIRE = 1;

/** Proposals held while no leader is known, before the member is cut off. */
const MAX_WAITING = 10_000;
/** Bytes per snapshot chunk on disk and on the wire. */
const SNAPSHOT_CHUNK = 256 * 1024;

/** The members' lines of /zookeeper/config for a configuration. */
function configText(c: Configuration): string {
  const ids = [...c.membership.voters, ...c.membership.learners].filter((id) => c.contexts[id]);
  return configMembersText(ids.map((id) => parseServerSpec(id, c.contexts[id])));
}

/** ZooKeeper's zxid: the epoch (here the term) in the high 32 bits; the log index below keeps it increasing. */
export function zxidOf(term: number, index: number): number {
  return term * 0x1_0000_0000 + index;
}

export interface MemberOptions {
  config: ServerConfig;
  ensemble: EnsembleConfig;
  logger: Logger;
  clock?: Clock;
  /** Seeds election timeouts; Math.random by default. */
  random?: () => number;
}

export class ReplicatedCommitter implements Committer<Proposal> {
  private target: ReplicatedTarget | undefined;
  private readonly raft: RaftNode;
  private readonly transport: PeerTransport | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly myid: number;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticks = 0;
  /**
   * This member's proposal numbers: they must keep increasing across restarts (the tree
   * drops a number at or below one already applied), so they start from the wall clock
   * in microseconds and never fall below a number of this member's seen in the state or
   * the log (a clock set back). Only uniqueness rests on the clock, never liveness.
   */
  private seq = Date.now() * 1000;
  /** This member's writes not yet applied, in seq order: where a committed write finds the client waiting for it. */
  private readonly mine = new Map<number, Proposed>();
  /**
   * Writes waiting for a leader to take them, in the order they must reach the log: this
   * member's own (held while no leader can take them, or sent again after a leader change)
   * and other members' that were forwarded here.
   */
  private held: Proposed[] = [];
  private readonly syncs = new Map<number, { done: (ok: boolean) => void; at: number; index: number }>();
  private syncSeq = 0;
  private role_: ServingRole = 'leaderless';
  private leader: MemberId = 0;
  private raftRole = 'follower';
  private leaderlessSince = 0;
  private applied: number;
  private lastZxid_ = 0;
  private snapshotIndex: number;
  private snapshotting = false;
  private driving = false;
  private driveAgain = false;
  private closed = false;
  /** Members' addresses by id, from the bootstrap config and the log's membership changes. */
  private readonly addresses = new Map<number, MemberSpec>();
  /** Members this member's own config file names: their addresses there win over the log's (the way this member reaches them). */
  private readonly configured = new Set<number>();
  private readonly cutOffTicks: number;
  private readonly electionTicks: number;
  private readonly requestTimeoutTicks: number;
  /** Snapshot being received from the leader. */
  private receiving: { index: number; term: number; receiver: SnapshotReceiver; offset: number; writes: Promise<void>; failed: boolean } | undefined;
  private touchesOwed = new Set<bigint>();
  /** What the leader last said of hearing from this member, and when it said it. */
  private leaderHears: { leader: number; ticksAgo: number } | undefined;
  /** Membership changes: one at a time, driven by the leader. */
  private changing = false;
  private changeSeq = 0;
  private readonly forwardedChanges = new Map<number, { resolve: (o: ChangeOutcome) => void; at: number }>();
  private appliedWaiters: { index: number; term: number; resolve: (ok: boolean) => void }[] = [];

  private constructor(
    private readonly opts: MemberOptions,
    private readonly storage: MemberStorage,
    readonly tree: DataTree,
    restoredApplied: number,
  ) {
    const e = opts.ensemble;
    this.myid = e.myid;
    this.log = opts.logger;
    this.clock = opts.clock ?? monotonicClock;
    for (const m of e.members) {
      this.addresses.set(m.id, m);
      this.configured.add(m.id);
    }
    this.applied = this.snapshotIndex = restoredApplied;
    this.seq = Math.max(this.seq, tree.proposers.get(this.myid) ?? 0);
    this.lastZxid_ = tree.lastZxid;
    const electionTicks = (this.electionTicks = Math.max(2, Math.round(e.electionTimeoutMs / e.heartbeatIntervalMs)));
    // A member that hears from no leader stops serving read-write sessions before the leader could expire them.
    this.cutOffTicks = Math.max(electionTicks * 2, 1);
    const cutOffCap = Math.floor(opts.config.minSessionTimeout / 3 / e.heartbeatIntervalMs);
    if (cutOffCap >= electionTicks) this.cutOffTicks = Math.min(this.cutOffTicks, cutOffCap);
    this.requestTimeoutTicks = Math.max(electionTicks * 10, Math.ceil(5000 / e.heartbeatIntervalMs));
    const r = storage.restored;
    const bootstrap = {
      membership: {
        voters: e.members.filter((m) => m.role === 'participant').map((m) => m.id),
        learners: e.members.filter((m) => m.role === 'observer').map((m) => m.id),
      },
      contexts: Object.fromEntries(e.members.map((m) => [m.id, formatServerSpec(m)])),
    };
    this.raft = new RaftNode(
      {
        id: this.myid,
        electionTicks,
        heartbeatTicks: 1,
        preVote: true,
        checkQuorum: true,
        maxInflight: 256,
        maxMessageBytes: 1024 * 1024,
        keepBehindSnapshot: 10_000,
        random: opts.random ?? Math.random,
      },
      { hardState: r.hardState, snapshot: r.snapshot?.meta, entries: r.entries, bootstrap, applied: restoredApplied },
    );
    this.learnAddresses(this.raft.contexts());
    const multi = bootstrap.membership.voters.length + bootstrap.membership.learners.length > 1 || this.addresses.size > 1;
    if (multi) {
      const me = this.addresses.get(this.myid)!;
      this.transport = new PeerTransport({
        myid: this.myid,
        listen: { host: me.host, port: me.peerPort },
        logger: this.log,
        onFrame: (from, f) => this.onFrame(from, f),
        onUnreachable: (id) => {
          this.raft.reportUnreachable(id);
          // What went to the leader on the lost connection may be lost with it.
          if (id === this.leader) this.sendAgainToLeader();
          this.schedule();
        },
      });
    }
  }

  /** Opens a member's storage and state: newest snapshot plus the log after it. */
  static async open(opts: MemberOptions): Promise<ReplicatedCommitter> {
    const { config, ensemble, logger } = opts;
    const storage = await openMemberStorage(config.dataDir, { forceSync: ensemble.forceSync, logger });
    let tree: DataTree;
    let applied = 0;
    const snap = storage.restored.snapshot;
    if (snap) {
      const started = performance.now();
      tree = await loadSnapshot(snap.body(), { extendedTypesEnabled: config.extendedTypesEnabled });
      applied = snap.meta.index;
      logger.info('snapshot loaded', { index: applied, nodes: tree.nodeCount, sessions: tree.sessions.size, ms: Math.round(performance.now() - started) });
    } else {
      const { DataTree } = await import('../tree/data-tree.js');
      tree = new DataTree({ extendedTypesEnabled: config.extendedTypesEnabled });
    }
    return new ReplicatedCommitter(opts, storage, tree, applied);
  }

  get role(): ServingRole {
    return this.role_;
  }

  get lastZxid(): number {
    return this.lastZxid_;
  }

  attach(target: CommitTarget<Proposal>): void {
    this.target = target as ReplicatedTarget;
    target.roleChanged(this.role_);
  }

  /** Starts listening for peers and ticking; replays the committed log into the attached server first. */
  async start(): Promise<void> {
    if (this.transport) {
      await this.transport.listen();
      this.updatePeers();
    }
    this.tickTimer = setInterval(() => this.tick(), this.opts.ensemble.heartbeatIntervalMs);
    this.tickTimer.unref();
    // An ensemble of one need not wait an election timeout to lead itself.
    const { voters } = this.raft.membership();
    if (voters.length === 1 && voters[0] === this.myid) {
      for (let i = 0; i < this.electionTicks * 2 && this.raft.role !== 'leader'; i++) this.raft.tick();
    }
    this.schedule();
    await this.drive();
  }

  // ---- the server's side --------------------------------------------------------

  propose(txn: Proposal, ref: unknown): boolean {
    if (this.closed || this.role_ === 'read-only' || this.role_ === 'cut-off') return false;
    const seq = ++this.seq;
    const data = encodeTxn({ ...txn, origin: this.myid, seq });
    const p: Proposed = { seq, data, ref, at: this.ticks, leader: this.leader, attempt: data };
    if (this.canProposeNow() && this.raft.propose([data])) {
      this.mine.set(seq, p);
      this.schedule();
      return true;
    }
    // No leader to take it right now (an election, or a leadership transfer): hold it briefly.
    if (this.held.length >= MAX_WAITING) return false;
    p.leader = 0;
    p.attempt = undefined;
    this.mine.set(seq, p);
    this.held.push(p);
    return true;
  }

  /**
   * Whether a write may go to the leader at once, keeping this member's writes in order:
   * nothing is held, and the core's leader is the one the shell knows (the core learns of
   * a new leader before the shell has sent the older writes there again).
   */
  private canProposeNow(): boolean {
    return this.leader !== 0 && this.leader === this.raft.leader && this.held.length === 0;
  }

  sync(done: (ok: boolean) => void): void {
    if (this.closed || this.leader === 0) return done(false);
    const ctx = ++this.syncSeq;
    if (!this.raft.readIndex(ctx)) return done(false);
    this.syncs.set(ctx, { done, at: this.ticks, index: -1 });
    this.schedule();
  }

  // ---- membership changes (ZooKeeper's reconfig) --------------------------------------

  reconfigure(req: ReconfigRequest, auth: readonly AuthId[], done: (err: number) => void): void {
    const fail = (err: number, why: string) => {
      this.log.info('reconfig refused', { why });
      done(err);
    };
    if (!this.opts.ensemble.reconfigEnabled) return fail(ErrorCode.RECONFIGDISABLED, 'reconfigEnabled is false');
    const node = this.tree.get('/zookeeper/config')!;
    if (req.curConfigId !== -1 && req.curConfigId !== node.mzxid) {
      return fail(ErrorCode.BADVERSION, `from config version ${req.curConfigId.toString(16)}, current is ${node.mzxid.toString(16)}`);
    }
    const change = this.parseChange(req);
    if (typeof change === 'string') return fail(ErrorCode.BADARGUMENTS, change);
    if (!checkPerm(node.acl, Perms.WRITE, auth)) return fail(ErrorCode.NOAUTH, 'no WRITE permission on /zookeeper/config');
    if (change === undefined) return done(0); // nothing to change
    const outcome = this.leader === this.myid ? this.driveChange(change) : this.forwardChange(change);
    void outcome.then(async (o) => {
      if (o.err === 'unknown') return done(ErrorCode.CONNECTIONLOSS);
      if (o.err !== 0) return done(o.err);
      // Answer with the new configuration as this member sees it.
      if (await this.whenApplied(o.index, 0)) done(0);
      else done(ErrorCode.CONNECTIONLOSS);
    });
  }

  /**
   * One incremental change: a member leaving (by id) or joining (server.N=spec). More
   * than one at a time is refused: each is its own consensus step, not atomic together.
   */
  private parseChange(req: ReconfigRequest): ConfigChange | undefined | string {
    if (req.newMembers) return 'only incremental reconfig (joining/leaving) is supported';
    const split = (s: string | null) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    const membership = this.raft.membership();
    const members = new Set([...membership.voters, ...membership.learners]);
    const changes: ConfigChange[] = [];
    for (const leaving of split(req.leavingServers)) {
      const id = Number(leaving);
      if (!Number.isInteger(id) || id < 1) return `bad server id "${leaving}"`;
      if (members.has(id)) changes.push({ op: 'remove', id, context: '' });
    }
    for (const joining of split(req.joiningServers)) {
      const m = /^server\.(\d+)\s*=\s*(.+)$/.exec(joining);
      if (!m) return `expected server.N=host:peerPort:electionPort[:role];[clientHost:]clientPort, got "${joining}"`;
      let spec: MemberSpec;
      try {
        spec = parseServerSpec(Number(m[1]), m[2]);
      } catch (e) {
        return (e as Error).message;
      }
      if (spec.id < 1 || spec.id > 255) return 'server ids must be 1-255';
      if (spec.clientPort === 0) return `server.${spec.id} needs a client port`;
      const context = formatServerSpec(spec);
      const isVoter = membership.voters.includes(spec.id);
      const isLearner = membership.learners.includes(spec.id);
      if (spec.role === 'observer') {
        if (isVoter) return `server.${spec.id} is a participant; remove it before adding it back as an observer`;
        if (!isLearner) changes.push({ op: 'add-learner', id: spec.id, context });
      } else if (!isVoter) {
        changes.push({ op: 'add-voter', id: spec.id, context });
      }
    }
    if (changes.length > 1) return 'one server joins or leaves per reconfig';
    if (changes[0]?.op === 'remove' && membership.voters.length === 1 && membership.voters[0] === changes[0].id) return 'the last participant cannot leave';
    return changes[0];
  }

  /** A member that does not lead asks the leader to make the change. */
  private forwardChange(change: ConfigChange): Promise<ChangeOutcome> {
    if (this.leader === 0 || !this.transport) return Promise.resolve(UNKNOWN);
    const requestId = ++this.changeSeq;
    if (!this.transport.send(this.leader, { kind: 'reconfig', requestId, change })) return Promise.resolve(UNKNOWN);
    return new Promise((resolve) => this.forwardedChanges.set(requestId, { resolve, at: this.ticks }));
  }

  private async onForwardedChange(from: number, requestId: number, change: ConfigChange): Promise<void> {
    const o = this.leader === this.myid ? await this.driveChange(change) : UNKNOWN;
    this.transport?.send(from, { kind: 'reconfig-result', requestId, err: o.err === 'unknown' ? UNKNOWN_WIRE : o.err, index: o.index });
  }

  /**
   * The leader's side of a change. A new participant first joins as a learner and must
   * catch up before it votes (otherwise adding it could stall commits); a change that
   * would leave no connected, caught-up quorum is refused (ZooKeeper's NEWCONFIGNOQUORUM).
   */
  private async driveChange(change: ConfigChange): Promise<ChangeOutcome> {
    if (this.changing) return { err: ErrorCode.RECONFIGINPROGRESS, index: 0 };
    this.changing = true;
    try {
      if (change.op === 'remove') {
        if (!this.quorumInStep(change.id)) return { err: ErrorCode.NEWCONFIGNOQUORUM, index: 0 };
        return await this.proposeChange(change);
      }
      if (!this.raft.membership().learners.includes(change.id)) {
        const added = await this.proposeChange({ ...change, op: 'add-learner' });
        if (added.err !== 0 || change.op === 'add-learner') return added;
      }
      if (!(await this.caughtUp(change.id))) {
        this.log.warn('new participant did not catch up in time; it is removed again', { member: change.id });
        await this.proposeChange({ op: 'remove', id: change.id, context: '' });
        return { err: ErrorCode.NEWCONFIGNOQUORUM, index: 0 };
      }
      return await this.proposeChange(change);
    } finally {
      this.changing = false;
    }
  }

  /** One membership change, then /zookeeper/config written to show it; the index to wait for is the latter's. */
  private async proposeChange(change: ConfigChange): Promise<ChangeOutcome> {
    if (this.leader !== this.myid) return UNKNOWN;
    const refused = this.raft.proposeConfigChange(change);
    if (refused !== undefined) {
      this.log.info('membership change refused by the consensus core', { reason: refused });
      return { err: ErrorCode.RECONFIGINPROGRESS, index: 0 };
    }
    const index = this.raft.lastIndex;
    const term = this.raft.term;
    this.schedule();
    if (!(await this.whenApplied(index, term))) return UNKNOWN;
    const written = this.leader === this.myid ? this.writeConfigNode() : 0;
    if (written === 0) return { err: 0, index };
    this.schedule();
    return (await this.whenApplied(written, term)) ? { err: 0, index: written } : UNKNOWN;
  }

  /** Whether the voters other than `leaving` include a quorum that is connected and in step. */
  private quorumInStep(leaving: number): boolean {
    const s = this.raft.status();
    const voters = s.membership.voters.filter((id) => id !== leaving);
    let inStep = voters.includes(this.myid) ? 1 : 0;
    for (const p of s.peers) {
      if (voters.includes(p.id) && p.state === 'replicate' && p.ticksSinceHeard < this.electionTicks) inStep++;
    }
    return inStep > Math.floor(voters.length / 2);
  }

  /** Waits (up to initLimit ticks of tickTime, as ZooKeeper bounds a learner's sync) for a learner to reach the commit index. */
  private async caughtUp(id: number): Promise<boolean> {
    const target = this.raft.commit;
    const deadline = performance.now() + this.opts.ensemble.initLimit * this.opts.config.tickTime;
    while (!this.closed && this.leader === this.myid && performance.now() < deadline) {
      const p = this.raft.status().peers.find((x) => x.id === id);
      if (p && p.match >= target && p.state === 'replicate') return true;
      await new Promise((r) => setTimeout(r, this.opts.ensemble.heartbeatIntervalMs));
    }
    return false;
  }

  /**
   * Resolves once `index` is applied here: true if the entry there has `term` (0: any),
   * false if another entry took its place or this member stopped.
   */
  private whenApplied(index: number, term: number): Promise<boolean> {
    if (this.applied >= index && term === 0) return Promise.resolve(true);
    if (this.applied >= index) return Promise.resolve(this.raft.termAt(index) === term);
    return new Promise((resolve) => this.appliedWaiters.push({ index, term, resolve }));
  }

  private settleAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const still: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) {
      if (this.applied < w.index) still.push(w);
      else w.resolve(w.term === 0 || this.raft.termAt(w.index) === w.term);
    }
    this.appliedWaiters = still;
  }

  // ---- driving the core -----------------------------------------------------------

  private tick(): void {
    if (this.closed) return;
    this.ticks++;
    this.raft.tick();
    // Held writes go again once per tick (not within a Ready: a send that keeps failing must not spin).
    this.flushWaiting();
    this.passTouches();
    this.tellHeard();
    this.expireRequests();
    this.updateRole();
    this.schedule();
  }

  private scheduled = false;
  /** Gathers everything of this event-loop turn into one Ready (and one fsync). */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.drive();
    });
  }

  private async drive(): Promise<void> {
    if (this.driving) {
      this.driveAgain = true;
      return;
    }
    this.driving = true;
    try {
      do {
        this.driveAgain = false;
        while (!this.closed && this.raft.hasReady()) await this.handle(this.raft.ready());
      } while (this.driveAgain && !this.closed);
    } catch (e) {
      // Storage failing under us: nothing safe remains to do but stop taking part.
      this.log.error('member stopped: storage failed', { error: e instanceof Error ? e.stack : String(e) });
      this.closed = true;
      clearInterval(this.tickTimer);
      this.setRole('cut-off');
    } finally {
      this.driving = false;
    }
  }

  private async handle(rd: Ready): Promise<void> {
    for (const m of rd.messagesBeforePersist) this.send(m);
    if (rd.softState) {
      this.leader = rd.softState.leader;
      this.raftRole = rd.softState.role;
      this.onLeaderChange();
    }
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      await this.storage.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
    }
    if (rd.snapshot) await this.installSnapshot(rd.snapshot);
    // The latest configuration in the log governs replication: reach a new member as soon as it is appended.
    if (rd.entries.some((e) => e.kind === 'config')) {
      for (const e of rd.entries) if (e.kind === 'config') this.learnAddresses(e.config!.contexts);
      this.updatePeers();
    }
    for (const m of rd.messages) this.send(m);
    for (const e of rd.committed) this.applyEntry(e);
    this.settleAppliedWaiters();
    for (const rs of rd.readStates) {
      const s = this.syncs.get(rs.context);
      if (s) s.index = rs.index;
    }
    this.answerSyncs();
    this.raft.advance(rd);
    this.updateRole();
    this.maybeSnapshot();
  }

  private applyEntry(e: Entry): void {
    this.applied = e.index;
    if (e.kind === 'normal') {
      const rec = decodeTxn(e.data!);
      const zxid = zxidOf(e.term, e.index);
      let ref: unknown;
      if (rec.origin === this.myid) {
        const p = this.mine.get(rec.seq);
        if (p) {
          ref = p.ref;
          p.settled = true;
          this.mine.delete(rec.seq);
        }
        // Numbers stay above everything of this member's the log holds, whatever the clock says.
        if (rec.seq > this.seq) this.seq = rec.seq;
      }
      if (!this.tree.acceptProposal(rec.origin, rec.seq)) {
        // A copy of a write already applied (proposed again after a leader change). If this member
        // still waited for that seq, the original was lost while a later write went through: unknown.
        if (ref !== undefined) {
          this.log.warn('write overtaken', { seq: rec.seq, applied: this.tree.proposers.get(rec.origin), index: e.index });
          this.target!.abandon(ref, 'write overtaken after a leader change: outcome unknown');
        }
        return;
      }
      const { origin: _o, seq: _s, ...txn } = rec;
      this.lastZxid_ = zxid;
      this.target!.apply({ ...txn, zxid }, ref);
    } else if (e.kind === 'config') {
      const change = e.change!;
      if (change.op !== 'remove') this.learnAddress(change.id, change.context);
      this.updatePeers();
      this.lastZxid_ = zxidOf(e.term, e.index);
      this.log.info('membership changed', { op: change.op, member: change.id, index: e.index });
    }
  }


  private answerSyncs(): void {
    for (const [ctx, s] of this.syncs) {
      if (s.index >= 0 && s.index <= this.applied) {
        this.syncs.delete(ctx);
        s.done(true);
      }
    }
  }

  // ---- roles ------------------------------------------------------------------------

  private onLeaderChange(): void {
    // Writes that went to a leader that no longer leads may or may not commit: they go again to
    // the next leader, in order, and the apply step drops whichever copy comes second.
    const resend: Proposed[] = [];
    for (const p of this.mine.values()) {
      if (p.leader !== 0 && p.leader !== this.leader) {
        p.leader = 0;
        p.attempt = undefined;
        resend.push(p);
      }
    }
    if (resend.length > 0) {
      this.log.debug('writes proposed again after a leader change', { count: resend.length, first: resend[0].seq, leader: this.leader });
      // Sent ones are older than any held one of this member's: they go first.
      this.held = resend.concat(this.held);
    }
    // Syncs are idempotent: ask the new leader.
    for (const [ctx, s] of this.syncs) {
      if (s.index < 0 && this.leader !== 0) {
        s.at = this.ticks;
        this.raft.readIndex(ctx);
      }
    }
    for (const [id, w] of this.forwardedChanges) {
      this.forwardedChanges.delete(id);
      w.resolve(UNKNOWN);
    }
    if (this.leader !== 0) {
      this.leaderlessSince = -1;
      this.flushWaiting();
    } else if (this.leaderlessSince < 0) {
      this.leaderlessSince = this.ticks;
    }
  }

  private flushWaiting(): void {
    if (this.held.length === 0 || this.leader === 0 || this.leader !== this.raft.leader) return;
    let i = 0;
    for (; i < this.held.length; i++) {
      const w = this.held[i];
      if (w.settled) continue;
      const attempt = w.data.subarray(0);
      if (!this.raft.propose([attempt])) break;
      w.at = this.ticks;
      w.leader = this.leader;
      w.attempt = attempt;
    }
    if (i > 0) this.log.debug('held writes sent', { count: i, first: this.held[0].seq, last: this.held[i - 1].seq });
    this.held = this.held.slice(i);
  }

  private updateRole(): void {
    const membership = this.raft.membership();
    let role: ServingRole;
    if (this.leader === this.myid && this.raftRole === 'leader') {
      role = membership.voters.length === 1 && membership.learners.length === 0 ? 'standalone' : 'leader';
    } else if (this.leader !== 0 && this.leaderCannotHearMe()) {
      // It hears the leader, the leader does not hear it: its session touches are lost, so its clients must move.
      role = this.opts.ensemble.readOnlyMode ? 'read-only' : 'cut-off';
    } else if (this.leader !== 0) {
      role = membership.learners.includes(this.myid) ? 'observer' : 'follower';
    } else if (this.leaderlessSince >= 0 && this.ticks - this.leaderlessSince >= this.cutOffTicks) {
      role = this.opts.ensemble.readOnlyMode ? 'read-only' : 'cut-off';
    } else {
      role = 'leaderless';
    }
    if (role === 'read-only' || role === 'cut-off') {
      this.held = [];
      for (const p of this.mine.values()) this.target?.abandon(p.ref, 'cut off from the quorum');
      this.mine.clear();
    }
    this.setRole(role);
  }

  /** Whether the leader's last word is that it has not heard from this member for a cut-off's worth of ticks. */
  private leaderCannotHearMe(): boolean {
    const h = this.leaderHears;
    return h !== undefined && h.leader === this.leader && h.ticksAgo >= this.cutOffTicks;
  }

  private setRole(role: ServingRole): void {
    if (role === this.role_) return;
    this.role_ = role;
    this.target?.roleChanged(role);
    if (role === 'leader') this.writeConfigNode();
  }

  /**
   * Writes the applied membership to /zookeeper/config if it shows another (a new
   * ensemble's is only in its members' config files; a leader may have stopped between a
   * change and writing it down). Returns the index of the write, or 0 if none was needed.
   * Leader only: the write is a reconfig txn, so every member applies it with its time.
   */
  private writeConfigNode(): number {
    const applied = this.raft.snapshotMeta(this.applied);
    if (!applied) return 0;
    const text = configText(applied);
    if (text === this.tree.configMembers()) return 0;
    // Straight into the log when nothing is held (then its index is the last one); else behind what is.
    const direct = this.canProposeNow() && this.raft.role === 'leader';
    this.propose({ time: Date.now(), sessionId: 0n, auth: [], body: { type: OpCode.reconfig, data: Buffer.from(text) } }, { kind: 'internal' });
    return direct ? this.raft.lastIndex : 0;
  }

  /**
   * Writes another member forwarded here. If this member cannot order them or pass them
   * on right now (no leader, or it is handing leadership over), it holds them in order
   * rather than drop them: a proposer's writes must reach the log in the order it sent them.
   */
  private passOn(entries: Entry[]): void {
    for (const e of entries) {
      if (!e.data) continue;
      if (this.canProposeNow() && this.raft.propose([e.data])) continue;
      if (this.held.length >= MAX_WAITING) continue; // the proposer sends it again after a leader change
      this.held.push({ seq: 0, data: e.data, ref: undefined, foreign: true, at: this.ticks, leader: 0 });
    }
    this.schedule();
  }

  /** The leader tells every member how long ago it last heard from it. */
  private tellHeard(): void {
    if (this.raftRole !== 'leader' || !this.transport) return;
    for (const p of this.raft.status().peers) this.transport.send(p.id, { kind: 'heard', ticksAgo: p.ticksSinceHeard });
  }

  /** Followers and observers pass the sessions they heard from to the leader, once per heartbeat interval. */
  private passTouches(): void {
    if (!this.target || this.leader === 0 || this.leader === this.myid) return;
    for (const id of this.target.drainTouches()) this.touchesOwed.add(id);
    if (this.touchesOwed.size === 0) return;
    if (this.transport?.send(this.leader, { kind: 'touches', ids: [...this.touchesOwed] })) this.touchesOwed.clear();
  }

  /** Forwarded writes or syncs that never came back (a message lost on the way) end the client's wait. */
  private expireRequests(): void {
    for (const [seq, p] of this.mine) {
      // Held writes wait for a leader (bounded by the cut-off); sent ones for their commit.
      if (p.leader === 0 || this.ticks - p.at < this.requestTimeoutTicks) continue;
      this.mine.delete(seq);
      p.settled = true;
      this.target?.abandon(p.ref, 'write not committed in time: outcome unknown');
    }
    for (const [ctx, s] of this.syncs) {
      if (this.ticks - s.at < this.requestTimeoutTicks) break;
      this.syncs.delete(ctx);
      s.done(false);
    }
    // A learner's catch-up may take up to initLimit ticks of tickTime; a forwarded change waits that long, then some.
    const changeTicks = this.requestTimeoutTicks + Math.ceil((this.opts.ensemble.initLimit * this.opts.config.tickTime) / this.opts.ensemble.heartbeatIntervalMs);
    for (const [id, w] of this.forwardedChanges) {
      if (this.ticks - w.at < changeTicks) break;
      this.forwardedChanges.delete(id);
      w.resolve(UNKNOWN);
    }
  }

  // ---- peers ------------------------------------------------------------------------

  private learnAddresses(contexts: Record<number, string>): void {
    for (const [id, text] of Object.entries(contexts)) this.learnAddress(Number(id), text);
  }

  private learnAddress(id: number, text: string): void {
    if (text && !this.configured.has(id)) this.addresses.set(id, parseServerSpec(id, text));
  }

  private updatePeers(): void {
    if (!this.transport) return;
    const m = this.raft.membership();
    const peers = new Map<number, PeerAddress>();
    for (const id of [...m.voters, ...m.learners]) {
      const s = this.addresses.get(id);
      if (s && id !== this.myid) peers.set(id, { host: s.host, port: s.peerPort });
    }
    // A member not yet in the membership (joining) still needs to answer the leader.
    if (this.leader !== 0 && !peers.has(this.leader) && this.leader !== this.myid) {
      const s = this.addresses.get(this.leader);
      if (s) peers.set(this.leader, { host: s.host, port: s.peerPort });
    }
    this.transport.setPeers(peers);
  }

  private send(m: Message): void {
    if (m.to === this.myid) return;
    if (m.type === 'snapshot') {
      void this.sendSnapshot(m);
      return;
    }
    if (m.type === 'propose') {
      // Only the current attempt of each write: writes taken back to be sent again (a
      // connection dropped while this batch was being prepared) go from the queue, in order.
      const entries = m.entries.filter((e) => {
        const { origin, seq } = txnProposer(e.data!);
        return origin !== this.myid || this.mine.get(seq)?.attempt === e.data;
      });
      if (entries.length === 0) return;
      if (!this.transport?.send(m.to, { kind: 'raft', message: { ...m, entries } })) this.sendAgainToLeader();
      return;
    }
    this.transport?.send(m.to, { kind: 'raft', message: m });
  }

  /**
   * Writes already sent to the leader and not applied may have been lost with a dropped
   * connection or message. They go again, in order, before anything newer (a later write
   * must not reach the log ahead of a lost earlier one); the tree drops copies.
   */
  private sendAgainToLeader(): void {
    const again: Proposed[] = [];
    for (const p of this.mine.values()) {
      if (p.leader !== 0) {
        p.leader = 0;
        p.attempt = undefined;
        again.push(p);
      }
    }
    // Sent writes are older than any held one of this member's: they go first.
    if (again.length > 0) {
      this.log.debug('writes to send again', { count: again.length, first: again[0].seq, last: again[again.length - 1].seq });
      this.held = again.concat(this.held);
    }
  }

  private onFrame(from: number, f: PeerFrame): void {
    if (this.closed) return;
    switch (f.kind) {
      case 'raft':
        if (f.message.type === 'snapshot') return void this.onSnapshotMessage(f.message);
        if (f.message.type === 'propose') return this.passOn(f.message.entries);
        this.raft.step(f.message);
        this.schedule();
        return;
      case 'touches':
        if (this.leader === this.myid) this.target?.touchSessions(f.ids);
        return;
      case 'heard':
        if (from === this.leader) this.leaderHears = { leader: from, ticksAgo: f.ticksAgo };
        return;
      case 'snapshot-begin':
        return this.onSnapshotBegin(f.meta);
      case 'snapshot-chunk':
        return this.onSnapshotChunk(f);
      case 'reconfig':
        return void this.onForwardedChange(from, f.requestId, f.change);
      case 'reconfig-result': {
        const w = this.forwardedChanges.get(f.requestId);
        if (!w) return;
        this.forwardedChanges.delete(f.requestId);
        w.resolve(f.err === UNKNOWN_WIRE ? UNKNOWN : { err: f.err, index: f.index });
        return;
      }
    }
  }

  // ---- snapshots --------------------------------------------------------------------

  /** Takes a snapshot once snapCount entries have been applied since the last one, without stopping writes. */
  private maybeSnapshot(): void {
    if (this.snapshotting || this.applied - this.snapshotIndex < this.opts.ensemble.snapCount) return;
    // The membership as of the applied index: the latest one in the log may not be committed yet.
    const meta = this.raft.snapshotMeta(this.applied);
    if (!meta) return;
    this.snapshotting = true;
    const producer = beginSnapshot(this.tree);
    const started = performance.now();
    async function* chunks() {
      for (;;) {
        const c = producer.next(SNAPSHOT_CHUNK);
        if (c === null) return;
        yield c;
        // Let requests through between chunks.
        await new Promise((r) => setImmediate(r));
      }
    }
    this.storage
      .saveSnapshot(meta, chunks())
      .then(() => {
        this.snapshotIndex = meta.index;
        this.raft.snapshotTaken(meta);
        this.log.info('snapshot taken', { index: meta.index, nodes: this.tree.nodeCount, ms: Math.round(performance.now() - started) });
      })
      .catch((e: unknown) => this.log.error('snapshot failed', { error: e instanceof Error ? e.message : String(e) }))
      .finally(() => {
        producer.abort();
        this.snapshotting = false;
      });
  }

  private async sendSnapshot(m: Extract<Message, { type: 'snapshot' }>): Promise<void> {
    const to = m.to;
    const latest = await this.storage.snapshots.latest();
    if (!latest || latest.meta.index !== m.snapshot.index || !this.transport) {
      this.raft.reportSnapshot(to, false);
      this.schedule();
      return;
    }
    try {
      let offset = 0;
      await this.transport.sendAndDrain(to, { kind: 'snapshot-begin', meta: m.snapshot });
      for await (const data of latest.transfer()) {
        await this.transport.sendAndDrain(to, { kind: 'snapshot-chunk', index: m.snapshot.index, term: m.snapshot.term, offset, data });
        offset += data.length;
      }
      await this.transport.sendAndDrain(to, { kind: 'raft', message: m });
      this.log.info('snapshot sent', { to, index: m.snapshot.index, bytes: offset });
      this.raft.reportSnapshot(to, true);
    } catch (e) {
      this.log.warn('snapshot send failed', { to, error: e instanceof Error ? e.message : String(e) });
      this.raft.reportSnapshot(to, false);
    }
    this.schedule();
  }

  private onSnapshotBegin(meta: SnapshotMeta): void {
    void this.receiving?.receiver.abort();
    this.receiving = { index: meta.index, term: meta.term, receiver: this.storage.snapshots.beginReceive(meta), offset: 0, writes: Promise.resolve(), failed: false };
  }

  /** Chunks are written in order; a gap or a failed write spoils the whole transfer. */
  private onSnapshotChunk(f: Extract<PeerFrame, { kind: 'snapshot-chunk' }>): void {
    const r = this.receiving;
    if (!r || r.index !== f.index || r.term !== f.term) return;
    if (r.offset !== f.offset) r.failed = true;
    if (r.failed) return;
    r.offset += f.data.length;
    const data = Buffer.from(f.data);
    r.writes = r.writes.then(() => r.receiver.write(data)).catch(() => {
      r.failed = true;
    });
  }

  private received: { meta: SnapshotMeta; path: string } | undefined;

  private async onSnapshotMessage(m: Extract<Message, { type: 'snapshot' }>): Promise<void> {
    const r = this.receiving;
    this.receiving = undefined;
    if (!r || r.index !== m.snapshot.index || r.term !== m.snapshot.term) return;
    try {
      await r.writes;
      if (r.failed) throw new Error('chunks missing or not written');
      const path = await r.receiver.finish();
      this.received = { meta: m.snapshot, path };
    } catch (e) {
      this.log.warn('snapshot from leader rejected', { error: e instanceof Error ? e.message : String(e) });
      return;
    }
    this.raft.step(m);
    this.schedule();
  }

  private async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const got = this.received;
    if (!got || got.meta.index !== meta.index) throw new Error(`asked to install snapshot ${meta.index} that was not received`);
    const started = performance.now();
    const stored = await this.storage.snapshots.verify(got.path);
    const tree = await loadSnapshot(stored.body(), { extendedTypesEnabled: this.opts.config.extendedTypesEnabled });
    (this as { tree: DataTree }).tree = tree;
    this.applied = this.snapshotIndex = meta.index;
    this.lastZxid_ = tree.lastZxid;
    this.seq = Math.max(this.seq, tree.proposers.get(this.myid) ?? 0);
    this.learnAddresses(meta.contexts);
    this.updatePeers();
    this.target!.restore(tree);
    this.settleAppliedWaiters();
    this.log.info('snapshot installed', { index: meta.index, nodes: tree.nodeCount, ms: Math.round(performance.now() - started) });
  }

  // ---- status and shutdown ---------------------------------------------------------

  status(): ReplicationStatus {
    const s = this.raft.status();
    const hb = this.opts.ensemble.heartbeatIntervalMs;
    const members = [...s.membership.voters, ...s.membership.learners]
      .map((id) => this.addresses.get(id))
      .filter((m): m is MemberSpec => m !== undefined)
      .map((m) => ({ id: m.id, role: s.membership.learners.includes(m.id) ? ('observer' as const) : ('participant' as const), clientAddress: clientAddress(m), spec: formatServerSpec(m) }));
    return {
      myid: this.myid,
      role: this.role_,
      term: s.term,
      leader: s.leader,
      commitIndex: s.commit,
      appliedIndex: this.applied,
      lastIndex: s.lastIndex,
      members,
      peers: s.peers.map((p) => ({
        id: p.id,
        voter: p.voter,
        heartbeatAgeMs: p.ticksSinceHeard * hb,
        lag: Math.max(0, s.lastIndex - p.match),
        match: p.match,
        state: p.state,
        connected: this.transport?.isConnected(p.id) ?? false,
      })),
    };
  }

  /**
   * Stops: a leader first hands leadership to the most up-to-date voter so the
   * ensemble does not wait an election timeout (a graceful restart).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.raftRole === 'leader' && this.transport) {
      const s = this.raft.status();
      const best = s.peers.filter((p) => p.voter && this.transport!.isConnected(p.id)).sort((a, b) => b.match - a.match)[0];
      if (best && this.raft.transferLeadership(best.id) === undefined) {
        this.schedule();
        const deadline = this.ticks + this.electionTicks * 2;
        while (!this.closed && this.leader === this.myid && this.ticks < deadline) await new Promise((r) => setTimeout(r, this.opts.ensemble.heartbeatIntervalMs));
        if (this.leader === best.id) this.log.info('leadership handed over', { to: best.id });
        else this.log.warn('leadership transfer did not complete before shutdown', { to: best.id, leader: this.leader });
      }
    }
    this.closed = true;
    clearInterval(this.tickTimer);
    for (const p of this.mine.values()) this.target?.abandon(p.ref, 'server shutting down');
    this.mine.clear();
    this.held = [];
    for (const [, s] of this.syncs) s.done(false);
    this.syncs.clear();
    for (const w of this.appliedWaiters.splice(0)) w.resolve(false);
    for (const [, w] of this.forwardedChanges) w.resolve(UNKNOWN);
    this.forwardedChanges.clear();
    this.receiving?.receiver.abort();
    while (this.driving) await new Promise((r) => setTimeout(r, 5));
    await this.transport?.close();
    await this.storage.close();
  }
}
