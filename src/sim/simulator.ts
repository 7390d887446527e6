/**
 * A deterministic cluster simulator: the real SWIM core on a simulated clock and
 * network (LAN or WAN-like latency, loss, asymmetric links, partitions, paused
 * members, crashes and restarts). Everything random comes from one seed, so a run replays
 * exactly. All nodes share one interned id table, so 10,000 full views fit in one
 * process (a few bytes per member per node).
 */
import type { MembershipEvent } from '../membership/events.js';
import { MemberIds } from '../membership/core/member-ids.js';
import { messageSize, utf8Length } from '../membership/core/size.js';
import { SwimNode } from '../membership/core/swim-node.js';
import type { Message, SwimConfig, Transport } from '../membership/core/types.js';
import { EventHeap } from './heap.js';

/** A fault at a fixed time, for members picked by position (0..n-1). */
export type Fault = { atMs: number; member: number } & ({ kind: 'crash'; restartAfterMs?: number } | { kind: 'pause'; forMs: number });

export interface Scenario {
  name: string;
  description: string;
  durationMs: number;
  /** Probability that a UDP message is lost. */
  loss: number;
  /** One-way latency: base plus an exponential tail with this mean. */
  latencyBaseMs: number;
  latencyTailMs: number;
  /** WAN-like links: each pair's base is fixed, uniform in [latencyBaseMs, this] (members are far apart, some farther). */
  latencyLinkMaxMs?: number;
  /** Per message, uniform in [0, this) on top of the base. */
  latencyJitterMs?: number;
  /** A heavy (Pareto/Lomax) tail of this shape instead of the exponential one, with the same mean latencyTailMs. */
  latencyParetoShape?: number;
  /** Fraction of members that crash, at uniformly random times in [crashFrom, crashTo] of the run. */
  crashFraction: number;
  /** This many crashes whatever the cluster size, instead of crashFraction. */
  crashCount?: number;
  crashFrom: number;
  crashTo: number;
  /** Crashed members come back this long after crashing, if set: before they can be declared dead, or after. */
  restartAfterMs?: number;
  /** Fraction of members that pause (as in a long GC) for pauseMs, about pausesPerMinute times a minute each. */
  pauseFraction: number;
  pauseMs: number;
  pausesPerMinute: number;
  /** Cut the cluster in two (this fraction on one side) for a while. */
  partition?: { fraction: number; fromMs: number; toMs: number };
  /** Members of this fraction lose every UDP packet from `deafTo` of the others (a one-way broken link; TCP still works). */
  asymmetric?: { fraction: number; deafTo: number };
  /** Faults at fixed times, besides the random ones; the report times how long the views take to settle after them. */
  faults?: (members: number) => Fault[];
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

/** The comparison scenario of the project's goal. */
const LAN: Omit<Scenario, 'name'> = {
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
};

export const SCENARIOS: Record<string, Omit<Scenario, 'name'>> = {
  lan: LAN,
  /** On lan, deaths per second grow with the cluster (1% crash) and every member must hear each; here they do not. */
  'lan-fixed': { ...LAN, description: "lan's loss and pauses, but 10 crashes whatever the size (at 1,000 members it is lan)", crashCount: 10 },
  crash: { ...BASE, description: 'no loss, no pauses; 5% crash', crashFraction: 0.05, metadataUpdates: 3 },
  quiet: { ...BASE, description: '1% loss, no faults: any failure declaration is false', loss: 0.01, metadataUpdates: 3 },
  restart: {
    ...BASE,
    description: '5% crash and restart 2 s later with a higher incarnation',
    loss: 0.01,
    crashFraction: 0.05,
    restartAfterMs: 2000,
  },
  'restart-dead': {
    ...BASE,
    description: "1% loss; 5% crash and restart 10 s later with a higher incarnation, time enough for pulsekeeper's defaults to declare them dead everywhere first",
    loss: 0.01,
    crashFraction: 0.05,
    restartAfterMs: 10_000,
  },
  wan: {
    ...BASE,
    description:
      'WAN-like links: one-way latency 20-50 ms fixed per pair, + uniform 0-10 ms jitter, + a Pareto tail (shape 1.5, mean 5 ms); 1% loss; 1% crash',
    loss: 0.01,
    latencyBaseMs: 20,
    latencyLinkMaxMs: 50,
    latencyJitterMs: 10,
    latencyTailMs: 5,
    latencyParetoShape: 1.5,
    crashFraction: 0.01,
    metadataUpdates: 3,
  },
  partition: { ...BASE, description: 'a 30/70 partition for 20 s, then healed', partition: { fraction: 0.3, fromMs: 30_000, toMs: 50_000 } },
  asymmetric: {
    ...BASE,
    description: '1% loss; 5% of members get no UDP from a random 20% of the others (TCP works); 1% crash',
    loss: 0.01,
    crashFraction: 0.01,
    asymmetric: { fraction: 0.05, deafTo: 0.2 },
  },
  processes: {
    ...BASE,
    description:
      'the real-process test (test/membership/processes.test.ts) for 30 members: at 10 s the last 3 crash, the 2 before them pause 1.8 s, the one before those crashes and restarts 2 s later',
    durationMs: 60_000,
    faults: (n) => [
      ...[n - 1, n - 2, n - 3].map((member): Fault => ({ atMs: 10_000, member, kind: 'crash' })),
      ...[n - 4, n - 5].map((member): Fault => ({ atMs: 10_000, member, kind: 'pause', forMs: 1800 })),
      { atMs: 10_000, member: n - 6, kind: 'crash', restartAfterMs: 2000 },
    ],
  },
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

/** A hash of three integers to [0, 1): fixed per (seed, from, to), so a broken link stays broken without a table. */
function hash01(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35) ^ Math.imul(c + 0x165667b1, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

type SimEvent =
  | { kind: 'deliver'; to: number; from: string; msg: Message; transport: Transport }
  | { kind: 'timer'; node: number; at: number }
  | { kind: 'crash'; node: number }
  | { kind: 'restart'; node: number }
  | { kind: 'pause'; node: number; until: number }
  | { kind: 'resume'; node: number }
  | { kind: 'update'; node: number }
  | { kind: 'check' }
  | { kind: 'rejoin'; node: number };

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
  /** CPU time this process spent on the run (less noisy than wall time on a shared machine). */
  cpuSeconds: number;
  crashed: number;
  /** From a crash to the first suspicion, the first failure declaration, and every live member agreeing. */
  firstSuspicionMs: Percentiles;
  firstFailedMs: Percentiles;
  allAgreeMs: Percentiles;
  /** Crashed members (still down at the end) not yet declared failed by every live member. */
  undetected: number;
  /** Crashed members that came back (with a higher incarnation). */
  restarted: number;
  /** Of those, how many every running member had declared failed before they came back. */
  restartedAfterAgreement: number;
  /** From a restart until every running member counts the member alive again (checked every 100 ms). */
  rejoinMs: Percentiles;
  /** `failed` events about a restarted member after its restart (also counted in falseFailures). */
  failedAfterRestart: number;
  /** `failed` events from an observer that had already declared the same crash failed. */
  repeatedFailures: number;
  /** `failed` events, at any member, about members that had not crashed, per member-hour. */
  falseFailuresPerMemberHour: number;
  falseFailures: number;
  /** Members that had not crashed but were declared failed by at least one member. */
  falselyAccused: number;
  messagesPerMemberSecond: number;
  bytesPerMemberSecond: number;
  /** Messages per member per second by type (tcp-ping is the fallback probe). */
  messagesByType: Record<string, number>;
  /** From a metadata update to every live member having it. */
  updateSpreadMs: Percentiles;
  /** At the end: (observer, subject) pairs of running members where the observer does not count the subject alive. */
  finalViewGaps: number;
  /** Scripted faults only: from the first fault until every running member's view is exactly the running members (checked every 100 ms). */
  settledMs?: number;
}

function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN);
  return { count: s.length, p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1] : NaN };
}

/** Bytes of one message sent alone: the packet header, the sender's address and the message, as encoded (unencrypted). */
export function packetBytes(sender: string, msg: Message): number {
  return 2 + 2 + utf8Length(sender) + 1 + messageSize(msg);
}

/** Member i's id and address, shaped like a real one (10.0.0.0/16 on port 7946) so message sizes are realistic. */
export const memberAddress = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`;

export function simulate(members: number, scenario: Scenario, config: SwimConfig, configName: string, seed: number): SimReport {
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  const random = rng(seed);
  const ids = new MemberIds();
  for (let i = 0; i < members; i++) ids.intern(memberAddress(i), memberAddress(i));
  const name = (i: number) => ids.name(i);
  const nodes: (SwimNode | undefined)[] = new Array(members);
  const scheduled = new Float64Array(members).fill(Infinity);
  const crashedAt = new Float64Array(members).fill(NaN);
  const pausedUntil = new Float64Array(members);
  const pending: { from: string; msg: Message; transport: Transport }[][] = Array.from({ length: members }, () => []);
  const side = new Uint8Array(members);
  const deaf = new Uint8Array(members);
  const heap = new EventHeap<SimEvent>();
  let now = 0;
  let messages = 0;
  let bytes = 0;
  const byType: Record<string, number> = { ping: 0, ack: 0, 'ping-req': 0, nack: 0, 'tcp-ping': 0, gossip: 0, 'push-pull': 0 };
  let liveCount = members;
  const firstSuspect = new Map<number, number>();
  const firstFailed = new Map<number, number>();
  /** Per crashed member: which observers have declared it failed, and how many. */
  const failedBy = new Map<number, { by: Uint8Array; count: number }>();
  const allAgree = new Map<number, number>();
  let falseFailures = 0;
  const accused = new Set<number>();
  const updates: { node: number; at: number; meta: Uint8Array; have: Set<number>; spreadMs?: number }[] = [];
  let restarts = 0;
  let failedAfterRestart = 0;
  let restartedAfterAgreement = 0;
  let repeatedFailures = 0;
  const restartedAt = new Float64Array(members).fill(NaN);
  const rejoined: number[] = [];

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
      const subject = ids.find(ev.member.id)!;
      const crashed = !Number.isNaN(crashedAt[subject]);
      if (ev.type === 'suspect' && crashed && !firstSuspect.has(subject)) firstSuspect.set(subject, now - crashedAt[subject]);
      if (ev.type === 'failed') {
        if (!crashed) {
          falseFailures++;
          accused.add(subject);
          if (!Number.isNaN(restartedAt[subject])) failedAfterRestart++;
          continue;
        }
        if (!firstFailed.has(subject)) firstFailed.set(subject, now - crashedAt[subject]);
        let f = failedBy.get(subject);
        if (!f) failedBy.set(subject, (f = { by: new Uint8Array(members), count: 0 }));
        if (f.by[observer]) repeatedFailures++;
        else {
          f.by[observer] = 1;
          f.count++;
        }
        if (!allAgree.has(subject) && f.count >= liveCount) allAgree.set(subject, now - crashedAt[subject]);
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

  const handle = (i: number, out: ReturnType<SwimNode['tick']>) => {
    for (const s of out.send) {
      const to = ids.find(s.to);
      if (to === undefined || to >= members) continue;
      messages++;
      bytes += packetBytes(name(i), s.msg);
      const type = s.transport === 'tcp' && s.msg.type === 'ping' ? 'tcp-ping' : s.msg.type;
      byType[type]++;
      // Partitions cut both transports; loss and deaf links hit UDP only.
      if (side[i] !== side[to]) continue;
      if (s.transport === 'udp') {
        if (random() < scenario.loss) continue;
        if (deaf[to] && hash01(seed, i, to) < scenario.asymmetric!.deafTo) continue;
      }
      heap.push(now + latency(i, to), { kind: 'deliver', to, from: name(i), msg: s.msg, transport: s.transport });
    }
    onEvents(i, out.events);
    schedule(i);
  };

  /**
   * One-way latency from a to b: the pair's base (fixed, the same both ways), jitter, and a tail,
   * exponential or Pareto with the same mean. LAN scenarios draw one number, as they always have,
   * so their runs replay as before.
   */
  const latency = (a: number, b: number) => {
    const s = scenario;
    const base = s.latencyLinkMaxMs === undefined ? s.latencyBaseMs : s.latencyBaseMs + (s.latencyLinkMaxMs - s.latencyBaseMs) * hash01(seed ^ 0x5bd1e995, Math.min(a, b), Math.max(a, b));
    const jitter = s.latencyJitterMs ? s.latencyJitterMs * random() : 0;
    const u = 1 - random();
    const shape = s.latencyParetoShape;
    // Lomax: scale × (u^(-1/shape) - 1) has mean scale / (shape - 1).
    const tail = shape === undefined ? -s.latencyTailMs * Math.log(u) : s.latencyTailMs * (shape - 1) * (u ** (-1 / shape) - 1);
    return base + jitter + tail;
  };

  const makeNode = (i: number, incarnation: number) =>
    new SwimNode(config, { id: name(i), address: name(i), incarnation }, rng((seed * 7919 + i * 104729 + incarnation * 31) >>> 0), ids);

  // Every member starts knowing all others (a converged cluster).
  for (let i = 0; i < members; i++) {
    const node = makeNode(i, 0);
    nodes[i] = node;
    node.startConverged(0);
    schedule(i);
  }

  // Faults, all drawn from the seed.
  const order = Array.from({ length: members }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const crash = (at: number, member: number, restartAfterMs: number | undefined) => {
    heap.push(at, { kind: 'crash', node: member });
    if (restartAfterMs !== undefined) heap.push(at + restartAfterMs, { kind: 'restart', node: member });
  };
  const crashCount = Math.min(members - 1, scenario.crashCount ?? Math.round(members * scenario.crashFraction));
  const span = scenario.durationMs - scenario.warmupMs;
  for (let k = 0; k < crashCount; k++) crash(scenario.warmupMs + span * (scenario.crashFrom + (scenario.crashTo - scenario.crashFrom) * random()), order[k], scenario.restartAfterMs);
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
  const deafCount = scenario.asymmetric ? Math.round(members * scenario.asymmetric.fraction) : 0;
  for (const d of order.slice(members - cut.length - deafCount, members - cut.length)) deaf[d] = 1;
  const updaters = order.slice(crashCount + pausers.length, crashCount + pausers.length + scenario.metadataUpdates);
  updaters.forEach((u, k) => heap.push(scenario.warmupMs + (span * (k + 1)) / (updaters.length + 2), { kind: 'update', node: u }));
  const scripted = scenario.faults?.(members) ?? [];
  for (const f of scripted) {
    if (f.kind === 'crash') crash(f.atMs, f.member, f.restartAfterMs);
    else heap.push(f.atMs, { kind: 'pause', node: f.member, until: f.atMs + f.forMs });
  }
  const firstScripted = Math.min(...scripted.map((f) => f.atMs));
  let settledMs: number | undefined;
  if (scripted.length) heap.push(firstScripted, { kind: 'check' });

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
        else handle(i, node.tick(now));
        break;
      }
      case 'deliver': {
        const node = nodes[item.to];
        if (!node) break;
        // A paused process reads its socket buffer when it resumes.
        if (now < pausedUntil[item.to]) pending[item.to].push(item);
        else handle(item.to, node.receive(now, item.from, item.msg, item.transport));
        break;
      }
      case 'crash':
        if (!nodes[item.node]) break;
        nodes[item.node] = undefined;
        crashedAt[item.node] = now;
        pending[item.node] = [];
        failedBy.delete(item.node);
        liveCount--;
        break;
      case 'restart': {
        const i = item.node;
        // A restarted member starts above its old incarnation, as the shell does with a clock-based epoch.
        const node = makeNode(i, ++restarts * 1_000_000);
        nodes[i] = node;
        crashedAt[i] = NaN;
        restartedAt[i] = now;
        if (allAgree.has(i)) restartedAfterAgreement++;
        pausedUntil[i] = 0;
        liveCount++;
        scheduled[i] = Infinity;
        // Its seeds are the next two members that are up (as a deployment lists seeds that are running).
        const seeds: string[] = [];
        for (let k = 1; k < members && seeds.length < 2; k++) if (nodes[(i + k) % members]) seeds.push(name((i + k) % members));
        handle(i, node.start(now, seeds));
        heap.push(now, { kind: 'rejoin', node: i });
        break;
      }
      case 'rejoin': {
        const i = item.node;
        if (!nodes[i]) break;
        if (nodes.every((o, k) => !o || k === i || o.tableStates()[i] === 1 || o.tableStates()[i] === 2)) rejoined.push(now - restartedAt[i]);
        else heap.push(now + 100, item);
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
        for (const q of queued) handle(i, node.receive(now, q.from, q.msg, q.transport));
        handle(i, node.tick(now));
        break;
      }
      case 'update': {
        const node = nodes[item.node];
        if (!node) break;
        const meta = Uint8Array.from([item.node & 0xff, (now >> 8) & 0xff, now & 0xff]);
        updates.push({ node: item.node, at: now, meta, have: new Set([item.node]) });
        handle(item.node, node.updateMeta(now, meta));
        break;
      }
      case 'check':
        if (now > firstScripted && viewGaps(nodes, true) === 0) settledMs = now - firstScripted;
        else heap.push(now + 100, item);
        break;
    }
  }

  let undetected = 0;
  for (let s = 0; s < members; s++) if (!Number.isNaN(crashedAt[s]) && !allAgree.has(s)) undetected++;
  const seconds = scenario.durationMs / 1000;
  const perMemberSecond = (x: number) => x / members / seconds;
  return {
    scenario: scenario.name,
    config: configName,
    members,
    seed,
    simulatedSeconds: seconds,
    wallSeconds: (performance.now() - wallStart) / 1000,
    cpuSeconds: cpuSeconds(process.cpuUsage(cpuStart)),
    crashed: crashCount + scripted.filter((f) => f.kind === 'crash').length,
    firstSuspicionMs: percentiles([...firstSuspect.values()]),
    firstFailedMs: percentiles([...firstFailed.values()]),
    allAgreeMs: percentiles([...allAgree.values()]),
    undetected,
    restarted: restartedAt.filter((t) => !Number.isNaN(t)).length,
    restartedAfterAgreement,
    rejoinMs: percentiles(rejoined),
    failedAfterRestart,
    repeatedFailures,
    falseFailures,
    falseFailuresPerMemberHour: falseFailures / ((members * seconds) / 3600),
    falselyAccused: accused.size,
    messagesPerMemberSecond: perMemberSecond(messages),
    bytesPerMemberSecond: perMemberSecond(bytes),
    messagesByType: Object.fromEntries(Object.entries(byType).map(([k, v]) => [k, perMemberSecond(v)])),
    updateSpreadMs: percentiles(updates.flatMap((u) => (u.spreadMs === undefined ? [] : [u.spreadMs]))),
    finalViewGaps: viewGaps(nodes, false),
    ...(scripted.length ? { settledMs } : {}),
  };
}

/**
 * (observer, subject) pairs of running members where the observer does not count the subject
 * alive or suspect; with `stale`, also pairs where it still counts a member that is down.
 * Members are indexes of the shared id table.
 */
function viewGaps(nodes: (SwimNode | undefined)[], stale: boolean): number {
  let gaps = 0;
  for (let o = 0; o < nodes.length; o++) {
    const node = nodes[o];
    if (!node) continue;
    const states = node.tableStates();
    for (let t = 0; t < nodes.length; t++) {
      if (t === o || (!nodes[t] && !stale)) continue;
      const live = states[t] === 1 || states[t] === 2;
      if (live !== !!nodes[t]) gaps++;
    }
  }
  return gaps;
}

function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

function sameMeta(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
