/**
 * The membership wire format, compact so a datagram carries many pieces of news.
 * A packet is a version byte, a flags byte, then the body (sealed with AES-256-GCM
 * when a key ring is used): the sender's advertised address (so replies over TCP
 * find its listener), a message count and the messages. Strings and byte strings
 * are a two-byte length and the bytes; numbers are big-endian; a gossip item
 * starts with a byte holding its kind and which optional fields follow. The sizes
 * are those core/size.ts computes. Lengths are checked before anything is
 * allocated; a body that does not parse is reported as null, never thrown.
 */
import type { Gossip, GossipKind, MemberState, Message } from './core/types.js';

export const WIRE_VERSION = 2;
export const FLAG_ENCRYPTED = 1;
/** Comfortably under the usual 1500-byte MTU once IP/UDP headers and encryption are added. */
export const MAX_UDP_PAYLOAD = 1400;
/** Push-pull state over TCP. */
export const MAX_TCP_PACKET = 8 * 1024 * 1024;
/** Member ids and addresses longer than this are refused, so one re-encoded (bad UTF-8 can triple) still fits its field. */
export const MAX_NAME_BYTES = 255;
/** Metadata per member, as memberlist allows: it rides in every alive message, so it must stay small. */
export const MAX_META_BYTES = 512;

const TYPES = ['ping', 'ack', 'nack', 'ping-req', 'gossip', 'push-pull'] as const;
const KINDS: GossipKind[] = ['alive', 'suspect', 'dead'];
const STATES: MemberState['state'][] = ['alive', 'suspect', 'dead', 'left'];
const HAS_ADDRESS = 4;
const HAS_META = 8;
const HAS_FROM = 16;
const DIRECT = 32;

class Malformed extends Error {}

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  u8(x: number): this {
    this.room(1);
    this.buf[this.at++] = x;
    return this;
  }

  u16(x: number): this {
    this.room(2);
    this.at = this.buf.writeUInt16BE(x, this.at);
    return this;
  }

  u32(x: number): this {
    this.room(4);
    this.at = this.buf.writeUInt32BE(x >>> 0, this.at);
    return this;
  }

  bytes(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError('field longer than 65535 bytes');
    this.u16(b.length);
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }

  str(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }

  take(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.at;
  }

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw new Malformed('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.at++];
  }

  u16(): number {
    this.need(2);
    const x = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return x;
  }

  u32(): number {
    this.need(4);
    const x = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return x;
  }

  bytes(max = 0xffff): Uint8Array {
    const n = this.u16();
    if (n > max) throw new Malformed(`field of ${n} bytes, more than ${max}`);
    this.need(n);
    const b = new Uint8Array(this.buf.subarray(this.at, this.at + n));
    this.at += n;
    return b;
  }

  /** Every string field is a name (member id or address). */
  str(): string {
    const n = this.u16();
    if (n > MAX_NAME_BYTES) throw new Malformed(`name of ${n} bytes, more than ${MAX_NAME_BYTES}`);
    this.need(n);
    const s = this.buf.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }

  /** A count of items, each at least `minBytes` long, checked against what is left before anything is built. */
  count(n: number, minBytes: number): number {
    if (n * minBytes > this.remaining) throw new Malformed(`${n} items cannot fit in ${this.remaining} bytes`);
    return n;
  }
}

function writeGossip(w: Writer, g: Gossip): void {
  const flags =
    KINDS.indexOf(g.kind) | (g.address !== undefined ? HAS_ADDRESS : 0) | (g.meta !== undefined ? HAS_META : 0) | (g.from !== undefined ? HAS_FROM : 0) | (g.direct ? DIRECT : 0);
  w.u8(flags).u32(g.incarnation).str(g.id);
  if (g.address !== undefined) w.str(g.address);
  if (g.meta !== undefined) w.bytes(g.meta);
  if (g.from !== undefined) w.str(g.from);
}

function readGossip(r: Reader): Gossip {
  const flags = r.u8();
  const kind = KINDS[flags & 3];
  if (!kind || flags & ~(3 | HAS_ADDRESS | HAS_META | HAS_FROM | DIRECT)) throw new Malformed('bad gossip flags');
  const g: Gossip = { kind, incarnation: r.u32(), id: r.str() };
  if (flags & HAS_ADDRESS) g.address = r.str();
  if (flags & HAS_META) g.meta = r.bytes(MAX_META_BYTES);
  if (flags & HAS_FROM) g.from = r.str();
  if (flags & DIRECT) g.direct = true;
  return g;
}

function writeGossipList(w: Writer, list: Gossip[]): void {
  if (list.length > 0xffff) throw new RangeError('too many gossip items');
  w.u16(list.length);
  for (const g of list) writeGossip(w, g);
}

function readGossipList(r: Reader): Gossip[] {
  const n = r.count(r.u16(), 7);
  const out: Gossip[] = [];
  for (let i = 0; i < n; i++) out.push(readGossip(r));
  return out;
}

function writeMessage(w: Writer, m: Message): void {
  w.u8(TYPES.indexOf(m.type));
  switch (m.type) {
    case 'ping':
      w.u32(m.seq).str(m.from).str(m.target);
      writeGossipList(w, m.gossip);
      break;
    case 'ack':
      w.u32(m.seq).str(m.from);
      writeGossipList(w, m.gossip);
      break;
    case 'nack':
      w.u32(m.seq).str(m.from);
      break;
    case 'ping-req':
      w.u32(m.seq).str(m.from).str(m.target).str(m.targetAddress);
      writeGossipList(w, m.gossip);
      break;
    case 'gossip':
      w.str(m.from);
      writeGossipList(w, m.gossip);
      break;
    case 'push-pull':
      w.str(m.from).u8((m.join ? 1 : 0) | (m.reply ? 2 : 0)).u32(m.members.length);
      for (const s of m.members) w.str(s.id).str(s.address).u32(s.incarnation).u8(STATES.indexOf(s.state)).bytes(s.meta);
      break;
  }
}

function readMessage(r: Reader): Message {
  const type = TYPES[r.u8()];
  switch (type) {
    case 'ping':
      return { type, seq: r.u32(), from: r.str(), target: r.str(), gossip: readGossipList(r) };
    case 'ack':
      return { type, seq: r.u32(), from: r.str(), gossip: readGossipList(r) };
    case 'nack':
      return { type, seq: r.u32(), from: r.str() };
    case 'ping-req':
      return { type, seq: r.u32(), from: r.str(), target: r.str(), targetAddress: r.str(), gossip: readGossipList(r) };
    case 'gossip':
      return { type, from: r.str(), gossip: readGossipList(r) };
    case 'push-pull': {
      const from = r.str();
      const flags = r.u8();
      if (flags & ~3) throw new Malformed('bad push-pull flags');
      const n = r.count(r.u32(), 11);
      const members: MemberState[] = [];
      for (let i = 0; i < n; i++) {
        const s = { id: r.str(), address: r.str(), incarnation: r.u32(), state: STATES[r.u8()], meta: r.bytes(MAX_META_BYTES) };
        if (!s.state) throw new Malformed('bad member state');
        members.push(s);
      }
      return { type, from, join: (flags & 1) !== 0, reply: (flags & 2) !== 0, members };
    }
  }
  throw new Malformed('unknown message type');
}

/** Encodes messages into one packet body (after the two header bytes), sealed by the caller if needed. */
export function encodeBody(sender: string, messages: Message[]): Buffer {
  if (messages.length > 255) throw new RangeError('too many messages in one packet');
  const w = new Writer();
  w.str(sender).u8(messages.length);
  for (const m of messages) writeMessage(w, m);
  return w.take();
}

export interface DecodedPacket {
  sender: string;
  messages: Message[];
}

export function decodeBody(body: Buffer): DecodedPacket | null {
  try {
    const r = new Reader(body);
    const sender = r.str();
    const n = r.count(r.u8(), 3);
    const messages: Message[] = [];
    for (let i = 0; i < n; i++) messages.push(readMessage(r));
    if (r.remaining !== 0) return null;
    return { sender, messages };
  } catch (e) {
    if (e instanceof Malformed) return null;
    throw e;
  }
}
