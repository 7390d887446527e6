/**
 * One member of a SWIM cluster with Lifeguard's refinements, as a pure state
 * machine: start/receive/tick/leave/updateMeta take the time (monotonic ms) and
 * return the messages to send and the membership events; nextTimer() says when to
 * tick next. No timers, sockets or randomness of its own (randomness is injected).
 *
 * - Probing: members are probed in randomised round-robin order; an unanswered
 *   ping is retried through `indirectChecks` others (ping-req) and over TCP; a
 *   member still silent at the end of the probe period becomes suspect, and the
 *   next ping it gets carries the suspicion so it can refute at once.
 * - Suspicion with incarnations: a suspected member that is alive refutes by
 *   raising its incarnation; a suspicion not refuted in time becomes dead.
 *   Lifeguard: the timeout starts long and shrinks as independent members confirm
 *   the suspicion; a member that itself misses acks or nacks (local health) probes
 *   more slowly, so an overloaded member does not accuse healthy ones.
 * - Dissemination: news is piggybacked on pings and acks and gossiped to a few
 *   random members, each item retransmitted retransmitMult * ceil(log10(n + 1))
 *   times; a periodic push-pull of full state heals what gossip missed.
 * - Dead members are remembered for tombstoneMs so late alive news of them is ignored,
 *   unless it carries a higher incarnation (a restarted member rejoining).
 *
 * The view is kept in flat tables indexed by interned member ids (MemberIds), a
 * few bytes per member, so a process can simulate thousands of full views.
 */
import type { Member as ViewMember, MembershipEvent, MembershipEventType } from '../events.js';
import { BroadcastQueue } from './broadcasts.js';
import { MemberIds } from './member-ids.js';
import { gossipSize } from './size.js';
import type { Gossip, Message, MemberState, Output, Random, Send, SwimConfig, Transport } from './types.js';

const UNKNOWN = 0;
const ALIVE = 1;
const SUSPECT = 2;
const DEAD = 3;
const LEFT = 4;
const STATE_NAMES = [undefined, 'alive', 'suspect', 'dead', 'left'] as const;
const isLive = (s: number) => s === ALIVE || s === SUSPECT;
const isGone = (s: number) => s === DEAD || s === LEFT;

/** Incarnations are kept in 32 bits (seconds since the epoch fit until 2106); news beyond is ignored. */
const MAX_INCARNATION = 0xffff_ffff;
const validIncarnation = (x: number) => Number.isInteger(x) && x >= 0 && x <= MAX_INCARNATION;
/** Indirect probes relayed for others at once; ping-reqs beyond are not answered. */
const MAX_RELAYS = 256;

interface Suspicion {
  startedAt: number;
  min: number;
  max: number;
  expected: number;
  /** Who has accused the member: the first, then each independent confirmation. */
  confirmations: Set<string>;
  deadline: number;
  /** The seq of the last-chance probe once sent (probeBeforeDead); the deadline is then its timeout. */
  lastChance: number | undefined;
}

interface Probe {
  target: number;
  seq: number;
  directDeadline: number;
  endAt: number;
  indirect: boolean;
  acked: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  requester: string;
  seq: number;
  deadline: number;
}

const EMPTY = new Uint8Array(0);
/** The output of an input that produced nothing (most of them), shared. */
const NOTHING: Output = Object.freeze({ send: Object.freeze([]) as unknown as Send[], events: Object.freeze([]) as unknown as MembershipEvent[] });

export interface SelfInfo {
  id: string;
  address: string;
  meta?: Uint8Array;
  /**
   * Starting incarnation. A member that restarts should start above its last one
   * (the shell can use seconds since an epoch) so it rejoins at once instead of
   * having to refute its own death.
   */
  incarnation?: number;
}

export class SwimNode {
  private readonly ids: MemberIds;
  /** Only a node that owns its id table may hand forgotten indexes back. */
  private readonly ownsIds: boolean;
  private readonly self: number;
  private state = new Uint8Array(0);
  private inc = new Uint32Array(0);
  /** Addresses that differ from the id table's default, and non-empty metadata: few, so kept sparse. */
  private readonly addresses = new Map<number, string>();
  private readonly metas = new Map<number, Uint8Array>();
  /** Members alive or suspect, this one included. */
  private aliveCount = 1;
  // The probe round: a random walk over the index space that visits every index once (stride coprime to span).
  private roundSpan = 0;
  private roundStride = 1;
  private roundPos = 0;
  private roundLeft = 0;
  private seq = 0;
  private lhm = 0;
  private readonly broadcasts = new BroadcastQueue();
  private probe: Probe | undefined;
  private readonly relays = new Map<number, Relay>();
  /** The last ping to a member believed dead (reconnect), answered by a push-pull. */
  private reconnectPing: { seq: number; member: number } | undefined;
  private readonly suspicions = new Map<number, Suspicion>();
  /** Last-chance probes in flight: seq to member. */
  private readonly lastChances = new Map<number, number>();
  private nextProbeAt = Infinity;
  private nextGossipAt = Infinity;
  private nextPushPullAt = Infinity;
  private nextReconnectAt = Infinity;
  private nextJoinAt = Infinity;
  private seeds: string[] = [];
  /** When this node asked to be called next (nextTimer(), computed after every input); a call much later means it stalled. */
  private due = Infinity;
  private leaving = false;
  /** What the current input produced, made only when it produces something. */
  private out: Output | undefined;
  // Dead and left members in the order they went, for tombstone expiry; the incarnation tells one death from a later one.
  private readonly goneIndex: number[] = [];
  private readonly goneIncarnation: number[] = [];
  private readonly goneAt: number[] = [];
  private goneHead = 0;

  /** ids: an id table shared with other nodes of this process (the simulator's); by default the node has its own. */
  constructor(
    readonly config: SwimConfig,
    self: SelfInfo,
    private readonly random: Random,
    ids?: MemberIds,
  ) {
    if (!validIncarnation(self.incarnation ?? 0)) throw new Error(`incarnation must be an integer in 0..${MAX_INCARNATION}`);
    this.ids = ids ?? new MemberIds();
    this.ownsIds = ids === undefined;
    const i = this.ids.intern(self.id, self.address);
    if (i === undefined) throw new Error('the member id table is full');
    this.self = i;
    this.ensure(this.ids.span - 1);
    this.state[i] = ALIVE;
    this.inc[i] = self.incarnation ?? 0;
    this.setAddress(i, self.address);
    this.setMeta(i, self.meta);
  }

  get id(): string {
    return this.ids.name(this.self);
  }

  get incarnation(): number {
    return this.inc[this.self];
  }

  /** Lifeguard's local health multiplier (0 is healthy). */
  get localHealth(): number {
    return this.lhm;
  }

  /** Members alive or suspect, this one included. */
  get size(): number {
    return this.aliveCount;
  }

  // ---- inputs -----------------------------------------------------------------

  /** Joins through the seed addresses (push-pull over TCP) and starts probing. */
  start(now: number, seeds: string[] = []): Output {
    this.seeds = seeds.filter((s) => s !== this.addressOf(this.self));
    this.join(now);
    this.nextProbeAt = now + this.config.probeIntervalMs * this.random();
    if (this.config.pushPullIntervalMs > 0) this.nextPushPullAt = now + this.pushPullInterval() * (0.5 + this.random());
    if (this.config.reconnectIntervalMs > 0) this.nextReconnectAt = now + this.config.reconnectIntervalMs * (0.5 + this.random());
    return this.flush();
  }

  /**
   * Starts as a member of a settled cluster: every name in the id table is known alive at
   * incarnation 0 with its default address, without join events or broadcasts. This is the
   * simulator's starting point, where thousands of nodes share one id table.
   */
  startConverged(now: number): Output {
    for (let i = 0; i < this.state.length; i++) {
      if (this.state[i] === UNKNOWN && this.ids.name(i)) {
        this.state[i] = ALIVE;
        this.aliveCount++;
      }
    }
    return this.start(now);
  }

  /** A message from the member at address `from`, arrived over `transport` (a ping is answered the same way). */
  receive(now: number, from: string, msg: Message, transport: Transport = 'udp'): Output {
    this.catchUp(now);
    switch (msg.type) {
      case 'ping': {
        // An accusation older than this member's incarnation: the prober missed the refutation, so the ack repeats it.
        const stale = this.config.probeBeforeDead && msg.gossip.some((g) => g.id === this.id && g.kind !== 'alive' && g.incarnation < this.inc[this.self]);
        this.merge(now, msg.gossip);
        // A ping for a member that is no longer at this address is not answered.
        if (msg.target !== this.id) break;
        let gossip: Gossip[];
        if (stale) {
          const alive: Gossip = { ...this.aliveGossip(this.self), direct: true };
          gossip = [alive, ...this.piggyback(this.config.maxPiggybackBytes - gossipSize(alive))];
        } else gossip = this.piggyback(this.config.maxPiggybackBytes);
        this.send(from, { type: 'ack', seq: msg.seq, from: this.id, gossip }, transport);
        break;
      }
      case 'ack': {
        this.merge(now, msg.gossip);
        const p = this.probe;
        if (p && p.seq === msg.seq && !p.acked) {
          p.acked = true;
          this.adjustHealth(-1);
        }
        const suspect = this.lastChances.get(msg.seq);
        if (suspect !== undefined) this.cleared(suspect);
        const r = this.reconnectPing;
        if (r && r.seq === msg.seq) {
          this.reconnectPing = undefined;
          if (this.state[r.member] === DEAD) this.send(this.addressOf(r.member), { type: 'push-pull', from: this.id, join: false, reply: false, members: this.fullState() }, 'tcp');
        }
        const relay = this.relays.get(msg.seq);
        if (relay) {
          this.relays.delete(msg.seq);
          this.send(relay.requester, { type: 'ack', seq: relay.seq, from: this.id, gossip: this.piggyback(this.config.maxPiggybackBytes) }, 'udp');
        }
        break;
      }
      case 'nack':
        if (this.probe && this.probe.seq === msg.seq) this.probe.nacks++;
        break;
      case 'ping-req': {
        this.merge(now, msg.gossip);
        if (this.relays.size >= MAX_RELAYS) break;
        const seq = ++this.seq;
        this.relays.set(seq, { requester: from, seq: msg.seq, deadline: now + this.config.probeTimeoutMs });
        this.send(msg.targetAddress, { type: 'ping', seq, from: this.id, target: msg.target, gossip: this.piggyback(this.config.maxPiggybackBytes) }, 'udp');
        break;
      }
      case 'gossip':
        this.merge(now, msg.gossip);
        break;
      case 'push-pull':
        for (const m of msg.members) this.mergeState(now, m);
        if (!msg.reply) this.send(from, { type: 'push-pull', from: this.id, join: false, reply: true, members: this.fullState() }, 'tcp');
        break;
    }
    return this.flush();
  }

  tick(now: number): Output {
    this.catchUp(now);
    const cfg = this.config;
    const p = this.probe;
    if (p && !p.acked && !p.indirect && now >= p.directDeadline) this.probeIndirectly(p);
    if (p && now >= p.endAt) this.finishProbe(now, p);
    if (now >= this.nextProbeAt) {
      this.nextProbeAt = now + cfg.probeIntervalMs * (this.lhm + 1);
      this.startProbe(now);
    }
    for (const [seq, relay] of this.relays) {
      if (now >= relay.deadline) {
        this.relays.delete(seq);
        this.send(relay.requester, { type: 'nack', seq: relay.seq, from: this.id }, 'udp');
      }
    }
    for (const [i, s] of this.suspicions) {
      if (now < s.deadline) continue;
      if (cfg.probeBeforeDead && s.lastChance === undefined) {
        s.lastChance = this.probeSuspect(i);
        s.deadline = now + cfg.probeTimeoutMs * (this.lhm + 1);
      } else this.applyDead(now, { kind: 'dead', id: this.ids.name(i), incarnation: this.inc[i], from: this.id });
    }
    if (now >= this.nextGossipAt) this.gossip(now);
    if (now >= this.nextPushPullAt) {
      const peer = this.randomMembers(1)[0];
      if (peer !== undefined) this.send(this.addressOf(peer), { type: 'push-pull', from: this.id, join: false, reply: false, members: this.fullState() }, 'tcp');
      this.nextPushPullAt = now + this.pushPullInterval();
    }
    if (now >= this.nextReconnectAt) {
      this.reconnect();
      this.nextReconnectAt = now + cfg.reconnectIntervalMs;
    }
    if (this.alone() && now >= this.nextJoinAt) this.join(now);
    this.expireTombstones(now);
    return this.flush();
  }

  /** Leaves gracefully: tells the others, who report `left` rather than `failed`. */
  leave(now: number): Output {
    this.leaving = true;
    const g: Gossip = { kind: 'dead', id: this.id, incarnation: this.inc[this.self], from: this.id };
    this.broadcasts.put(this.self, g);
    for (const m of this.randomMembers(this.config.gossipNodes * 2)) this.send(this.addressOf(m), { type: 'gossip', from: this.id, gossip: [g] }, 'udp');
    this.nextProbeAt = Infinity;
    this.nextPushPullAt = Infinity;
    this.nextReconnectAt = Infinity;
    this.nextJoinAt = Infinity;
    this.scheduleGossip(now);
    return this.flush();
  }

  /** Publishes new metadata under a higher incarnation. */
  updateMeta(now: number, meta: Uint8Array): Output {
    if (this.inc[this.self] >= MAX_INCARNATION) throw new Error('incarnation exhausted');
    this.setMeta(this.self, meta);
    this.inc[this.self]++;
    this.broadcasts.put(this.self, this.aliveGossip(this.self));
    this.scheduleGossip(now);
    return this.flush();
  }

  /** When tick() should be called next. */
  nextTimer(): number {
    return this.due;
  }

  private computeNextTimer(): number {
    let t = Math.min(this.nextProbeAt, this.nextGossipAt, this.nextPushPullAt, this.nextReconnectAt);
    if (this.alone()) t = Math.min(t, this.nextJoinAt);
    const p = this.probe;
    if (p) t = Math.min(t, p.endAt, p.acked || p.indirect ? Infinity : p.directDeadline);
    for (const r of this.relays.values()) t = Math.min(t, r.deadline);
    for (const s of this.suspicions.values()) t = Math.min(t, s.deadline);
    if (this.goneHead < this.goneIndex.length) t = Math.min(t, this.goneAt[this.goneHead] + this.config.tombstoneMs);
    return t;
  }

  /** The current view: members alive or suspect, this one included. */
  liveMembers(): ViewMember[] {
    const out: ViewMember[] = [];
    for (let i = 0; i < this.state.length; i++) if (isLive(this.state[i])) out.push(this.view(i));
    return out;
  }

  /** State of one member as this node sees it (tombstones included). */
  memberState(id: string): MemberState | undefined {
    const i = this.ids.find(id);
    if (i === undefined || !this.state[i]) return undefined;
    return this.memberRecord(i);
  }

  /**
   * This node's view as state codes by id-table index (0 unknown, 1 alive, 2 suspect, 3 dead,
   * 4 left), for a caller that shares the id table, such as the simulator. Read only.
   */
  tableStates(): Readonly<Uint8Array> {
    return this.state;
  }

  /** Just the state of one member as this node sees it, without building a record. */
  stateOf(id: string): MemberState['state'] | undefined {
    const i = this.ids.find(id);
    return i === undefined ? undefined : STATE_NAMES[this.state[i]];
  }

  // ---- probing ----------------------------------------------------------------

  private startProbe(now: number): void {
    const target = this.nextTarget();
    if (target < 0) return;
    const scale = this.lhm + 1;
    const seq = ++this.seq;
    this.probe = {
      target,
      seq,
      directDeadline: now + this.config.probeTimeoutMs * scale,
      endAt: now + this.config.probeIntervalMs * scale,
      indirect: false,
      acked: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.send(this.addressOf(target), { type: 'ping', seq, from: this.id, target: this.ids.name(target), gossip: this.pingGossip(target) }, 'udp');
  }

  /** Lifeguard's buddy system: a suspected member hears of it from the next member to ping it. */
  private pingGossip(target: number): Gossip[] {
    if (this.state[target] !== SUSPECT) return this.piggyback(this.config.maxPiggybackBytes);
    const s: Gossip = { kind: 'suspect', id: this.ids.name(target), incarnation: this.inc[target], from: this.id, ...this.privately() };
    return [s, ...this.piggyback(this.config.maxPiggybackBytes - gossipSize(s))];
  }

  /** Suspicions kept between accuser and accused travel as direct news. */
  private privately(): { direct?: true } {
    return this.config.gossipSuspicions ? {} : { direct: true };
  }

  /**
   * The last-chance probe of a member whose suspicion timed out: direct, through
   * indirectChecks others and over TCP, carrying the accusation. Any ack clears the
   * suspicion; the member's own answer also carries its current incarnation. Returns its seq.
   */
  private probeSuspect(i: number): number {
    const name = this.ids.name(i);
    const address = this.addressOf(i);
    const seq = ++this.seq;
    this.lastChances.set(seq, i);
    const gossip = this.pingGossip(i);
    this.send(address, { type: 'ping', seq, from: this.id, target: name, gossip }, 'udp');
    for (const h of this.randomMembers(this.config.indirectChecks, i)) {
      this.send(this.addressOf(h), { type: 'ping-req', seq, from: this.id, target: name, targetAddress: address, gossip: [] }, 'udp');
    }
    if (this.config.tcpFallbackProbe) this.send(address, { type: 'ping', seq, from: this.id, target: name, gossip: gossip.slice(0, 1) }, 'tcp');
    return seq;
  }

  /** The member answered a last-chance probe: it is alive after all, whatever this node missed. */
  private cleared(m: number): void {
    if (this.state[m] !== SUSPECT) return;
    this.endSuspicion(m);
    this.state[m] = ALIVE;
    this.emit('alive', m);
  }

  private endSuspicion(m: number): void {
    const s = this.suspicions.get(m);
    if (!s) return;
    if (s.lastChance !== undefined) this.lastChances.delete(s.lastChance);
    this.suspicions.delete(m);
  }

  /** The next live member of the round; a new round (random start and stride) when one ends. -1 if there is none. */
  private nextTarget(): number {
    for (let tries = 0; tries < 2; tries++) {
      while (this.roundLeft > 0) {
        const i = this.roundPos;
        this.roundPos += this.roundStride;
        if (this.roundPos >= this.roundSpan) this.roundPos -= this.roundSpan;
        this.roundLeft--;
        if (i !== this.self && isLive(this.state[i])) return i;
      }
      const span = this.ids.span;
      this.roundSpan = span;
      this.roundLeft = span;
      this.roundPos = Math.floor(this.random() * span);
      this.roundStride = 1;
      if (span > 2) {
        do this.roundStride = 1 + Math.floor(this.random() * (span - 1));
        while (gcd(this.roundStride, span) !== 1);
      }
    }
    return -1;
  }

  private probeIndirectly(p: Probe): void {
    p.indirect = true;
    if (!isLive(this.state[p.target])) return;
    const name = this.ids.name(p.target);
    const address = this.addressOf(p.target);
    const helpers = this.randomMembers(this.config.indirectChecks, p.target);
    for (const h of helpers) {
      this.send(this.addressOf(h), { type: 'ping-req', seq: p.seq, from: this.id, target: name, targetAddress: address, gossip: this.piggyback(this.config.maxPiggybackBytes) }, 'udp');
    }
    p.expectedNacks = helpers.length;
    if (this.config.tcpFallbackProbe) this.send(address, { type: 'ping', seq: p.seq, from: this.id, target: name, gossip: [] }, 'tcp');
  }

  private finishProbe(now: number, p: Probe): void {
    this.probe = undefined;
    if (p.acked) return;
    // Lifeguard: missing nacks mean our own network or process is the slow one.
    this.adjustHealth(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1);
    // Suspect it, or, if it is suspect already, confirm the suspicion as an independent witness.
    const m = p.target;
    if (isLive(this.state[m])) this.applySuspect(now, { kind: 'suspect', id: this.ids.name(m), incarnation: this.inc[m], from: this.id });
  }

  private adjustHealth(delta: number): void {
    this.lhm = Math.max(0, Math.min(this.config.awarenessMaxMultiplier - 1, this.lhm + delta));
  }

  /**
   * Called first on every input: if this process was stalled past the time it asked to be
   * called, the refutations and acks it could not read meanwhile are still in its socket
   * buffer, so its own deadlines move back by the stall rather than expire unheard.
   */
  private catchUp(now: number): void {
    const stall = now - this.due;
    if (!(this.config.selfStallMs > 0 && stall > this.config.selfStallMs)) return;
    for (const s of this.suspicions.values()) {
      s.startedAt += stall;
      s.deadline += stall;
    }
    const p = this.probe;
    if (p) {
      p.directDeadline += stall;
      p.endAt += stall;
    }
    for (const r of this.relays.values()) r.deadline += stall;
    this.adjustHealth(1);
  }

  // ---- membership news ----------------------------------------------------------

  private merge(now: number, gossip: Gossip[]): void {
    for (const g of gossip) {
      if (!validIncarnation(g.incarnation)) continue;
      if (g.kind === 'alive') this.applyAlive(now, g);
      else if (g.kind === 'suspect') this.applySuspect(now, g);
      else this.applyDead(now, g);
    }
  }

  private mergeState(now: number, s: MemberState): void {
    if (!validIncarnation(s.incarnation)) return;
    // Most of a full state is old news: older than what this node knows, or the same alive record.
    const m = this.known(s.id);
    if (m >= 0 && (s.incarnation < this.inc[m] || (s.incarnation === this.inc[m] && s.state === 'alive'))) return;
    if (s.state === 'alive') this.applyAlive(now, { kind: 'alive', id: s.id, incarnation: s.incarnation, address: s.address, meta: s.meta });
    else if (s.state === 'suspect') {
      this.applyAlive(now, { kind: 'alive', id: s.id, incarnation: s.incarnation, address: s.address, meta: s.meta });
      // Full state is no independent confirmation: no `from`.
      this.applySuspect(now, { kind: 'suspect', id: s.id, incarnation: s.incarnation });
    } else {
      // Full state says dead: it is news only if we know the member.
      this.applyDead(now, { kind: 'dead', id: s.id, incarnation: s.incarnation, from: s.state === 'left' ? s.id : undefined });
    }
  }

  /** Raises this member's incarnation above an accusation; tells everyone unless the accusation was private. */
  private refute(now: number, incarnation: number, publicly: boolean): void {
    if (this.leaving) return;
    const next = Math.max(this.inc[this.self], incarnation) + 1;
    if (next > MAX_INCARNATION) return;
    this.inc[this.self] = next;
    this.adjustHealth(1);
    if (!publicly) return;
    this.broadcasts.put(this.self, this.aliveGossip(this.self));
    this.scheduleGossip(now);
  }

  /** Answers a private accusation: the accuser alone hears this member's current incarnation. */
  private answerAccuser(now: number, accuser: string): void {
    const a = this.known(accuser);
    if (a < 0 || !isLive(this.state[a])) {
      // An accuser this member cannot reach: everyone hears the answer instead.
      this.broadcasts.put(this.self, this.aliveGossip(this.self));
      this.scheduleGossip(now);
      return;
    }
    this.send(this.addressOf(a), { type: 'gossip', from: this.id, gossip: [{ ...this.aliveGossip(this.self), direct: true }] }, 'udp');
  }

  /** The member's index if this node knows it (alive, suspect or a tombstone), else -1. */
  private known(id: string): number {
    const i = this.ids.find(id);
    return i !== undefined && this.state[i] ? i : -1;
  }

  private applyAlive(now: number, g: Gossip): void {
    if (g.id === this.id) {
      if (g.incarnation > this.inc[this.self]) this.refute(now, g.incarnation, true);
      return;
    }
    const m = this.known(g.id);
    if (m < 0) {
      // A member never heard of (or forgotten): news without an address cannot be acted on.
      if (!g.address) return;
      const i = this.ids.intern(g.id, g.address);
      if (i === undefined) return;
      this.ensure(i);
      this.state[i] = ALIVE;
      this.inc[i] = g.incarnation;
      this.setAddress(i, g.address);
      this.setMeta(i, g.meta);
      this.aliveCount++;
      this.emit('join', i);
      this.spread(now, i, g);
      return;
    }
    if (g.incarnation <= this.inc[m]) return;
    const was = this.state[m];
    const metaChanged = g.meta !== undefined && !sameBytes(g.meta, this.metaOf(m));
    const moved = g.address !== undefined && g.address !== this.addressOf(m);
    this.inc[m] = g.incarnation;
    if (g.address) this.setAddress(m, g.address);
    if (g.meta) this.setMeta(m, g.meta);
    this.state[m] = ALIVE;
    this.endSuspicion(m);
    if (isGone(was)) {
      this.aliveCount++;
      this.emit('join', m);
    } else {
      if (was === SUSPECT) this.emit('alive', m);
      if (metaChanged) this.emit('updated', m);
    }
    // With private suspicions a bare incarnation bump of a member alive here answered someone
    // else's accusation (learned from full state, say): nobody else needs it.
    if (was === ALIVE && !metaChanged && !moved && !this.config.gossipSuspicions) return;
    this.spread(now, m, g);
  }

  /**
   * Queues news for everyone, unless it was meant for this member only. With private suspicions
   * a death is the only news of a crash the others get (none has a suspicion of its own to time
   * out), and the few that miss all its copies (about e^-limit of them) would wait for their own
   * probe round or a push-pull; so a death gets a second round, riding only pings and acks.
   */
  private spread(now: number, m: number, g: Gossip): void {
    if (g.direct) return;
    this.broadcasts.put(m, g, g.kind === 'dead' && !this.config.gossipSuspicions);
    this.scheduleGossip(now);
  }

  /** Passes on a suspicion: to everyone, or, kept private, from its accuser straight to the accused. */
  private spreadSuspicion(now: number, m: number, g: Gossip): void {
    if (this.config.gossipSuspicions) this.spread(now, m, g);
    else if (g.from === this.id) this.send(this.addressOf(m), { type: 'gossip', from: this.id, gossip: [{ ...g, direct: true }] }, 'udp');
  }

  private applySuspect(now: number, g: Gossip): void {
    if (g.id === this.id) {
      // News older than this member's incarnation was refuted already; a private accuser is answered either way.
      if (g.incarnation >= this.inc[this.self]) this.refute(now, g.incarnation, !g.direct);
      if (g.direct && g.from) this.answerAccuser(now, g.from);
      return;
    }
    const m = this.known(g.id);
    if (m < 0 || !isLive(this.state[m]) || g.incarnation < this.inc[m]) return;
    const s = this.suspicions.get(m);
    if (this.state[m] === SUSPECT && s) {
      if (g.incarnation > this.inc[m]) this.inc[m] = g.incarnation;
      // An independent confirmation shortens the timeout (Lifeguard); this member's own failed probe counts too.
      // Beyond the expected number they change nothing, so they are not passed on either.
      if (g.from && s.confirmations.size <= s.expected && !s.confirmations.has(g.from)) {
        s.confirmations.add(g.from);
        if (s.lastChance === undefined) s.deadline = s.startedAt + this.suspicionTimeout(s);
        this.spreadSuspicion(now, m, g);
      }
      return;
    }
    this.state[m] = SUSPECT;
    this.inc[m] = g.incarnation;
    const n = this.aliveCount;
    const min = Math.max(this.config.minSuspicionTimeoutMs, this.config.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * this.config.probeIntervalMs);
    const expected = Math.max(0, Math.min(this.config.suspicionConfirmations, n - 2));
    // The first accuser is no confirmation of itself: it opens the set, and confirmations are the others.
    const susp: Suspicion = { startedAt: now, min, max: this.config.suspicionMaxTimeoutMult * min, expected, confirmations: new Set([g.from ?? '']), deadline: 0, lastChance: undefined };
    susp.deadline = now + this.suspicionTimeout(susp);
    this.suspicions.set(m, susp);
    this.emit('suspect', m);
    this.spreadSuspicion(now, m, g);
  }

  /** Lifeguard: from max down to min as confirmations approach the expected number. */
  private suspicionTimeout(s: Suspicion): number {
    if (s.expected < 1) return s.min;
    const frac = Math.log(s.confirmations.size) / Math.log(s.expected + 1);
    return Math.max(s.min, s.max - (s.max - s.min) * Math.min(1, frac));
  }

  private applyDead(now: number, g: Gossip): void {
    if (g.id === this.id) {
      if (!this.leaving && g.incarnation >= this.inc[this.self]) this.refute(now, g.incarnation, true);
      return;
    }
    const m = this.known(g.id);
    if (m < 0 || !isLive(this.state[m]) || g.incarnation < this.inc[m]) return;
    this.inc[m] = g.incarnation;
    this.state[m] = g.from === g.id ? LEFT : DEAD;
    this.aliveCount--;
    this.goneIndex.push(m);
    this.goneIncarnation.push(g.incarnation);
    this.goneAt.push(now);
    this.endSuspicion(m);
    this.emit(this.state[m] === LEFT ? 'left' : 'failed', m);
    this.spread(now, m, g);
  }

  private expireTombstones(now: number): void {
    while (this.goneHead < this.goneIndex.length && now >= this.goneAt[this.goneHead] + this.config.tombstoneMs) {
      const i = this.goneIndex[this.goneHead];
      const incarnation = this.goneIncarnation[this.goneHead++];
      // Still the same death (a later one would carry a higher incarnation): forget the member.
      if (isGone(this.state[i]) && this.inc[i] === incarnation) {
        this.state[i] = UNKNOWN;
        this.addresses.delete(i);
        this.metas.delete(i);
        if (this.ownsIds) this.ids.release(i);
      }
    }
    if (this.goneHead > 1024 && this.goneHead * 2 > this.goneIndex.length) {
      this.goneIndex.splice(0, this.goneHead);
      this.goneIncarnation.splice(0, this.goneHead);
      this.goneAt.splice(0, this.goneHead);
      this.goneHead = 0;
    }
  }

  // ---- dissemination --------------------------------------------------------------

  private retransmitLimit(): number {
    return this.config.retransmitMult * Math.ceil(Math.log10(this.aliveCount + 1));
  }

  /** News waits for the gossip ticker, which runs at an arbitrary phase: on average half an interval. */
  private scheduleGossip(now: number): void {
    if (this.nextGossipAt === Infinity) this.nextGossipAt = now + this.config.gossipIntervalMs * this.random();
  }

  /** News for a message that goes anyway: second-round items too, in what room is left. */
  private piggyback(maxBytes: number): Gossip[] {
    return this.broadcasts.size === 0 ? [] : this.broadcasts.take(maxBytes, this.retransmitLimit(), true);
  }

  /** The gossip timer sends messages only for news in its first round. */
  private gossip(now: number): void {
    if (this.broadcasts.fresh === 0) {
      this.nextGossipAt = Infinity;
      return;
    }
    for (const m of this.randomMembers(this.config.gossipNodes)) {
      const gossip = this.broadcasts.take(this.config.maxPiggybackBytes, this.retransmitLimit());
      if (gossip.length === 0) break;
      this.send(this.addressOf(m), { type: 'gossip', from: this.id, gossip }, 'udp');
    }
    this.nextGossipAt = this.broadcasts.fresh > 0 ? now + this.config.gossipIntervalMs : Infinity;
  }

  private alone(): boolean {
    return this.aliveCount === 1 && this.seeds.length > 0 && this.config.joinRetryMs > 0 && !this.leaving;
  }

  private join(now: number): void {
    for (const seed of this.seeds) this.send(seed, { type: 'push-pull', from: this.id, join: true, reply: false, members: this.fullState() }, 'tcp');
    if (this.config.joinRetryMs > 0) this.nextJoinAt = now + this.config.joinRetryMs;
  }

  /**
   * Pings one random member believed dead (not one that left): if it answers, it is across a
   * healed partition, and a push-pull with it merges the two views.
   */
  private reconnect(): void {
    const candidates: number[] = [];
    for (let k = this.goneHead; k < this.goneIndex.length; k++) {
      const i = this.goneIndex[k];
      if (this.state[i] === DEAD && this.inc[i] === this.goneIncarnation[k]) candidates.push(i);
    }
    if (candidates.length === 0) return;
    const m = candidates[Math.floor(this.random() * candidates.length)];
    this.reconnectPing = { seq: ++this.seq, member: m };
    this.send(this.addressOf(m), { type: 'ping', seq: this.reconnectPing.seq, from: this.id, target: this.ids.name(m), gossip: [] }, 'udp');
  }

  /** memberlist's scaling: push-pull less often in clusters beyond 32 members. */
  private pushPullInterval(): number {
    const n = this.aliveCount;
    const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    return this.config.pushPullIntervalMs * scale;
  }

  private fullState(): MemberState[] {
    const out: MemberState[] = [];
    for (let i = 0; i < this.state.length; i++) {
      if (!this.state[i]) continue;
      const r = this.memberRecord(i);
      // A private suspicion is this member's own business.
      if (r.state === 'suspect' && !this.config.gossipSuspicions) r.state = 'alive';
      out.push(r);
    }
    return out;
  }

  /**
   * Up to n distinct random members, alive or suspect, other than this one; with `except`
   * (a probe target), alive ones other than it.
   */
  private randomMembers(n: number, except = -1): number[] {
    const out: number[] = [];
    const others = this.aliveCount - 1;
    const span = this.state.length;
    if (others > n * 4 && others * 4 >= span) {
      // Most of the table is live: sample indexes, rejecting the rest.
      for (let tries = 0; out.length < n && tries < n * 8; tries++) {
        const i = Math.floor(this.random() * span);
        if (this.fits(i, except, out)) out.push(i);
      }
      if (out.length === n) return out;
    }
    const pool: number[] = [];
    for (let i = 0; i < span; i++) if (this.fits(i, except, out)) pool.push(i);
    for (let k = 0; out.length < n && k < pool.length; k++) {
      const j = k + Math.floor(this.random() * (pool.length - k));
      [pool[k], pool[j]] = [pool[j], pool[k]];
      out.push(pool[k]);
    }
    return out;
  }

  private fits(i: number, except: number, picked: number[]): boolean {
    if (i === this.self || picked.includes(i)) return false;
    return except < 0 ? isLive(this.state[i]) : i !== except && this.state[i] === ALIVE;
  }

  // ---- the table ----------------------------------------------------------------

  /** Grows the tables to cover index i (doubling, so growth is amortised). */
  private ensure(i: number): void {
    if (i < this.state.length) return;
    const size = Math.max(i + 1, this.ids.span, this.state.length * 2);
    const state = new Uint8Array(size);
    state.set(this.state);
    const inc = new Uint32Array(size);
    inc.set(this.inc);
    this.state = state;
    this.inc = inc;
  }

  private addressOf(i: number): string {
    return this.addresses.get(i) ?? this.ids.defaultAddress(i);
  }

  private setAddress(i: number, address: string): void {
    if (address === this.ids.defaultAddress(i)) this.addresses.delete(i);
    else this.addresses.set(i, address);
  }

  private metaOf(i: number): Uint8Array {
    return this.metas.get(i) ?? EMPTY;
  }

  private setMeta(i: number, meta: Uint8Array | undefined): void {
    if (meta && meta.length > 0) this.metas.set(i, meta);
    else this.metas.delete(i);
  }

  private aliveGossip(i: number): Gossip {
    return { kind: 'alive', id: this.ids.name(i), incarnation: this.inc[i], address: this.addressOf(i), meta: this.metaOf(i) };
  }

  private memberRecord(i: number): MemberState {
    return { id: this.ids.name(i), address: this.addressOf(i), incarnation: this.inc[i], state: STATE_NAMES[this.state[i]]!, meta: this.metaOf(i) };
  }

  private view(i: number): ViewMember {
    const s = STATE_NAMES[this.state[i]]!;
    return { id: this.ids.name(i), address: this.addressOf(i), meta: this.metaOf(i), state: s === 'dead' ? 'failed' : s };
  }

  // ---- output -----------------------------------------------------------------

  private send(to: string, msg: Message, transport: Send['transport']): void {
    (this.out ??= { send: [], events: [] }).send.push({ to, msg, transport });
  }

  private emit(type: MembershipEventType, i: number): void {
    (this.out ??= { send: [], events: [] }).events.push({ type, member: this.view(i) });
  }

  private flush(): Output {
    const out = this.out ?? NOTHING;
    this.out = undefined;
    this.due = this.computeNextTimer();
    return out;
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type { MembershipEvent };
