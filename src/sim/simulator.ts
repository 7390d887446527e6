/**
 * A deterministic cluster simulator: the real SWIM core on a simulated clock and
 * network (latency, loss, partitions, paused members, crashes and fast restarts).
 * Everything random comes from one seed, so a run replays exactly.
 */
import type { MembershipEvent } from '../membership/events.js';
import { SwimNode } from '../membership/core/swim-node.js';
import type { Message, MemberState, SwimConfig } from '../membership/core/types.js';
import { EventHeap } from './heap.js';

export interface Scenario {
  name: string;
  description: string;
  durationMs: number;
  /** Probability that a message is lost. */
  loss: number;
  /** One-way latency: base plus an exponential tail with this mean. */
  latencyBaseMs: number;
  latencyTailMs: number;
  /** Fraction of members that crash, at uniformly random times in [crashFrom, crashTo] of the run. */
  crashFraction: number;
  crashFrom: number;
  crashTo: number;
  /** Crashed members come back this long after crashing (a fast restart), if set. */
  restartAfterMs?: number;
  /** Fraction of members that pause (as in a long GC) for pauseMs, about pausesPerMinute times a minute each. */
  pauseFraction: number;
  pauseMs: number;
  pausesPerMinute: number;
  /** Cut the cluster in two (this fraction on one side) for a while. */
  partition?: { fraction: number; fromMs: number; toMs: number };
  /** Members that publish new metadata once, to time dissemination. */
  metadataUpdates: number;
  /** Time before faults start, for the cluster to settle. */
  warmupMs: number;
}

/** What every scenario shares unless it says otherwise: a quiet LAN. */
const BASE: Omit<Scenario, 'name' | 'description'> = {
  durationMs: 120_000,
  loss: 0,
  latencyBaseMs: 0.2,
  latencyTailMs: 0.5,
  crashFraction: 0,
  crashFrom: 0.2,
  crashTo: 0.5,
  pauseFraction: 0,
  pauseMs: 0,
  pausesPerMinute: 0,
  metadataUpdates: 0,
  warmupMs: 10_000,
};

export const SCENARIOS: Record<string, Omit<Scenario, 'name'>> = {
  /** The comparison scenario of the project's goal. */
  lan: {
    ...BASE,
    description: '1% loss; 5% of members pause 2 s about twice a minute; 1% crash',
    durationMs: 180_000,
    loss: 0.01,
    crashFraction: 0.01,
    crashTo: 0.6,
    pauseFraction: 0.05,
    pauseMs: 2000,
    pausesPerMinute: 2,
    metadataUpdates: 3,
  },
  crash: { ...BASE, description: 'no loss, no pauses; 5% crash', crashFraction: 0.05, metadataUpdates: 3 },
  quiet: { ...BASE, description: '1% loss, no faults: any failure declaration is false', loss: 0.01, metadataUpdates: 3 },
  restart: {
    ...BASE,
    description: '5% crash and restart 2 s later with a higher incarnation',
    loss: 0.01,
    crashFraction: 0.05,
    restartAfterMs: 2000,
  },
  partition: { ...BASE, description: 'a 30/70 partition for 20 s, then healed', partition: { fraction: 0.3, fromMs: 30_000, toMs: 50_000 } },
};

/** xorshift-based PRNG seeded per run (and derived per member). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

type SimEvent =
  | { kind: 'deliver'; to: number; from: string; msg: Message }
  | { kind: 'timer'; node: number; at: number }
  | { kind: 'crash'; node: number }
  | { kind: 'restart'; node: number }
  | { kind: 'pause'; node: number; until: number }
  | { kind: 'resume'; node: number }
  | { kind: 'update'; node: number };

export interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface SimReport {
  scenario: string;
  config: string;
  members: number;
  seed: number;
  simulatedSeconds: number;
  wallSeconds: number;
  crashed: number;
  /** From a crash to the first suspicion, the first failure declaration, and every live member agreeing. */
  firstSuspicionMs: Percentiles;
  firstFailedMs: Percentiles;
  allAgreeMs: Percentiles;
  /** Crashed members (still down at the end) not yet declared failed by every live member. */
  undetected: number;
  /** `failed` events, at any member, about members that had not crashed, per member-hour. */
  falseFailuresPerMemberHour: number;
  falseFailures: number;
  messagesPerMemberSecond: number;
  bytesPerMemberSecond: number;
  /** From a metadata update to every live member having it. */
  updateSpreadMs: Percentiles;
  /** At the end: (observer, subject) pairs of running members where the observer does not count the subject alive. */
  finalViewGaps: number;
}

function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN);
  return { count: s.length, p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1] : NaN };
}

/** Approximate encoded size: a small header plus each gossip item or member state. */
export function messageBytes(msg: Message): number {
  const item = (id: string, meta?: Uint8Array) => 16 + id.length + (meta?.length ?? 0);
  switch (msg.type) {
    case 'ping':
    case 'ack':
    case 'gossip':
    case 'ping-req': {
      let n = 24 + msg.from.length + ('target' in msg ? msg.target.length : 0);
      for (const g of msg.gossip) n += item(g.id, g.meta) + (g.address?.length ?? 0);
      return n;
    }
    case 'nack':
      return 16;
    case 'push-pull': {
      let n = 24;
      for (const m of msg.members) n += item(m.id, m.meta) + m.address.length;
      return n;
    }
  }
}

export function simulate(members: number, scenario: Scenario, config: SwimConfig, configName: string, seed: number): SimReport {
  const wallStart = performance.now();
  const random = rng(seed);
  const ids = Array.from({ length: members }, (_, i) => `m${i}`);
  const index = new Map(ids.map((id, i) => [id, i]));
  const nodes: (SwimNode | undefined)[] = new Array(members);
  const scheduled = new Float64Array(members).fill(Infinity);
  const crashedAt = new Float64Array(members).fill(NaN);
  const pausedUntil = new Float64Array(members);
  const pending: { from: string; msg: Message }[][] = Array.from({ length: members }, () => []);
  const side = new Uint8Array(members);
  const heap = new EventHeap<SimEvent>();
  let now = 0;
  let messages = 0;
  let bytes = 0;
  let liveCount = members;
  const firstSuspect = new Map<number, number>();
  const firstFailed = new Map<number, number>();
  const failedBy = new Map<number, Set<number>>();
  const allAgree = new Map<number, number>();
  let falseFailures = 0;
  const updates: { node: number; at: number; meta: Uint8Array; have: Set<number>; spreadMs?: number }[] = [];
  let restarts = 0;

  const schedule = (i: number) => {
    const node = nodes[i];
    if (!node) return;
    const t = Math.max(node.nextTimer(), pausedUntil[i], now);
    if (t !== scheduled[i] && Number.isFinite(t)) {
      scheduled[i] = t;
      heap.push(t, { kind: 'timer', node: i, at: t });
    }
  };

  const onEvents = (observer: number, events: MembershipEvent[]) => {
    for (const ev of events) {
      const subject = index.get(ev.member.id)!;
      const crashed = !Number.isNaN(crashedAt[subject]);
      if (ev.type === 'suspect' && crashed && !firstSuspect.has(subject)) firstSuspect.set(subject, now - crashedAt[subject]);
      if (ev.type === 'failed') {
        if (!crashed) {
          falseFailures++;
          continue;
        }
        if (!firstFailed.has(subject)) firstFailed.set(subject, now - crashedAt[subject]);
        let by = failedBy.get(subject);
        if (!by) failedBy.set(subject, (by = new Set()));
        by.add(observer);
        if (!allAgree.has(subject) && by.size >= liveCount) allAgree.set(subject, now - crashedAt[subject]);
      }
      if (ev.type === 'updated') {
        for (const u of updates) {
          if (u.node !== subject || u.spreadMs !== undefined || !sameMeta(ev.member.meta, u.meta)) continue;
          u.have.add(observer);
          if (u.have.size >= liveCount) u.spreadMs = now - u.at;
        }
      }
    }
  };

  const process = (i: number, out: ReturnType<SwimNode['tick']>) => {
    for (const s of out.send) {
      const to = index.get(s.to);
      if (to === undefined) continue;
      messages++;
      bytes += messageBytes(s.msg);
      // Partitions cut both transports; only UDP loses messages.
      if (side[i] !== side[to]) continue;
      if (s.transport === 'udp' && random() < scenario.loss) continue;
      const latency = scenario.latencyBaseMs - scenario.latencyTailMs * Math.log(1 - random());
      heap.push(now + latency, { kind: 'deliver', to, from: ids[i], msg: s.msg });
    }
    onEvents(i, out.events);
    schedule(i);
  };

  const makeNode = (i: number, incarnation: number) =>
    new SwimNode(config, { id: ids[i], address: ids[i], incarnation }, rng((seed * 7919 + i * 104729 + incarnation * 31) >>> 0));

  // Every member starts knowing all others (a converged cluster), without join events.
  const everyone: MemberState[] = ids.map((id) => ({ id, address: id, incarnation: 0, state: 'alive', meta: new Uint8Array(0) }));
  for (let i = 0; i < members; i++) {
    const node = makeNode(i, 0);
    nodes[i] = node;
    node.receive(0, ids[i], { type: 'push-pull', from: ids[i], join: false, reply: true, members: everyone });
    node.start(0, []);
    schedule(i);
  }

  // Faults, all drawn from the seed.
  const order = ids.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const crashCount = Math.round(members * scenario.crashFraction);
  const span = scenario.durationMs - scenario.warmupMs;
  for (let k = 0; k < crashCount; k++) {
    const at = scenario.warmupMs + span * (scenario.crashFrom + (scenario.crashTo - scenario.crashFrom) * random());
    heap.push(at, { kind: 'crash', node: order[k] });
    if (scenario.restartAfterMs !== undefined) heap.push(at + scenario.restartAfterMs, { kind: 'restart', node: order[k] });
  }
  const pausers = order.slice(crashCount, crashCount + Math.round(members * scenario.pauseFraction));
  if (scenario.pausesPerMinute > 0) {
    const gap = 60_000 / scenario.pausesPerMinute;
    for (const p of pausers) {
      for (let t = scenario.warmupMs + gap * random(); t < scenario.durationMs; t += gap * (0.5 + random())) {
        heap.push(t, { kind: 'pause', node: p, until: t + scenario.pauseMs });
      }
    }
  }
  const cut = scenario.partition ? order.slice(members - Math.round(members * scenario.partition.fraction)) : [];
  const updaters = order.slice(crashCount + pausers.length, crashCount + pausers.length + scenario.metadataUpdates);
  updaters.forEach((u, k) => heap.push(scenario.warmupMs + (span * (k + 1)) / (updaters.length + 2), { kind: 'update', node: u }));

  let partitioned = false;
  while (heap.size > 0 && heap.peekTime() <= scenario.durationMs) {
    const { time, item } = heap.pop()!;
    now = time;
    if (scenario.partition) {
      const inPartition = now >= scenario.partition.fromMs && now < scenario.partition.toMs;
      if (inPartition !== partitioned) {
        partitioned = inPartition;
        for (const k of cut) side[k] = inPartition ? 1 : 0;
      }
    }
    switch (item.kind) {
      case 'timer': {
        const i = item.node;
        if (scheduled[i] !== item.at) break;
        scheduled[i] = Infinity;
        const node = nodes[i];
        if (!node) break;
        if (now < pausedUntil[i]) schedule(i);
        else process(i, node.tick(now));
        break;
      }
      case 'deliver': {
        const node = nodes[item.to];
        if (!node) break;
        // A paused process reads its socket buffer when it resumes.
        if (now < pausedUntil[item.to]) pending[item.to].push({ from: item.from, msg: item.msg });
        else process(item.to, node.receive(now, item.from, item.msg));
        break;
      }
      case 'crash':
        nodes[item.node] = undefined;
        crashedAt[item.node] = now;
        pending[item.node] = [];
        liveCount--;
        break;
      case 'restart': {
        const i = item.node;
        // A restarted member starts above its old incarnation, as the shell does with a clock-based epoch.
        const node = makeNode(i, ++restarts * 1_000_000);
        nodes[i] = node;
        crashedAt[i] = NaN;
        liveCount++;
        scheduled[i] = Infinity;
        process(i, node.start(now, [ids[(i + 1) % members], ids[(i + 2) % members]]));
        break;
      }
      case 'pause':
        if (!nodes[item.node]) break;
        pausedUntil[item.node] = Math.max(pausedUntil[item.node], item.until);
        heap.push(item.until, { kind: 'resume', node: item.node });
        break;
      case 'resume': {
        const i = item.node;
        const node = nodes[i];
        if (!node || now < pausedUntil[i]) break;
        const queued = pending[i];
        pending[i] = [];
        for (const q of queued) process(i, node.receive(now, q.from, q.msg));
        process(i, node.tick(now));
        break;
      }
      case 'update': {
        const node = nodes[item.node];
        if (!node) break;
        const meta = Uint8Array.from([item.node & 0xff, (now >> 8) & 0xff, now & 0xff]);
        updates.push({ node: item.node, at: now, meta, have: new Set([item.node]) });
        process(item.node, node.updateMeta(now, meta));
        break;
      }
    }
  }

  let finalViewGaps = 0;
  for (let o = 0; o < members; o++) {
    const node = nodes[o];
    if (!node) continue;
    for (let t = 0; t < members; t++) {
      if (t === o || !nodes[t]) continue;
      const st = node.memberState(ids[t])?.state;
      if (st !== 'alive' && st !== 'suspect') finalViewGaps++;
    }
  }
  let undetected = 0;
  for (let s = 0; s < members; s++) if (!Number.isNaN(crashedAt[s]) && !allAgree.has(s)) undetected++;
  const seconds = scenario.durationMs / 1000;
  return {
    scenario: scenario.name,
    config: configName,
    members,
    seed,
    simulatedSeconds: seconds,
    wallSeconds: (performance.now() - wallStart) / 1000,
    crashed: crashCount,
    firstSuspicionMs: percentiles([...firstSuspect.values()]),
    firstFailedMs: percentiles([...firstFailed.values()]),
    allAgreeMs: percentiles([...allAgree.values()]),
    undetected,
    falseFailures,
    falseFailuresPerMemberHour: falseFailures / ((members * seconds) / 3600),
    messagesPerMemberSecond: messages / members / seconds,
    bytesPerMemberSecond: bytes / members / seconds,
    updateSpreadMs: percentiles(updates.flatMap((u) => (u.spreadMs === undefined ? [] : [u.spreadMs]))),
    finalViewGaps,
  };
}

function sameMeta(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
