/**
 * One client connection: socket -> frames -> requests, replies back in request order.
 *
 * Replies leave in the order requests arrived, as ZooKeeper promises. A request
 * occupies a slot in `slots` until its reply is ready; writes are proposed at once
 * (the log keeps them in order) while a read waits until every earlier slot of this
 * connection is done, so a client always reads its own writes. Replies and watch
 * notifications are gathered in `out` and written with one transport write per turn.
 */
import type { AuthId } from '../acl/acl.js';
import type { FrameDecoder } from '../protocol/frame.js';
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

/**
 * catching-up: its ConnectRequest waits while this member catches up with the leader;
 * creating: its new session waits for its createSession to be applied. Frames after the
 * ConnectRequest wait in either, so that none is answered before the ConnectResponse.
 */
export type ConnectionState = 'new' | 'connecting' | 'catching-up' | 'creating' | 'open' | 'closing' | 'closed';

/** The empty request list every idle connection shares. */
const NO_SLOTS = Object.freeze([]) as unknown as Slot[];
/** Establishment times are kept relative to this, small enough to stay unboxed numbers. */
const WALL_BASE = Date.now();

/** What a connection holds only while something is in flight: input not taken yet, requests, output. */
class InFlight {
  /** First bytes of a new connection, until four have arrived (a four-letter word or a frame length). */
  head: Buffer | undefined;
  /** Bytes received and not yet taken as frames. */
  decoder: FrameDecoder | undefined;
  /** Requests in arrival order until their replies leave, with watch events queued between them. */
  slots: Slot[] = NO_SLOTS;
  /** Encoded frames for the next write. */
  out: Buffer[] | undefined;
  outBytes = 0;
  /** Bytes written to the transport that its socket has not taken yet. */
  queued = 0;
  /** Reading is paused until the client catches up or requests finish. */
  paused = false;

  get idle(): boolean {
    return !this.head && !this.decoder && this.slots === NO_SLOTS && !this.out && this.queued === 0 && !this.paused;
  }
}

/**
 * What a connection keeps is kept small, because an idle heartbeating session costs
 * little else: what is in flight lives in an object of its own that exists only while
 * there is some, and the address and its ip identity are shared by every connection from
 * that address.
 */
export class Connection {
  state: ConnectionState = 'new';
  sessionId: bigint | undefined;
  timeoutMs = 0;
  /** A read-only session (served while this member is cut off from the quorum): no writes. */
  readOnly = false;
  private busy: InFlight | undefined;
  /** Closes a connection that does not send its ConnectRequest in time; cleared once it does. */
  connectDeadline: NodeJS.Timeout | undefined;
  // Statistics for the four-letter words.
  received = 0;
  sent = 0;
  private readonly established = Date.now() - WALL_BASE;
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

  /**
   * id: the transport's handle for the connection. auth: its authenticated identities,
   * at first the ip identity list shared by every connection from the address (its first
   * entry); it is replaced, never changed in place, when an auth packet adds one.
   */
  constructor(
    readonly id: number,
    readonly remotePort: number,
    public auth: AuthId[],
  ) {}

  get remoteAddress(): string {
    return this.auth[0].id;
  }

  get remote(): string {
    return `${this.remoteAddress}:${this.remotePort}`;
  }

  get establishedAt(): number {
    return WALL_BASE + this.established;
  }

  private inFlight(): InFlight {
    return (this.busy ??= new InFlight());
  }

  /** Lets the in-flight part go once nothing is left in it. */
  private settle(): void {
    if (this.busy?.idle) this.busy = undefined;
  }

  get head(): Buffer | undefined {
    return this.busy?.head;
  }
  set head(v: Buffer | undefined) {
    this.inFlight().head = v;
    this.settle();
  }

  get decoder(): FrameDecoder | undefined {
    return this.busy?.decoder;
  }
  set decoder(v: FrameDecoder | undefined) {
    this.inFlight().decoder = v;
    this.settle();
  }

  get slots(): Slot[] {
    return this.busy?.slots ?? NO_SLOTS;
  }

  get out(): Buffer[] | undefined {
    return this.busy?.out;
  }

  get outBytes(): number {
    return this.busy?.outBytes ?? 0;
  }

  get queued(): number {
    return this.busy?.queued ?? 0;
  }
  set queued(v: number) {
    if (v === 0 && !this.busy) return;
    this.inFlight().queued = v;
    this.settle();
  }

  get paused(): boolean {
    return this.busy?.paused ?? false;
  }
  set paused(v: boolean) {
    if (!v && !this.busy) return;
    this.inFlight().paused = v;
    this.settle();
  }

  addSlot(slot: Slot): void {
    const busy = this.inFlight();
    if (busy.slots === NO_SLOTS) busy.slots = [slot];
    else busy.slots.push(slot);
  }

  /** Queues a watch event behind the replies already answered and ahead of those still waiting. */
  insertEvent(event: Slot): void {
    const busy = this.inFlight();
    const slots = busy.slots;
    let i = 0;
    while (i < slots.length && slots[i].reply !== undefined) i++;
    if (slots === NO_SLOTS) busy.slots = [event];
    else slots.splice(i, 0, event);
  }

  /** Removes the first slot. */
  shiftSlot(): void {
    const busy = this.busy;
    if (!busy) return;
    busy.slots.shift();
    if (busy.slots.length === 0) busy.slots = NO_SLOTS;
    this.settle();
  }

  /** Forgets every request and everything not written yet (the connection is closing). */
  dropPending(): void {
    if (!this.busy) return;
    this.busy.slots = NO_SLOTS;
    this.busy.out = undefined;
    this.busy.outBytes = 0;
    this.settle();
  }

  /** Forgets the requests after a reply that closes the connection. */
  dropSlots(): void {
    if (!this.busy) return;
    this.busy.slots = NO_SLOTS;
    this.settle();
  }

  /** Queue an encoded frame (reply or notification) for the next flush. */
  send(frame: Buffer): void {
    const busy = this.inFlight();
    if (busy.out) busy.out.push(frame);
    else busy.out = [frame];
    busy.outBytes += frame.length;
    this.sent++;
  }

  /** Everything queued for the next write, as one buffer. */
  takeOut(): Buffer | undefined {
    const busy = this.busy;
    const out = busy?.out;
    if (!busy || !out) return undefined;
    const data = out.length === 1 ? out[0] : Buffer.concat(out, busy.outBytes);
    busy.out = undefined;
    busy.outBytes = 0;
    this.settle();
    return data;
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

/** A transport handle's slot (its low bits: the file descriptor, for the epoll transport). */
export const HANDLE_SLOTS = 2 ** 24;

/** Connections by transport handle: an array indexed by the handle's slot, cheaper per connection than a map. */
export class ConnectionTable {
  private readonly bySlot: (Connection | undefined)[] = [];

  get(handle: number): Connection | undefined {
    const conn = this.bySlot[handle % HANDLE_SLOTS];
    return conn !== undefined && conn.id === handle ? conn : undefined;
  }

  set(conn: Connection): void {
    this.bySlot[conn.id % HANDLE_SLOTS] = conn;
  }

  delete(conn: Connection): void {
    if (this.get(conn.id) === conn) this.bySlot[conn.id % HANDLE_SLOTS] = undefined;
  }

  /** Every connection, as a list of its own (safe to close connections while going through it). */
  values(): Connection[] {
    return this.bySlot.filter((c): c is Connection => c !== undefined);
  }
}

/** "::ffff:127.0.0.1" -> "127.0.0.1", so per-IP limits and ip ACLs see one form. */
export function normaliseAddress(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
