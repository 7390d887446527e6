/**
 * The SWIM/Lifeguard protocol core's public surface: configuration, messages and
 * outputs. Messages are plain data; the shell encodes them for the wire.
 */
import type { MembershipEvent } from '../events.js';

export interface SwimConfig {
  /** Time between probes of successive members (scaled by local health). */
  probeIntervalMs: number;
  /** How long to wait for a direct ack before asking others (scaled by local health). */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly (ping-req) when a direct probe goes unanswered. */
  indirectChecks: number;
  /** Each broadcast is piggybacked retransmitMult * ceil(log10(n + 1)) times. */
  retransmitMult: number;
  /** Minimum suspicion timeout = suspicionMult * log10(max(n, 10)) * probeInterval (but at least minSuspicionTimeoutMs). */
  suspicionMult: number;
  /** Maximum suspicion timeout = suspicionMaxTimeoutMult * minimum. */
  suspicionMaxTimeoutMult: number;
  /**
   * Independent confirmations that bring the suspicion timeout down from maximum to minimum
   * (memberlist: suspicionMult - 2); fewer members than this + 2 lower it accordingly.
   */
  suspicionConfirmations: number;
  /** A floor under the minimum suspicion timeout, so a member paused this long can still refute. */
  minSuspicionTimeoutMs: number;
  /** How often queued broadcasts are sent to gossipNodes random members, besides piggybacking. */
  gossipIntervalMs: number;
  gossipNodes: number;
  /** Full-state exchange with one random member over TCP; 0 disables it. */
  pushPullIntervalMs: number;
  /** Lifeguard's local health multiplier ranges over [0, awarenessMaxMultiplier - 1]. */
  awarenessMaxMultiplier: number;
  /** How long a dead or left member is remembered (so stale alive news of it is ignored). */
  tombstoneMs: number;
  /**
   * How often to push-pull with one random member believed dead, so the two sides
   * of a healed partition find each other again; 0 disables it.
   */
  reconnectIntervalMs: number;
  /** Bytes of news (as encoded) piggybacked on one message: what fits a datagram beside the message itself. */
  maxPiggybackBytes: number;
  /** Ask the target directly over TCP too when a UDP probe goes unanswered. */
  tcpFallbackProbe: boolean;
  /** While this member knows no other, it asks its seeds again this often (a seed may have started later); 0 disables. */
  joinRetryMs: number;
  /**
   * A call this much later than nextTimer() asked for means this process was itself stalled
   * (a GC pause, SIGSTOP, an overloaded host). It could not hear refutations meanwhile, so its
   * own suspicion and probe deadlines move back by the stall before they are checked; 0 disables.
   */
  selfStallMs: number;
  /**
   * When a suspicion times out, ping the member once more (with the accusation, and over TCP too
   * with tcpFallbackProbe) and declare it dead only if that goes unanswered for a probe timeout.
   * A live member answers with its current incarnation, so a refutation this node happened to
   * miss costs a short delay, not a false declaration.
   */
  probeBeforeDead: boolean;
  /**
   * Gossip suspicions to everyone, so other members confirm them (Lifeguard) and the accused
   * hears of them from anyone. When false, a suspicion stays between accuser and accused: the
   * accuser tells it directly (and on every ping), the accused answers the accuser directly,
   * and only a death is gossiped, so a member that pauses for a second or two costs the
   * cluster a few messages instead of several cluster-wide floods. The death being the only
   * news of a crash, it then rides as many pings and acks again (bytes, no extra messages).
   */
  gossipSuspicions: boolean;
}

/** HashiCorp memberlist's DefaultLANConfig, for comparison. */
export const MEMBERLIST_LAN: SwimConfig = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  suspicionConfirmations: 2,
  minSuspicionTimeoutMs: 0,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  pushPullIntervalMs: 30_000,
  awarenessMaxMultiplier: 8,
  tombstoneMs: 30_000,
  reconnectIntervalMs: 0,
  maxPiggybackBytes: 1200,
  tcpFallbackProbe: true,
  joinRetryMs: 0,
  selfStallMs: 0,
  probeBeforeDead: false,
  gossipSuspicions: true,
};

/**
 * pulsekeeper's defaults. Probing twice as often as memberlist finds a crash sooner.
 * A suspicion stays between accuser and accused (gossipSuspicions: false): the accused
 * hears it at once and answers the accuser alone, so a member that pauses for a second
 * or two costs a few messages, not cluster-wide floods, and per-member load does not
 * grow with the cluster. With nothing to spread before the accused can answer, the
 * timeout need not grow with the cluster either: a flat 2.5 s, then a last-chance
 * probe (direct, indirect, TCP) that a member paused ~2 s (a GC, an overloaded host)
 * has woken for. There are no confirmations to count, so the Lifeguard timeout
 * range is flat (max = min). Members believed dead are remembered for a minute and
 * one is pinged every 5 s, which heals partitions (memberlist leaves that to the
 * application); a member that knows nobody asks its seeds again every 2 s.
 */
export const PULSEKEEPER_DEFAULTS: SwimConfig = {
  probeIntervalMs: 500,
  probeTimeoutMs: 250,
  indirectChecks: 3,
  retransmitMult: 4,
  suspicionMult: 0,
  suspicionMaxTimeoutMult: 1,
  suspicionConfirmations: 0,
  minSuspicionTimeoutMs: 2500,
  gossipIntervalMs: 100,
  gossipNodes: 3,
  pushPullIntervalMs: 30_000,
  awarenessMaxMultiplier: 8,
  tombstoneMs: 60_000,
  reconnectIntervalMs: 5_000,
  maxPiggybackBytes: 1200,
  tcpFallbackProbe: true,
  joinRetryMs: 2000,
  selfStallMs: 250,
  probeBeforeDead: true,
  gossipSuspicions: false,
};

export type GossipKind = 'alive' | 'suspect' | 'dead';

/** A piece of membership news, piggybacked or gossiped. */
export interface Gossip {
  kind: GossipKind;
  id: string;
  incarnation: number;
  /** alive: the member's address and metadata. */
  address?: string;
  meta?: Uint8Array;
  /** suspect/dead: who says so (dead from the member itself means it left). */
  from?: string;
  /** For the receiver only, not to be passed on: an accusation sent to the accused, or its answer to the accuser. */
  direct?: boolean;
}

export interface MemberState {
  id: string;
  address: string;
  incarnation: number;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  meta: Uint8Array;
}

export type Message =
  | { type: 'ping'; seq: number; from: string; target: string; gossip: Gossip[] }
  | { type: 'ack'; seq: number; from: string; gossip: Gossip[] }
  | { type: 'nack'; seq: number; from: string }
  | { type: 'ping-req'; seq: number; from: string; target: string; targetAddress: string; gossip: Gossip[] }
  | { type: 'gossip'; from: string; gossip: Gossip[] }
  | { type: 'push-pull'; from: string; join: boolean; reply: boolean; members: MemberState[] };

export type Transport = 'udp' | 'tcp';

export interface Send {
  to: string;
  msg: Message;
  transport: Transport;
}

export interface Output {
  send: Send[];
  events: MembershipEvent[];
}

/** A seeded source of randomness in [0, 1). */
export type Random = () => number;
