/**
 * One member of a SWIM cluster with Lifeguard's refinements, as a pure state
 * machine: start/receive/tick/leave/updateMeta take the time (monotonic ms) and
 * return the messages to send and the membership events; nextTimer() says when to
 * tick next. No timers, sockets or randomness of its own (randomness is injected).
 *
 * - Probing: members are probed in randomised round-robin order; an unanswered
 *   ping is retried through `indirectChecks` others (ping-req) and over TCP; a
 *   member still silent at the end of the probe period becomes suspect.
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
 */
import type { Member as ViewMember, MembershipEvent, MembershipEventType } from '../events.js';
import type { Gossip, Message, MemberState, Output, Random, Send, SwimConfig } from './types.js';

interface Member {
  id: string;
  address: string;
  incarnation: number;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  meta: Uint8Array;
  /** When it became dead or left, for the tombstone. */
  goneAt: number;
}

interface Suspicion {
  startedAt: number;
  min: number;
  max: number;
  expected: number;
  /** Who has accused the member: the first, then each independent confirmation. */
  confirmations: Set<string>;
  deadline: number;
}

interface Probe {
  target: string;
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
  private readonly members = new Map<string, Member>();
  private readonly self: Member;
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private seq = 0;
  private lhm = 0;
  private readonly broadcasts = new Map<string, { gossip: Gossip; transmits: number }>();
  private probe: Probe | undefined;
  private readonly relays = new Map<number, Relay>();
  private readonly suspicions = new Map<string, Suspicion>();
  private nextProbeAt = Infinity;
  private nextGossipAt = Infinity;
  private nextPushPullAt = Infinity;
  private nextReconnectAt = Infinity;
  private leaving = false;
  private out: Output = { send: [], events: [] };
  private aliveCount = 1;
  /** Other members alive or suspect, for O(1) random picks. */
  private readonly live: Member[] = [];
  private readonly liveIndex = new Map<string, number>();
  /** Dead and left members in the order they went, for tombstone expiry. */
  private readonly gone: { id: string; at: number }[] = [];
  private goneHead = 0;

  constructor(
    readonly config: SwimConfig,
    self: SelfInfo,
    private readonly random: Random,
  ) {
    this.self = { id: self.id, address: self.address, incarnation: self.incarnation ?? 0, state: 'alive', meta: self.meta ?? EMPTY, goneAt: 0 };
    this.members.set(self.id, this.self);
  }

  get id(): string {
    return this.self.id;
  }

  get incarnation(): number {
    return this.self.incarnation;
  }

  /** Lifeguard's local health multiplier (0 is healthy). */
  get localHealth(): number {
    return this.lhm;
  }

  // ---- inputs -----------------------------------------------------------------

  /** Joins through the seed addresses (push-pull over TCP) and starts probing. */
  start(now: number, seeds: string[] = []): Output {
    for (const seed of seeds) {
      if (seed !== this.self.address) this.send(seed, { type: 'push-pull', from: this.self.id, join: true, reply: false, members: this.state() }, 'tcp');
    }
    this.nextProbeAt = now + this.config.probeIntervalMs * this.random();
    if (this.config.pushPullIntervalMs > 0) this.nextPushPullAt = now + this.pushPullInterval() * (0.5 + this.random());
    if (this.config.reconnectIntervalMs > 0) this.nextReconnectAt = now + this.config.reconnectIntervalMs * (0.5 + this.random());
    return this.flush();
  }

  receive(now: number, from: string, msg: Message): Output {
    switch (msg.type) {
      case 'ping':
        this.merge(now, msg.gossip);
        // A ping for a member that is no longer at this address is not answered.
        if (msg.target === this.self.id) this.send(from, { type: 'ack', seq: msg.seq, from: this.self.id, gossip: this.piggyback() }, 'udp');
        break;
      case 'ack': {
        this.merge(now, msg.gossip);
        const p = this.probe;
        if (p && p.seq === msg.seq && !p.acked) {
          p.acked = true;
          this.adjustHealth(-1);
        }
        const relay = this.relays.get(msg.seq);
        if (relay) {
          this.relays.delete(msg.seq);
          this.send(relay.requester, { type: 'ack', seq: relay.seq, from: this.self.id, gossip: this.piggyback() }, 'udp');
        }
        break;
      }
      case 'nack':
        if (this.probe && this.probe.seq === msg.seq) this.probe.nacks++;
        break;
      case 'ping-req': {
        this.merge(now, msg.gossip);
        const seq = ++this.seq;
        this.relays.set(seq, { requester: from, seq: msg.seq, deadline: now + this.config.probeTimeoutMs });
        this.send(msg.targetAddress, { type: 'ping', seq, from: this.self.id, target: msg.target, gossip: this.piggyback() }, 'udp');
        break;
      }
      case 'gossip':
        this.merge(now, msg.gossip);
        break;
      case 'push-pull':
        for (const m of msg.members) this.mergeState(now, m);
        if (!msg.reply) this.send(from, { type: 'push-pull', from: this.self.id, join: false, reply: true, members: this.state() }, 'tcp');
        break;
    }
    return this.flush();
  }

  tick(now: number): Output {
    const cfg = this.config;
    const scale = this.lhm + 1;
    const p = this.probe;
    if (p && !p.acked && !p.indirect && now >= p.directDeadline) this.probeIndirectly(p);
    if (p && now >= p.endAt) this.finishProbe(now, p);
    if (now >= this.nextProbeAt) {
      this.nextProbeAt = now + cfg.probeIntervalMs * scale;
      this.startProbe(now);
    }
    for (const [seq, relay] of this.relays) {
      if (now >= relay.deadline) {
        this.relays.delete(seq);
        this.send(relay.requester, { type: 'nack', seq: relay.seq, from: this.self.id }, 'udp');
      }
    }
    for (const [id, s] of this.suspicions) {
      if (now >= s.deadline) {
        const m = this.members.get(id)!;
        this.applyDead(now, { kind: 'dead', id, incarnation: m.incarnation, from: this.self.id });
      }
    }
    if (now >= this.nextGossipAt) this.gossip(now);
    if (now >= this.nextPushPullAt) {
      const peer = this.randomMembers(1, () => true)[0];
      if (peer) this.send(peer.address, { type: 'push-pull', from: this.self.id, join: false, reply: false, members: this.state() }, 'tcp');
      this.nextPushPullAt = now + this.pushPullInterval();
    }
    // Compared as nextTimer() computes it, so float rounding cannot leave a due timer unserved.
    if (now >= this.nextReconnectAt) {
      this.reconnect();
      this.nextReconnectAt = now + cfg.reconnectIntervalMs;
    }
    while (this.goneHead < this.gone.length && now >= this.gone[this.goneHead].at + cfg.tombstoneMs) {
      const { id, at } = this.gone[this.goneHead++];
      const m = this.members.get(id);
      if (m && (m.state === 'dead' || m.state === 'left') && m.goneAt === at) this.members.delete(id);
    }
    if (this.goneHead > 1024 && this.goneHead * 2 > this.gone.length) {
      this.gone.splice(0, this.goneHead);
      this.goneHead = 0;
    }
    return this.flush();
  }

  /** Leaves gracefully: tells the others, who report `left` rather than `failed`. */
  leave(now: number): Output {
    this.leaving = true;
    const g: Gossip = { kind: 'dead', id: this.self.id, incarnation: this.self.incarnation, from: this.self.id };
    this.queue(g);
    for (const m of this.randomMembers(this.config.gossipNodes * 2, () => true)) this.send(m.address, { type: 'gossip', from: this.self.id, gossip: [g] }, 'udp');
    this.nextProbeAt = Infinity;
    this.nextPushPullAt = Infinity;
    this.nextReconnectAt = Infinity;
    this.scheduleGossip(now);
    return this.flush();
  }

  /** Publishes new metadata under a higher incarnation. */
  updateMeta(now: number, meta: Uint8Array): Output {
    this.self.meta = meta;
    this.self.incarnation++;
    this.queue(this.aliveGossip(this.self));
    this.scheduleGossip(now);
    return this.flush();
  }

  /** When tick() should be called next. */
  nextTimer(): number {
    let t = Math.min(this.nextProbeAt, this.nextGossipAt, this.nextPushPullAt, this.nextReconnectAt);
    const p = this.probe;
    if (p) t = Math.min(t, p.endAt, p.acked || p.indirect ? Infinity : p.directDeadline);
    for (const r of this.relays.values()) t = Math.min(t, r.deadline);
    for (const s of this.suspicions.values()) t = Math.min(t, s.deadline);
    if (this.goneHead < this.gone.length) t = Math.min(t, this.gone[this.goneHead].at + this.config.tombstoneMs);
    return t;
  }

  /** The current view: members alive or suspect, this one included. */
  liveMembers(): ViewMember[] {
    const out: ViewMember[] = [];
    for (const m of this.members.values()) if (m.state === 'alive' || m.state === 'suspect') out.push(view(m));
    return out;
  }

  /** State of one member as this node sees it (tombstones included). */
  memberState(id: string): MemberState | undefined {
    const m = this.members.get(id);
    return m && { id: m.id, address: m.address, incarnation: m.incarnation, state: m.state, meta: m.meta };
  }

  get size(): number {
    return this.aliveCount;
  }

  // ---- probing ----------------------------------------------------------------

  private startProbe(now: number): void {
    const target = this.nextTarget();
    if (!target) return;
    const scale = this.lhm + 1;
    const seq = ++this.seq;
    this.probe = {
      target: target.id,
      seq,
      directDeadline: now + this.config.probeTimeoutMs * scale,
      endAt: now + this.config.probeIntervalMs * scale,
      indirect: false,
      acked: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.send(target.address, { type: 'ping', seq, from: this.self.id, target: target.id, gossip: this.piggyback() }, 'udp');
  }

  private nextTarget(): Member | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeOrder.length) {
        const m = this.members.get(this.probeOrder[this.probeIndex++]);
        if (m && m !== this.self && (m.state === 'alive' || m.state === 'suspect')) return m;
      }
      // A round is over: a new random order of everyone known now.
      this.probeOrder = [...this.members.keys()];
      for (let i = this.probeOrder.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [this.probeOrder[i], this.probeOrder[j]] = [this.probeOrder[j], this.probeOrder[i]];
      }
      this.probeIndex = 0;
    }
    return undefined;
  }

  private probeIndirectly(p: Probe): void {
    p.indirect = true;
    const target = this.members.get(p.target);
    if (!target) return;
    const helpers = this.randomMembers(this.config.indirectChecks, (m) => m.id !== p.target && m.state === 'alive');
    for (const h of helpers) {
      this.send(h.address, { type: 'ping-req', seq: p.seq, from: this.self.id, target: target.id, targetAddress: target.address, gossip: this.piggyback() }, 'udp');
    }
    p.expectedNacks = helpers.length;
    if (this.config.tcpFallbackProbe) this.send(target.address, { type: 'ping', seq: p.seq, from: this.self.id, target: target.id, gossip: [] }, 'tcp');
  }

  private finishProbe(now: number, p: Probe): void {
    this.probe = undefined;
    if (p.acked) return;
    // Lifeguard: missing nacks mean our own network or process is the slow one.
    this.adjustHealth(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1);
    // Suspect it, or, if it is suspect already, confirm the suspicion as an independent witness.
    const m = this.members.get(p.target);
    if (m && (m.state === 'alive' || m.state === 'suspect')) this.applySuspect(now, { kind: 'suspect', id: m.id, incarnation: m.incarnation, from: this.self.id });
  }

  private adjustHealth(delta: number): void {
    this.lhm = Math.max(0, Math.min(this.config.awarenessMaxMultiplier - 1, this.lhm + delta));
  }

  // ---- membership news ----------------------------------------------------------

  private merge(now: number, gossip: Gossip[]): void {
    for (const g of gossip) {
      if (g.kind === 'alive') this.applyAlive(now, g);
      else if (g.kind === 'suspect') this.applySuspect(now, g);
      else this.applyDead(now, g);
    }
  }

  private mergeState(now: number, s: MemberState): void {
    if (s.state === 'alive') this.applyAlive(now, { kind: 'alive', id: s.id, incarnation: s.incarnation, address: s.address, meta: s.meta });
    else if (s.state === 'suspect') {
      this.applyAlive(now, { kind: 'alive', id: s.id, incarnation: s.incarnation, address: s.address, meta: s.meta });
      // Full state is no independent confirmation: no `from`.
      this.applySuspect(now, { kind: 'suspect', id: s.id, incarnation: s.incarnation });
    } else {
      // Full state says dead: it is news only if we know the member.
      if (this.members.has(s.id)) this.applyDead(now, { kind: 'dead', id: s.id, incarnation: s.incarnation, from: s.state === 'left' ? s.id : undefined });
    }
  }

  private refute(now: number, incarnation: number): void {
    if (this.leaving) return;
    this.self.incarnation = Math.max(this.self.incarnation, incarnation) + 1;
    this.adjustHealth(1);
    this.queue(this.aliveGossip(this.self));
    this.scheduleGossip(now);
  }

  private applyAlive(now: number, g: Gossip): void {
    if (g.id === this.self.id) {
      if (g.incarnation > this.self.incarnation) this.refute(now, g.incarnation);
      return;
    }
    const m = this.members.get(g.id);
    if (!m) {
      const fresh: Member = { id: g.id, address: g.address ?? '', incarnation: g.incarnation, state: 'alive', meta: g.meta ?? EMPTY, goneAt: 0 };
      this.members.set(g.id, fresh);
      this.aliveCount++;
      this.addLive(fresh);
      // Join the probe round at a random place.
      this.probeOrder.splice(this.probeIndex + Math.floor(this.random() * (this.probeOrder.length - this.probeIndex + 1)), 0, g.id);
      this.emit('join', fresh);
      this.queue(g);
      this.scheduleGossip(now);
      return;
    }
    if (g.incarnation <= m.incarnation) return;
    const wasGone = m.state === 'dead' || m.state === 'left';
    const wasSuspect = m.state === 'suspect';
    const metaChanged = g.meta !== undefined && !sameBytes(g.meta, m.meta);
    m.incarnation = g.incarnation;
    if (g.address) m.address = g.address;
    if (g.meta) m.meta = g.meta;
    m.state = 'alive';
    this.suspicions.delete(m.id);
    if (wasGone) {
      this.aliveCount++;
      this.addLive(m);
      this.emit('join', m);
    } else if (wasSuspect) this.emit('alive', m);
    if (metaChanged && !wasGone) this.emit('updated', m);
    this.queue(g);
    this.scheduleGossip(now);
  }

  private applySuspect(now: number, g: Gossip): void {
    if (g.id === this.self.id) {
      this.refute(now, g.incarnation);
      return;
    }
    const m = this.members.get(g.id);
    if (!m || m.state === 'dead' || m.state === 'left' || g.incarnation < m.incarnation) return;
    const s = this.suspicions.get(m.id);
    if (m.state === 'suspect' && s) {
      if (g.incarnation > m.incarnation) m.incarnation = g.incarnation;
      // An independent confirmation shortens the timeout (Lifeguard); this member's own failed probe counts too.
      if (g.from && !s.confirmations.has(g.from)) {
        s.confirmations.add(g.from);
        s.deadline = s.startedAt + this.suspicionTimeout(s);
        this.queue(g);
        this.scheduleGossip(now);
      }
      return;
    }
    m.state = 'suspect';
    m.incarnation = g.incarnation;
    const n = this.aliveCount;
    const interval = this.config.probeIntervalMs;
    const min = Math.max(this.config.minSuspicionTimeoutMs, this.config.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * interval);
    const expected = Math.max(0, Math.min(this.config.suspicionConfirmations, n - 2));
    // The first accuser is no confirmation of itself: it opens the set, and confirmations are the others.
    const susp: Suspicion = { startedAt: now, min, max: this.config.suspicionMaxTimeoutMult * min, expected, confirmations: new Set([g.from ?? '']), deadline: 0 };
    susp.deadline = now + this.suspicionTimeout(susp);
    this.suspicions.set(m.id, susp);
    this.emit('suspect', m);
    this.queue(g);
    this.scheduleGossip(now);
  }

  /** Lifeguard: from max down to min as confirmations approach the expected number. */
  private suspicionTimeout(s: Suspicion): number {
    if (s.expected < 1) return s.min;
    const frac = Math.log(s.confirmations.size) / Math.log(s.expected + 1);
    return Math.max(s.min, s.max - (s.max - s.min) * Math.min(1, frac));
  }

  private applyDead(now: number, g: Gossip): void {
    if (g.id === this.self.id) {
      if (!this.leaving) this.refute(now, g.incarnation);
      return;
    }
    const m = this.members.get(g.id);
    if (!m || m.state === 'dead' || m.state === 'left' || g.incarnation < m.incarnation) return;
    m.incarnation = g.incarnation;
    m.state = g.from === g.id ? 'left' : 'dead';
    m.goneAt = now;
    this.aliveCount--;
    this.removeLive(m);
    this.gone.push({ id: m.id, at: now });
    this.suspicions.delete(m.id);
    this.emit(m.state === 'left' ? 'left' : 'failed', m);
    this.queue(g);
    this.scheduleGossip(now);
  }

  // ---- dissemination --------------------------------------------------------------

  private retransmitLimit(): number {
    return this.config.retransmitMult * Math.ceil(Math.log10(this.aliveCount + 1));
  }

  private queue(g: Gossip): void {
    // Newer news of a member replaces older, not yet sent out as often.
    this.broadcasts.set(g.id, { gossip: g, transmits: 0 });
  }

  private scheduleGossip(now: number): void {
    if (this.nextGossipAt === Infinity) this.nextGossipAt = now + this.config.gossipIntervalMs;
  }

  /** The least-sent broadcasts, up to maxPiggyback, each counted as sent once more. */
  private piggyback(): Gossip[] {
    if (this.broadcasts.size === 0) return [];
    const limit = this.retransmitLimit();
    const items = [...this.broadcasts.values()].sort((a, b) => a.transmits - b.transmits).slice(0, this.config.maxPiggyback);
    for (const b of items) {
      if (++b.transmits >= limit) this.broadcasts.delete(b.gossip.id);
    }
    return items.map((b) => b.gossip);
  }

  private gossip(now: number): void {
    if (this.broadcasts.size === 0) {
      this.nextGossipAt = Infinity;
      return;
    }
    for (const m of this.randomMembers(this.config.gossipNodes, (x) => x.state === 'alive' || x.state === 'suspect')) {
      const gossip = this.piggyback();
      if (gossip.length === 0) break;
      this.send(m.address, { type: 'gossip', from: this.self.id, gossip }, 'udp');
    }
    this.nextGossipAt = this.broadcasts.size > 0 ? now + this.config.gossipIntervalMs : Infinity;
  }

  /** Push-pull with one random member believed dead (not one that left): it may be across a healed partition. */
  private reconnect(): void {
    const candidates: Member[] = [];
    for (let k = this.goneHead; k < this.gone.length; k++) {
      const m = this.members.get(this.gone[k].id);
      if (m && m.state === 'dead' && m.goneAt === this.gone[k].at) candidates.push(m);
    }
    if (candidates.length === 0) return;
    const m = candidates[Math.floor(this.random() * candidates.length)];
    this.send(m.address, { type: 'push-pull', from: this.self.id, join: false, reply: false, members: this.state() }, 'tcp');
  }

  /** memberlist's scaling: push-pull less often in clusters beyond 32 members. */
  private pushPullInterval(): number {
    const n = this.aliveCount;
    const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    return this.config.pushPullIntervalMs * scale;
  }

  private state(): MemberState[] {
    return [...this.members.values()].map((m) => ({ id: m.id, address: m.address, incarnation: m.incarnation, state: m.state, meta: m.meta }));
  }

  private aliveGossip(m: Member): Gossip {
    return { kind: 'alive', id: m.id, incarnation: m.incarnation, address: m.address, meta: m.meta };
  }

  private addLive(m: Member): void {
    this.liveIndex.set(m.id, this.live.length);
    this.live.push(m);
  }

  private removeLive(m: Member): void {
    const i = this.liveIndex.get(m.id);
    if (i === undefined) return;
    const last = this.live.pop()!;
    if (last !== m) {
      this.live[i] = last;
      this.liveIndex.set(last.id, i);
    }
    this.liveIndex.delete(m.id);
  }

  /** Up to n distinct random members (alive or suspect, not this one) that pass the filter. */
  private randomMembers(n: number, filter: (m: Member) => boolean): Member[] {
    const live = this.live;
    const out: Member[] = [];
    if (live.length <= n * 4) {
      // Small clusters: shuffle a filtered copy.
      const pool = live.filter(filter);
      for (let i = 0; i < Math.min(n, pool.length); i++) {
        const j = i + Math.floor(this.random() * (pool.length - i));
        [pool[i], pool[j]] = [pool[j], pool[i]];
        out.push(pool[i]);
      }
      return out;
    }
    // Large clusters: sample with rejection; a few extra tries cover filtered-out picks.
    const seen = new Set<Member>();
    for (let tries = 0; out.length < n && tries < n * 8; tries++) {
      const m = live[Math.floor(this.random() * live.length)];
      if (seen.has(m)) continue;
      seen.add(m);
      if (filter(m)) out.push(m);
    }
    return out;
  }

  // ---- output -----------------------------------------------------------------

  private send(to: string, msg: Message, transport: Send['transport']): void {
    this.out.send.push({ to, msg, transport });
  }

  private emit(type: MembershipEventType, m: Member): void {
    this.out.events.push({ type, member: view(m) });
  }

  private flush(): Output {
    const out = this.out;
    this.out = { send: [], events: [] };
    return out;
  }
}

function view(m: Member): ViewMember {
  return { id: m.id, address: m.address, meta: m.meta, state: m.state === 'dead' ? 'failed' : m.state };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type { MembershipEvent };
