/**
 * One client connection: socket -> frames -> requests, replies back in request order.
 *
 * Replies leave in the order requests arrived, as ZooKeeper promises. A request
 * occupies a slot in `slots` until its reply is ready; writes are proposed at once
 * (the log keeps them in order) while a read waits until every earlier slot of this
 * connection is done, so a client always reads its own writes. Replies and watch
 * notifications are gathered in `out` and written with one socket write per turn.
 */
import { FrameDecoder } from '../protocol/frame.js';
import type { ConnectionInfo, LatencyStats } from './four-letter.js';

export interface Slot {
  /** Encoded reply frame once known; undefined while pending. */
  reply: Buffer | undefined;
  /** Deferred work (a read waiting for earlier writes); run when it reaches the head. */
  run: (() => void) | undefined;
  /** When the request arrived (for latency statistics); -1 for a watch event queued between replies. */
  startedAt: number;
  /** After this reply the connection closes (closeSession, auth failure). */
  closeAfter: boolean;
}

/** catching-up: its ConnectRequest waits while this member catches up with the leader (frames after it wait too). */
export type ConnectionState = 'new' | 'connecting' | 'catching-up' | 'open' | 'closing' | 'closed';

export class Connection {
  state: ConnectionState = 'new';
  sessionId: bigint | undefined;
  timeoutMs = 0;
  /** A read-only session (served while this member is cut off from the quorum): no writes. */
  readOnly = false;
  /** Authenticated identities (ip from the address, digest from auth packets). */
  auth: { scheme: string; id: string }[] = [];
  readonly decoder: FrameDecoder;
  readonly slots: Slot[] = [];
  out: Buffer[] = [];
  outBytes = 0;
  /** Bytes written to the transport that its socket has not taken yet. */
  queued = 0;
  paused = false;
  /** First bytes of a new connection, until four have arrived (a four-letter word or a frame length). */
  head: Buffer | undefined;
  /** Closes a connection that does not send its ConnectRequest in time; cleared once it does. */
  connectDeadline: NodeJS.Timeout | undefined;
  readonly remoteAddress: string;
  readonly remote: string;
  // Statistics for the four-letter words.
  received = 0;
  sent = 0;
  readonly establishedAt = Date.now();
  lastOp = 'NA';
  lastCxid = 0;
  lastZxid = 0;
  lastResponseAt = 0;
  lastLatency = 0;
  // Latency statistics as plain fields: one object less per connection.
  private latMin = 0;
  private latMax = 0;
  private latCount = 0;
  private latTotal = 0;

  /** id: the transport's handle for the connection. */
  constructor(
    readonly id: number,
    remoteAddress: string,
    remotePort: number,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.remoteAddress = normaliseAddress(remoteAddress);
    this.remote = `${this.remoteAddress}:${remotePort}`;
  }

  /** Queue an encoded frame (reply or notification) for the next flush. */
  send(frame: Buffer): void {
    this.out.push(frame);
    this.outBytes += frame.length;
    this.sent++;
  }

  recordLatency(ms: number): void {
    const v = Math.round(ms);
    this.lastLatency = v;
    this.latMin = this.latCount === 0 ? v : Math.min(this.latMin, v);
    this.latMax = Math.max(this.latMax, v);
    this.latCount++;
    this.latTotal += v;
  }

  get latency(): LatencyStats {
    return { min: this.latMin, max: this.latMax, avg: this.latCount ? this.latTotal / this.latCount : 0 };
  }

  resetStats(): void {
    this.received = 0;
    this.sent = 0;
    this.latMin = this.latMax = this.latCount = this.latTotal = 0;
  }

  /** For the four-letter words; expiresAt is when its session (or its wait for one) runs out, wall-clock. */
  info(expiresAt: number): ConnectionInfo {
    return {
      remote: this.remote,
      interest: this.state === 'open' || this.state === 'connecting' ? 1 : 0,
      expiresAt,
      queued: this.slots.length,
      received: this.received,
      sent: this.sent,
      sessionId: this.sessionId,
      timeoutMs: this.timeoutMs,
      lastOp: this.lastOp,
      establishedAt: this.establishedAt,
      lastCxid: this.lastCxid,
      lastZxid: this.lastZxid,
      lastResponseAt: this.lastResponseAt,
      lastLatency: this.lastLatency,
      latency: this.latency,
    };
  }
}

/** "::ffff:127.0.0.1" -> "127.0.0.1", so per-IP limits and ip ACLs see one form. */
export function normaliseAddress(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
