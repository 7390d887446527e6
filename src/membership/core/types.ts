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
  /** Minimum suspicion timeout = suspicionMult * log10(max(n, 10)) * probeInterval. */
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
  /** Largest number of broadcasts piggybacked on one message. */
  maxPiggyback: number;
  /** Ask the target directly over TCP too when a UDP probe goes unanswered. */
  tcpFallbackProbe: boolean;
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
  maxPiggyback: 12,
  tcpFallbackProbe: true,
};

/**
 * pulsekeeper's defaults. Probing twice as often finds a crash sooner. The
 * suspicion timeout starts at twice its minimum and falls to it as three other
 * members confirm (Lifeguard); the minimum never goes under 3 s, which a member
 * paused for ~2 s (a GC, an overloaded host) still outlives to refute. Members
 * believed dead are remembered for a minute and one of them is tried every 5 s,
 * which heals partitions (memberlist leaves that to the application).
 */
export const PULSEKEEPER_DEFAULTS: SwimConfig = {
  probeIntervalMs: 500,
  probeTimeoutMs: 250,
  indirectChecks: 3,
  retransmitMult: 4,
  suspicionMult: 2,
  suspicionMaxTimeoutMult: 2,
  suspicionConfirmations: 3,
  minSuspicionTimeoutMs: 3000,
  gossipIntervalMs: 100,
  gossipNodes: 3,
  pushPullIntervalMs: 30_000,
  awarenessMaxMultiplier: 8,
  tombstoneMs: 60_000,
  reconnectIntervalMs: 5_000,
  maxPiggyback: 12,
  tcpFallbackProbe: true,
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
