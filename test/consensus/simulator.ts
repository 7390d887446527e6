/**
 * A deterministic simulator of Raft ensembles (test support; pure, everything drawn from one
 * seed, so a seed replays exactly).
 *
 * The real RaftNode runs on a simulated clock and network that delays, drops, duplicates and
 * reorders messages and cuts links (symmetric and one-way partitions). Each member's storage is
 * what was fsynced plus the Ready being written: a Ready's messages are held until its fsync
 * completes after a random delay, then its entries are applied and advance() is called. A crash
 * loses the unsynced Ready, every message in flight to the member and all volatile state; the
 * member restarts from its synced storage. Clients propose, read (read index), change the
 * membership (add and remove voters, add and promote learners) and transfer leadership; members
 * take snapshots and compact, so leaders send snapshots. Each seed draws its fault rates, flow
 * control limits, and whether pre-vote and check-quorum are on.
 *
 * Checked after every event: election safety (one leader per term, over the whole run), log
 * matching (an (index, term) pair names one entry and one predecessor everywhere), leader
 * completeness (a new leader holds every entry committed in earlier terms), state machine
 * safety (every member applies the same entry at each index, with the same state before it;
 * snapshots carry that state), read safety (a read index covers everything applied anywhere
 * before the read was asked), terms and votes never going back in storage. Then the faults
 * stop: a leader must be elected and new proposals must commit on every member in bounded time.
 */
import { RaftNode } from '../../src/consensus/raft.js';
import type {
  ConfigChange,
  Configuration,
  Entry,
  HardState,
  MemberId,
  Message,
  MessageType,
  RaftConfig,
  Ready,
  SnapshotMeta,
} from '../../src/consensus/types.js';
import { EventHeap } from '../../src/sim/heap.js';
import { Rng } from '../support/random.js';

/**
 * Bugs to inject, to prove the checks can fail: a member that grants every vote; a core that
 * skips the election restriction; read-round heartbeats acknowledged although lost; heartbeats
 * whose commit index ignores what the follower matched; a disk that loses its last fsync.
 */
export const BUGS = ['forge-votes', 'skip-log-check', 'forge-read-acks', 'inflate-heartbeat-commit', 'lose-fsync'] as const;
export type Bug = (typeof BUGS)[number];

export interface SimOptions {
  seed: number;
  /** Initial voters; two more members start outside the ensemble and may be added. */
  members: 3 | 5;
  /** Ticks of faults and client load before the network heals. */
  faultTicks?: number;
  bug?: Bug;
  /** Keep a readable trace of every event. */
  trace?: boolean;
}

export interface SimStats {
  events: number;
  messages: number;
  elections: number;
  maxTerm: number;
  /** Highest index applied by any member. */
  applied: number;
  proposals: number;
  readsAnswered: number;
  configChanges: number;
  transfers: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  crashes: number;
  partitions: number;
  /** After the network healed: ticks until a leader of the highest term, and from proposing until the proposals were applied everywhere. */
  ticksToLeader: number;
  ticksToCommit: number;
}

export interface SimResult {
  seed: number;
  members: number;
  bug?: Bug;
  failure?: string;
  /** Hash of every event in order: equal for equal runs. */
  traceHash: number;
  trace: string[];
  stats: SimStats;
}

export const TICK = 10;
export const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
/** Liveness bounds after the network heals. */
export const LEADER_BOUND_TICKS = 30 * ELECTION_TICKS;
export const COMMIT_BOUND_TICKS = 60 * ELECTION_TICKS;
/** Longest a message sent before the healing may still be in flight, in ticks. */
const SETTLE_TICKS = 25;
const SPARE_MEMBERS = 2;
const LIVENESS_PROPOSALS = 3;

export function replayCommand(o: { seed: number; members: number; bug?: Bug; faultTicks?: number }): string {
  const extra = (o.bug ? ` --bug ${o.bug}` : '') + (o.faultTicks !== undefined ? ` --fault-ticks ${o.faultTicks}` : '');
  return `npm run sim:raft -- --members ${o.members} --start ${o.seed} --seeds 1 --trace${extra}`;
}

export function simulate(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

export interface SeedsReport {
  failures: string[];
  /** Stats summed over the seeds, except ticksToLeader and ticksToCommit: the worst seed's. */
  stats: SimStats;
}

/** Runs seeds [start, start + count); without `members`, even seeds run 3 members and odd ones 5. */
export function runSeeds(start: number, count: number, opts: Omit<SimOptions, 'seed' | 'members'> & { members?: 3 | 5 } = {}): SeedsReport {
  const stats = {} as SimStats;
  const failures: string[] = [];
  for (let seed = start; seed < start + count; seed++) {
    const r = simulate({ ...opts, seed, members: opts.members ?? (seed % 2 === 0 ? 3 : 5) });
    if (r.failure) failures.push(r.failure);
    for (const [k, v] of Object.entries(r.stats) as [keyof SimStats, number][]) {
      stats[k] = k === 'ticksToLeader' || k === 'ticksToCommit' ? Math.max(stats[k] ?? 0, v) : (stats[k] ?? 0) + v;
    }
  }
  return { failures, stats };
}

class Violation extends Error {}

/** The state machine: how many entries it has applied and a hash of all of them, in order. */
interface Sm {
  index: number;
  hash: number;
}

interface Stored {
  hardState: HardState;
  snapshot?: { meta: SnapshotMeta; sm: Sm };
  /** Entries after the snapshot. */
  entries: Entry[];
}

interface Member {
  id: MemberId;
  node?: RaftNode;
  /** Bumped by every crash: fsyncs and messages addressed to an earlier incarnation are lost. */
  incarnation: number;
  storage: Stored;
  sm: Sm;
  bootstrap: Configuration;
  /** The Ready being fsynced, and the member's term when it was made. */
  rd?: Ready;
  readyTerm: number;
  /** Snapshot contents received with 'snapshot' messages, by "index/term" (volatile). */
  received: Map<string, Sm>;
  /** Last term in which this member was seen leading. */
  ledTerm: number;
  /** Storage as it was before the last fsync (kept only for the lose-fsync bug). */
  beforeFsync?: Stored;
}

type Event =
  | { k: 'tick'; id: MemberId }
  | { k: 'deliver'; m: Message; inc: number; snap?: Sm }
  | { k: 'fsync'; id: MemberId; inc: number }
  | { k: 'restart'; id: MemberId }
  | { k: 'snapshot-report'; from: MemberId; inc: number; to: MemberId; ok: boolean }
  | { k: 'client' }
  | { k: 'heal-partition' }
  | { k: 'end-faults' };

const MESSAGE_CODES: Record<MessageType, number> = {
  append: 1,
  'append-resp': 2,
  heartbeat: 3,
  'heartbeat-resp': 4,
  'pre-vote': 5,
  vote: 6,
  'pre-vote-resp': 7,
  'vote-resp': 8,
  snapshot: 9,
  'snapshot-status': 10,
  'timeout-now': 11,
  propose: 12,
  'read-index': 13,
  'read-index-resp': 14,
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 16777619) >>> 0;
}

function mixString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return h;
}

/** Everything that makes an entry what it is. */
function fingerprint(e: Entry): number {
  let h = mix(mix(2166136261, e.term), e.kind.length);
  if (e.data) for (const b of e.data) h = mix(h, b);
  if (e.change) h = mixString(mix(h, e.change.id), e.change.op + e.change.context);
  if (e.config) h = mixString(h, JSON.stringify(e.config));
  return h;
}

const logKey = (index: number, term: number) => index * 2 ** 21 + term;

function address(id: MemberId): string {
  return `127.0.0.1:${2880 + id}`;
}

class SkipsLogCheck extends RaftNode {
  protected override candidateIsUpToDate(): boolean {
    return true;
  }
}

class Simulation {
  private readonly rng: Rng;
  private readonly heap = new EventHeap<Event>();
  private now = 0;
  private readonly members = new Map<MemberId, Member>();
  private readonly ids: MemberId[];
  private readonly cut = new Set<string>();
  private phase: 'faults' | 'electing' | 'committing' | 'done' = 'faults';
  private phaseStart = 0;
  private traceHash = 2166136261;
  private readonly trace: string[] = [];
  private readonly stats: SimStats = {
    events: 0,
    messages: 0,
    elections: 0,
    maxTerm: 0,
    applied: 0,
    proposals: 0,
    readsAnswered: 0,
    configChanges: 0,
    transfers: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    crashes: 0,
    partitions: 0,
    ticksToLeader: -1,
    ticksToCommit: -1,
  };

  // The run's fault and load profile, drawn from the seed.
  private readonly faultTicks: number;
  private drop: number;
  private duplicate: number;
  private slow: number;
  private readonly crashRate: number;
  private readonly partitionRate: number;
  private readonly configRate: number;
  private readonly transferRate: number;
  private readonly snapshotRate: number;
  private readonly raft: Omit<RaftConfig, 'id' | 'random'>;

  // What the checks remember.
  private readonly leaders = new Map<number, MemberId>();
  /** (index, term) -> the entry's fingerprint and its predecessor's term. */
  private readonly logs = new Map<number, { fp: number; prevTerm: number }>();
  /** Hash of the state machine after applying index i, as first seen anywhere. */
  private readonly smHashes: number[] = [0];
  /** Per committed index: its term, and the lowest term in which any member knew it committed. */
  private readonly committedTerms: number[] = [0];
  private readonly commitTerms: number[] = [0];
  private maxApplied = 0;
  private readSeq = 0;
  private readonly readFloors = new Map<number, { member: MemberId; floor: number; answered: boolean }>();
  private proposalSeq = 0;
  private liveTokens: string[] = [];
  private readonly liveAppliedBy = new Map<string, Set<MemberId>>();
  private liveLeader: MemberId = 0;

  constructor(private readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed * 2654435761 + opts.members);
    const r = this.rng;
    this.faultTicks = opts.faultTicks ?? 300;
    this.drop = r.pick([0, 0.01, 0.05, 0.15]);
    this.duplicate = r.pick([0, 0.02, 0.05]);
    this.slow = r.pick([0, 0.02, 0.1]);
    this.crashRate = r.pick([0, 0.005, 0.02]);
    this.partitionRate = r.pick([0, 0.01, 0.03]);
    this.configRate = r.pick([0.005, 0.02]);
    this.transferRate = r.pick([0.002, 0.01]);
    this.snapshotRate = r.pick([0.01, 0.05]);
    this.raft = {
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      preVote: r.chance(0.75),
      checkQuorum: r.chance(0.75),
      maxInflight: 1 + r.int(4),
      maxMessageBytes: r.pick([64, 256, 4096]),
      keepBehindSnapshot: r.int(4),
    };
    this.ids = Array.from({ length: opts.members + SPARE_MEMBERS }, (_, i) => i + 1);
    const voters = this.ids.slice(0, opts.members);
    const contexts: Record<MemberId, string> = {};
    for (const v of voters) contexts[v] = address(v);
    for (const id of this.ids) {
      // Members outside the initial ensemble start knowing nothing, as a member added later does.
      const bootstrap: Configuration = voters.includes(id)
        ? { membership: { voters: [...voters], learners: [] }, contexts: { ...contexts } }
        : { membership: { voters: [], learners: [] }, contexts: {} };
      const m: Member = {
        id,
        incarnation: 0,
        storage: { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] },
        sm: { index: 0, hash: 0 },
        bootstrap,
        readyTerm: 0,
        received: new Map(),
        ledTerm: 0,
      };
      this.members.set(id, m);
      this.start(m);
      this.heap.push(1 + r.int(TICK), { k: 'tick', id });
    }
    this.heap.push(TICK, { k: 'client' });
    this.heap.push(this.faultTicks * TICK, { k: 'end-faults' });
  }

  run(): SimResult {
    let failure: string | undefined;
    try {
      while (this.phase !== 'done') {
        const ev = this.heap.pop();
        if (!ev) throw new Violation('the event queue ran dry');
        this.now = ev.time;
        this.stats.events++;
        this.handle(ev.item);
      }
    } catch (e) {
      const what = e instanceof Violation ? e.message : `the core threw: ${(e as Error).stack ?? String(e)}`;
      failure = `raft simulation seed ${this.opts.seed} (members ${this.opts.members}${this.opts.bug ? `, bug ${this.opts.bug}` : ''}) failed at t=${this.now}: ${what}\n  replay: ${replayCommand(this.opts)}`;
    }
    return {
      seed: this.opts.seed,
      members: this.opts.members,
      bug: this.opts.bug,
      failure,
      traceHash: this.traceHash,
      trace: this.trace,
      stats: this.stats,
    };
  }

  private record(code: number, a: number, b = 0, c = 0, text?: () => string): void {
    this.traceHash = mix(mix(mix(mix(mix(this.traceHash, this.now), code), a), b), c);
    if (this.opts.trace && text) this.trace.push(`${this.now} ${text()}`);
  }

  private handle(ev: Event): void {
    switch (ev.k) {
      case 'tick': {
        this.heap.push(this.now + TICK, ev);
        const m = this.members.get(ev.id)!;
        if (!m.node) return;
        this.record(1, ev.id);
        m.node.tick();
        this.settle(m);
        return;
      }
      case 'deliver':
        this.deliver(ev.m, ev.inc, ev.snap);
        return;
      case 'fsync':
        this.fsync(this.members.get(ev.id)!, ev.inc);
        return;
      case 'restart': {
        const m = this.members.get(ev.id)!;
        if (m.node) return;
        this.record(4, ev.id, 0, 0, () => `restart ${ev.id}`);
        this.start(m);
        return;
      }
      case 'snapshot-report': {
        const m = this.members.get(ev.from)!;
        if (!m.node || m.incarnation !== ev.inc) return;
        this.record(5, ev.from, ev.to, ev.ok ? 1 : 0, () => `report-snapshot ${ev.from}>${ev.to} ${ev.ok}`);
        m.node.reportSnapshot(ev.to, ev.ok);
        this.settle(m);
        return;
      }
      case 'client':
        this.heap.push(this.now + TICK, ev);
        if (this.phase === 'faults') this.chaos();
        else this.checkLiveness();
        return;
      case 'heal-partition':
        this.record(6, 0, 0, 0, () => 'partition healed');
        this.cut.clear();
        return;
      case 'end-faults':
        this.record(7, 0, 0, 0, () => 'faults end');
        this.endFaults();
        return;
    }
  }

  // ---- Members, storage, Readies ----

  private start(m: Member): void {
    const snap = m.storage.snapshot;
    const config = { ...this.raft, id: m.id, random: this.memberRandom(m) };
    const restored = {
      hardState: { ...m.storage.hardState },
      snapshot: snap?.meta,
      entries: m.storage.entries.slice(),
      bootstrap: m.bootstrap,
      applied: snap?.meta.index ?? 0,
    };
    const Node = this.opts.bug === 'skip-log-check' ? SkipsLogCheck : RaftNode;
    m.node = new Node(config, restored);
    m.sm = snap ? { ...snap.sm } : { index: 0, hash: 0 };
    m.ledTerm = 0;
    this.settle(m);
  }

  private memberRandom(m: Member): () => number {
    const rng = new Rng(this.opts.seed * 31 + m.id * 1009 + m.incarnation * 7);
    return () => rng.next();
  }

  private crash(m: Member): void {
    this.record(3, m.id, 0, 0, () => `crash ${m.id}`);
    this.stats.crashes++;
    m.node = undefined;
    m.rd = undefined;
    m.incarnation++;
    m.received.clear();
    // The injected fault: the disk acknowledged the last fsync but did not keep it.
    if (this.opts.bug === 'lose-fsync' && m.beforeFsync) m.storage = m.beforeFsync;
  }

  /** After anything happened to a member: look at its role, and hand its next Ready to storage. */
  private settle(m: Member): void {
    this.observe(m);
    const node = m.node;
    if (!node || m.rd || !node.hasReady()) return;
    const rd = node.ready();
    this.checkReady(m, rd);
    m.rd = rd;
    m.readyTerm = node.term;
    for (const msg of rd.messagesBeforePersist) this.send(m, msg);
    const writes = rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined;
    this.heap.push(this.now + (writes ? 1 + this.rng.int(15) : 0), { k: 'fsync', id: m.id, inc: m.incarnation });
  }

  private fsync(m: Member, inc: number): void {
    const node = m.node;
    const rd = m.rd;
    if (!node || !rd || m.incarnation !== inc) return;
    this.record(2, m.id, rd.entries.length, rd.committed.length, () => `fsync ${m.id} entries ${rd.entries.length} committed ${rd.committed.length}`);
    const st = m.storage;
    if (this.opts.bug === 'lose-fsync') m.beforeFsync = { ...st, hardState: { ...st.hardState }, entries: st.entries.slice() };
    if (rd.snapshot) {
      const key = `${rd.snapshot.index}/${rd.snapshot.term}`;
      const sm = m.received.get(key);
      if (!sm) throw new Violation(`member ${m.id} must install snapshot ${key} but never received it`);
      st.snapshot = { meta: rd.snapshot, sm: { ...sm } };
      st.entries = [];
    }
    if (rd.entries.length) {
      const base = st.snapshot?.meta.index ?? 0;
      const keep = rd.entries[0].index - base - 1;
      st.entries.length = Math.min(st.entries.length, Math.max(0, keep));
      for (const e of rd.entries) if (e.index > base) st.entries.push(e);
    }
    if (rd.hardState) st.hardState = { ...rd.hardState };
    for (const msg of rd.messages) this.send(m, msg);
    if (rd.snapshot) this.install(m, st.snapshot!.sm, rd.snapshot.index);
    for (const e of rd.committed) this.apply(m, e);
    for (const rs of rd.readStates) {
      // Duplicated requests may be answered twice, and after a restart (the shell ignores those).
      const read = this.readFloors.get(rs.context);
      if (!read || read.member !== m.id) throw new Violation(`member ${m.id} got read state ${rs.context} it never asked for`);
      if (rs.index < read.floor) {
        throw new Violation(`read ${rs.context} at member ${m.id} got index ${rs.index}, below ${read.floor} applied before it was asked`);
      }
      if (!read.answered) this.stats.readsAnswered++;
      read.answered = true;
    }
    m.rd = undefined;
    node.advance(rd);
    this.settle(m);
  }

  private checkReady(m: Member, rd: Ready): void {
    const st = m.storage;
    const hs = rd.hardState;
    if (hs) {
      const old = st.hardState;
      if (hs.term < old.term) throw new Violation(`member ${m.id} term went back from ${old.term} to ${hs.term}`);
      if (hs.term === old.term && old.vote !== 0 && hs.vote !== old.vote) {
        throw new Violation(`member ${m.id} voted for ${old.vote} and then ${hs.vote} in term ${hs.term}`);
      }
      if (hs.commit < old.commit) throw new Violation(`member ${m.id} commit went back from ${old.commit} to ${hs.commit}`);
    }
    const base = rd.snapshot ? rd.snapshot : st.snapshot?.meta;
    const storedTerm = (index: number): number | undefined => {
      if (index === (base?.index ?? 0)) return base?.term ?? 0;
      if (rd.snapshot) return undefined;
      return st.entries[index - (base?.index ?? 0) - 1]?.term;
    };
    for (let k = 0; k < rd.entries.length; k++) {
      const e = rd.entries[k];
      if (k > 0 && e.index !== rd.entries[k - 1].index + 1) throw new Violation(`member ${m.id} writes entries out of order at ${e.index}`);
      const prevTerm = k > 0 ? rd.entries[k - 1].term : storedTerm(e.index - 1);
      if (prevTerm === undefined) throw new Violation(`member ${m.id} writes entry ${e.index} after a gap`);
      const key = logKey(e.index, e.term);
      const fp = fingerprint(e);
      const seen = this.logs.get(key);
      if (!seen) this.logs.set(key, { fp, prevTerm });
      else if (seen.fp !== fp || seen.prevTerm !== prevTerm) {
        throw new Violation(`log matching: member ${m.id} has a different entry ${e.index} of term ${e.term} (or a different one before it)`);
      }
    }
  }

  private install(m: Member, sm: Sm, index: number): void {
    if (sm.index !== index) throw new Violation(`member ${m.id} installs a snapshot at ${index} holding state at ${sm.index}`);
    if (this.smHashes[index] !== sm.hash) throw new Violation(`state machine safety: snapshot at ${index} installed on member ${m.id} differs from what was applied`);
    m.sm = { ...sm };
    this.stats.snapshotsInstalled++;
  }

  private apply(m: Member, e: Entry): void {
    if (e.index !== m.sm.index + 1) throw new Violation(`member ${m.id} applies entry ${e.index} after ${m.sm.index}`);
    const hash = mix(m.sm.hash, fingerprint(e));
    const seen = this.smHashes[e.index];
    if (seen === undefined) {
      this.smHashes[e.index] = hash;
      this.committedTerms[e.index] = e.term;
    } else if (seen !== hash) {
      throw new Violation(`state machine safety: member ${m.id} applies a different entry ${e.index} (term ${e.term}) than others did`);
    }
    const known = this.commitTerms[e.index];
    if (known === undefined || m.readyTerm < known) this.commitTerms[e.index] = m.readyTerm;
    m.sm = { index: e.index, hash };
    if (e.index > this.maxApplied) this.maxApplied = this.stats.applied = e.index;
    if (e.data && this.liveAppliedBy.size) this.liveAppliedBy.get(decoder.decode(e.data))?.add(m.id);
  }

  /** Election safety and leader completeness, when a member is seen leading a new term. */
  private observe(m: Member): void {
    const node = m.node;
    if (!node) return;
    if (node.term > this.stats.maxTerm) this.stats.maxTerm = node.term;
    if (node.role !== 'leader' || m.ledTerm === node.term) return;
    m.ledTerm = node.term;
    this.stats.elections++;
    this.record(8, m.id, node.term, 0, () => `leader ${m.id} term ${node.term}`);
    const other = this.leaders.get(node.term);
    if (other !== undefined && other !== m.id) throw new Violation(`election safety: members ${other} and ${m.id} both lead term ${node.term}`);
    this.leaders.set(node.term, m.id);
    for (let i = 1; i < this.committedTerms.length; i++) {
      if (this.commitTerms[i] >= node.term) continue;
      const t = node.termAt(i);
      if (t === undefined && i <= node.commit) continue; // compacted into its snapshot, checked when installed
      if (t !== this.committedTerms[i]) {
        throw new Violation(`leader completeness: leader ${m.id} of term ${node.term} lacks entry ${i} (term ${this.committedTerms[i]}) committed in term ${this.commitTerms[i]}`);
      }
    }
  }

  // ---- Network ----

  private send(from: Member, msg: Message): void {
    this.stats.messages++;
    const to = this.members.get(msg.to);
    if (!to) return;
    if (this.cut.has(`${msg.from}>${msg.to}`) || (this.drop > 0 && this.rng.chance(this.drop))) {
      if (this.cut.has(`${msg.from}>${msg.to}`) && this.rng.chance(0.2)) from.node?.reportUnreachable(msg.to);
      if (msg.type === 'snapshot') this.reportSnapshot(from, msg.to, false);
      if (this.opts.bug === 'forge-read-acks' && msg.type === 'heartbeat' && msg.context > 0) {
        // The injected fault: a lost heartbeat of a read round is acknowledged anyway.
        const ack: Message = { type: 'heartbeat-resp', from: msg.to, to: msg.from, term: msg.term, context: msg.context };
        this.heap.push(this.now + this.latency(), { k: 'deliver', m: ack, inc: from.incarnation });
      }
      return;
    }
    let snap: Sm | undefined;
    if (msg.type === 'snapshot') {
      const stored = from.storage.snapshot;
      if (!stored || stored.meta.index !== msg.snapshot.index || stored.meta.term !== msg.snapshot.term) {
        throw new Violation(`member ${from.id} sends snapshot ${msg.snapshot.index} it has not stored`);
      }
      snap = stored.sm;
    }
    if (this.opts.bug === 'inflate-heartbeat-commit' && msg.type === 'heartbeat' && from.node) {
      // The injected fault: heartbeats carry the leader's commit index even past what the follower has matched.
      msg = { ...msg, commit: from.node.commit };
    }
    const copies = this.duplicate > 0 && this.rng.chance(this.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) this.heap.push(this.now + this.latency(), { k: 'deliver', m: msg, inc: to.incarnation, snap });
  }

  private latency(): number {
    let t = 1 + Math.floor(-3 * Math.log(1 - this.rng.next()));
    if (this.slow > 0 && this.rng.chance(this.slow)) t += this.rng.int((SETTLE_TICKS - 5) * TICK);
    return t;
  }

  private reportSnapshot(from: Member, to: MemberId, ok: boolean): void {
    this.heap.push(this.now + this.latency(), { k: 'snapshot-report', from: from.id, inc: from.incarnation, to, ok });
  }

  private deliver(msg: Message, inc: number, snap?: Sm): void {
    const m = this.members.get(msg.to)!;
    const from = this.members.get(msg.from)!;
    if (!m.node || m.incarnation !== inc) {
      if (msg.type === 'snapshot') this.reportSnapshot(from, msg.to, false);
      return;
    }
    this.record(10 + MESSAGE_CODES[msg.type], msg.from, msg.to, msg.term, () => describe(msg));
    if (snap && msg.type === 'snapshot') m.received.set(`${msg.snapshot.index}/${msg.snapshot.term}`, snap);
    if (this.opts.bug === 'forge-votes' && msg.type === 'vote') {
      // The injected fault: the member grants every vote it is asked for, whatever it did before.
      this.send(m, { type: 'vote-resp', from: msg.to, to: msg.from, term: msg.term, reject: false });
    }
    const problem = m.node.step(msg);
    if (problem) throw new Violation(`member ${m.id} refused a message from the simulation: ${problem}`);
    if (msg.type === 'snapshot') this.reportSnapshot(from, msg.to, true);
    this.settle(m);
  }

  // ---- Faults and clients ----

  private running(): Member[] {
    return this.ids.map((id) => this.members.get(id)!).filter((m) => m.node);
  }

  /** The running leader with the highest term, if any. */
  private leader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.running()) {
      if (m.node!.role === 'leader' && (!best || m.node!.term > best.node!.term)) best = m;
    }
    return best;
  }

  private chaos(): void {
    const r = this.rng;
    const up = this.running();
    if (up.length === 0) return;
    if (r.chance(0.3)) {
      const m = r.pick(up);
      const data = Array.from({ length: 1 + r.int(3) }, () => encoder.encode(`p${++this.proposalSeq}`));
      this.record(20, m.id, data.length, 0, () => `propose at ${m.id}`);
      if (m.node!.propose(data)) this.stats.proposals += data.length;
      this.settle(m);
    }
    if (r.chance(0.1)) {
      const m = r.pick(up);
      const context = ++this.readSeq;
      this.record(21, m.id, context, 0, () => `read ${context} at ${m.id}`);
      if (m.node!.readIndex(context)) this.readFloors.set(context, { member: m.id, floor: this.maxApplied, answered: false });
      this.settle(m);
    }
    if (r.chance(this.snapshotRate)) {
      const m = r.pick(up);
      const node = m.node!;
      const meta = m.sm.index > (m.storage.snapshot?.meta.index ?? 0) ? node.snapshotMeta(m.sm.index) : undefined;
      if (meta) {
        this.record(22, m.id, meta.index, 0, () => `snapshot at ${m.id} up to ${meta.index}`);
        m.storage.snapshot = { meta, sm: { ...m.sm } };
        m.storage.entries = m.storage.entries.filter((e) => e.index > meta.index);
        node.snapshotTaken(meta);
        this.stats.snapshotsTaken++;
        this.settle(m);
      }
    }
    const leader = this.leader();
    if (leader && r.chance(this.configRate)) {
      const change = this.randomChange(leader.node!.membership());
      const refused = leader.node!.proposeConfigChange(change);
      this.record(23, leader.id, change.id, refused ? 0 : 1, () => `config ${change.op} ${change.id} at ${leader.id}: ${refused ?? 'proposed'}`);
      if (!refused) this.stats.configChanges++;
      this.settle(leader);
    }
    if (leader && r.chance(this.transferRate)) {
      const to = r.pick(this.ids);
      const refused = leader.node!.transferLeadership(to);
      this.record(24, leader.id, to, refused ? 0 : 1, () => `transfer ${leader.id} -> ${to}: ${refused ?? 'started'}`);
      if (!refused) this.stats.transfers++;
      this.settle(leader);
    }
    if (r.chance(this.crashRate)) {
      // Leaders are picked more often: their failures are the interesting ones.
      const m = leader && r.chance(0.5) ? leader : r.pick(up);
      this.crash(m);
      this.heap.push(this.now + (2 + r.int(60)) * TICK, { k: 'restart', id: m.id });
    }
    if (this.cut.size === 0 && r.chance(this.partitionRate)) this.partition(leader && r.chance(0.5) ? leader.id : r.pick(this.ids));
  }

  private randomChange(current: { voters: MemberId[]; learners: MemberId[] }): ConfigChange {
    const r = this.rng;
    const outside = this.ids.filter((id) => !current.voters.includes(id) && !current.learners.includes(id));
    const choices: ConfigChange['op'][] = ['remove'];
    if (outside.length) choices.push('add-learner', 'add-voter');
    if (current.learners.length) choices.push('add-voter');
    const op = r.pick(choices);
    let id: MemberId;
    if (op === 'remove') id = r.pick([...current.voters, ...current.learners]);
    else if (op === 'add-learner') id = r.pick(outside);
    else id = r.pick([...outside, ...current.learners]);
    return { op, id, context: address(id) };
  }

  private partition(victim: MemberId): void {
    const r = this.rng;
    const ids = this.ids;
    const kind = r.int(4);
    const cutLink = (a: MemberId, b: MemberId) => a !== b && this.cut.add(`${a}>${b}`);
    if (kind === 0) {
      for (const o of ids) (cutLink(victim, o), cutLink(o, victim));
    } else if (kind === 1) {
      const side = new Set(ids.filter(() => r.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) cutLink(a, b);
    } else if (kind === 2) {
      // One way: the victim hears everyone, nobody hears it.
      for (const o of ids) cutLink(victim, o);
    } else {
      // One way: everyone hears the victim, it hears nobody.
      for (const o of ids) cutLink(o, victim);
    }
    this.stats.partitions++;
    this.record(25, kind, victim, 0, () => `partition kind ${kind} around ${victim}: ${[...this.cut].join(' ')}`);
    this.heap.push(this.now + (5 + r.int(80)) * TICK, { k: 'heal-partition' });
  }

  // ---- Liveness ----

  private endFaults(): void {
    this.drop = 0;
    this.duplicate = 0;
    this.slow = 0;
    this.cut.clear();
    for (const m of this.members.values()) if (!m.node) this.start(m);
    this.phase = 'electing';
    this.phaseStart = this.now;
  }

  private checkLiveness(): void {
    const ticks = (this.now - this.phaseStart) / TICK;
    if (this.phase === 'electing') {
      // A leader of the highest term among the members of its configuration (a removed member
      // that never learnt of its removal may hold a higher term: leases keep it harmless).
      const leader = this.leader();
      const config = leader?.node!.membership();
      const inConfig = config ? this.running().filter((m) => config.voters.includes(m.id) || config.learners.includes(m.id)) : [];
      const maxTerm = Math.max(0, ...inConfig.map((m) => m.node!.term));
      const elected = leader !== undefined && leader.node!.term === maxTerm && config!.voters.includes(leader.id);
      if (elected && this.stats.ticksToLeader < 0) this.stats.ticksToLeader = ticks;
      // Proposals go to a leader every member has heard from lately (so none is about to campaign),
      // once messages delayed from before the healing (a late timeout-now) are delivered.
      const stable =
        elected && ticks >= SETTLE_TICKS && leader.node!.status().peers.every((p) => p.ticksSinceHeard < 2 * HEARTBEAT_TICKS);
      if (!stable) {
        if (ticks > LEADER_BOUND_TICKS) throw new Violation(`liveness: no stable leader ${LEADER_BOUND_TICKS} ticks after the network healed; ${this.describeMembers()}`);
        return;
      }
      if (!leader.node!.propose(Array.from({ length: LIVENESS_PROPOSALS }, (_, i) => encoder.encode(`live${i}`)))) {
        if (ticks > LEADER_BOUND_TICKS) throw new Violation(`liveness: leader ${leader.id} still refuses proposals ${ticks} ticks after healing`);
        return;
      }
      this.liveLeader = leader.id;
      this.liveTokens = Array.from({ length: LIVENESS_PROPOSALS }, (_, i) => `live${i}`);
      for (const t of this.liveTokens) this.liveAppliedBy.set(t, new Set());
      this.phase = 'committing';
      this.phaseStart = this.now;
      this.settle(leader);
      return;
    }
    const leader = this.members.get(this.liveLeader)!;
    const config = leader.node!.membership();
    const everyone = [...config.voters, ...config.learners];
    const done = this.liveTokens.every((t) => everyone.every((id) => this.liveAppliedBy.get(t)!.has(id)));
    if (done) {
      this.stats.ticksToCommit = ticks;
      this.checkContexts(everyone);
      this.phase = 'done';
      return;
    }
    if (ticks > COMMIT_BOUND_TICKS) {
      const missing = everyone.filter((id) => this.liveTokens.some((t) => !this.liveAppliedBy.get(t)!.has(id)));
      throw new Violation(
        `liveness: proposals made at leader ${this.liveLeader} after healing not applied on members ${missing.join(',')} within ${COMMIT_BOUND_TICKS} ticks; ${this.describeMembers()}`,
      );
    }
  }

  private describeMembers(): string {
    return this.running()
      .map((m) => {
        const s = m.node!.status();
        const peers = s.peers.map((p) => `${p.id}:${p.state}/${p.match}/${p.next}`).join(' ');
        return `[${s.id} ${s.role} t${s.term} lead ${s.leader} commit ${s.commit} last ${s.lastIndex} voters ${s.membership.voters} learners ${s.membership.learners}${peers ? ` peers ${peers}` : ''}]`;
      })
      .join(' ');
  }

  /** Every member of the final configuration knows every member's address. */
  private checkContexts(everyone: MemberId[]): void {
    for (const id of everyone) {
      const contexts = this.members.get(id)!.node!.contexts();
      const keys = Object.keys(contexts).map(Number).sort((a, b) => a - b);
      if (keys.join() !== [...everyone].sort((a, b) => a - b).join() || keys.some((k) => contexts[k] !== address(k))) {
        throw new Violation(`member ${id} has contexts ${JSON.stringify(contexts)} for members ${everyone.join(',')}`);
      }
    }
  }
}

function describe(m: Message): string {
  const head = `${m.type} ${m.from}>${m.to} t${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} prev ${m.index}/${m.logTerm} n ${m.entries.length} commit ${m.commit}`;
    case 'append-resp':
      return `${head} ${m.reject ? `reject ${m.index} hint ${m.hintIndex}/${m.hintTerm}` : `ok ${m.index}`}`;
    case 'heartbeat':
      return `${head} commit ${m.commit} ctx ${m.context}`;
    case 'pre-vote':
    case 'vote':
      return `${head} last ${m.index}/${m.logTerm}${m.transfer ? ' transfer' : ''}`;
    case 'pre-vote-resp':
    case 'vote-resp':
      return `${head} ${m.reject ? 'reject' : 'grant'}`;
    case 'snapshot':
      return `${head} at ${m.snapshot.index}/${m.snapshot.term}`;
    case 'read-index-resp':
      return `${head} index ${m.index} ctx ${m.context}`;
    default:
      return head;
  }
}
