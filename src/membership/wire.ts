/**
 * The membership wire format. A packet is a version byte, a flags byte, the
 * sender's advertised address (so replies over TCP find its listener) and one or
 * more messages; with a key ring the rest after the two header bytes is sealed
 * with AES-256-GCM. Lengths are checked before anything is allocated; a packet
 * that does not parse is reported as null, never thrown.
 */
import { DecodeError, JuteReader, JuteWriter } from '../protocol/jute.js';
import type { Gossip, GossipKind, MemberState, Message } from './core/types.js';

export const WIRE_VERSION = 1;
export const FLAG_ENCRYPTED = 1;
/** Comfortably under the usual 1500-byte MTU once IP/UDP headers and encryption are added. */
export const MAX_UDP_PAYLOAD = 1400;
/** Push-pull state over TCP. */
export const MAX_TCP_PACKET = 8 * 1024 * 1024;

const TYPES = ['ping', 'ack', 'nack', 'ping-req', 'gossip', 'push-pull'] as const;
const KINDS: GossipKind[] = ['alive', 'suspect', 'dead'];
const STATES: MemberState['state'][] = ['alive', 'suspect', 'dead', 'left'];

function writeGossip(w: JuteWriter, g: Gossip): void {
  w.int(KINDS.indexOf(g.kind)).ustring(g.id).long(g.incarnation).ustring(g.address ?? null).buffer(g.meta ?? null).ustring(g.from ?? null);
}

function readGossip(r: JuteReader): Gossip {
  const kind = KINDS[r.int()];
  if (!kind) throw new DecodeError('bad gossip kind');
  const g: Gossip = { kind, id: r.string(), incarnation: r.long() };
  const address = r.ustring();
  const meta = r.buffer();
  const from = r.ustring();
  if (address !== null) g.address = address;
  if (meta !== null) g.meta = new Uint8Array(meta);
  if (from !== null) g.from = from;
  return g;
}

function writeMessage(w: JuteWriter, m: Message): void {
  w.int(TYPES.indexOf(m.type));
  switch (m.type) {
    case 'ping':
      w.int(m.seq).ustring(m.from).ustring(m.target);
      break;
    case 'ack':
      w.int(m.seq).ustring(m.from);
      break;
    case 'nack':
      w.int(m.seq).ustring(m.from);
      return;
    case 'ping-req':
      w.int(m.seq).ustring(m.from).ustring(m.target).ustring(m.targetAddress);
      break;
    case 'gossip':
      w.ustring(m.from);
      break;
    case 'push-pull':
      w.ustring(m.from).bool(m.join).bool(m.reply);
      w.vector(m.members, (x, s) => x.ustring(s.id).ustring(s.address).long(s.incarnation).int(STATES.indexOf(s.state)).buffer(s.meta));
      return;
  }
  w.vector(m.gossip, writeGossip);
}

function readMessage(r: JuteReader): Message {
  const type = TYPES[r.int()];
  switch (type) {
    case 'ping':
      return { type, seq: r.int(), from: r.string(), target: r.string(), gossip: readGossipList(r) };
    case 'ack':
      return { type, seq: r.int(), from: r.string(), gossip: readGossipList(r) };
    case 'nack':
      return { type, seq: r.int(), from: r.string() };
    case 'ping-req':
      return { type, seq: r.int(), from: r.string(), target: r.string(), targetAddress: r.string(), gossip: readGossipList(r) };
    case 'gossip':
      return { type, from: r.string(), gossip: readGossipList(r) };
    case 'push-pull': {
      const from = r.string();
      const join = r.bool();
      const reply = r.bool();
      const members =
        r.vector((x) => {
          const s = { id: x.string(), address: x.string(), incarnation: x.long(), state: STATES[x.int()], meta: new Uint8Array(x.buffer() ?? []) };
          if (!s.state) throw new DecodeError('bad member state');
          return s;
        }, 24) ?? [];
      return { type, from, join, reply, members };
    }
  }
  throw new DecodeError('unknown message type');
}

function readGossipList(r: JuteReader): Gossip[] {
  return r.vector(readGossip, 24) ?? [];
}

/** Encodes messages into one packet body (after the two header bytes), sealed by the caller if needed. */
export function encodeBody(sender: string, messages: Message[]): Buffer {
  const w = new JuteWriter(256);
  w.ustring(sender);
  w.vector(messages, writeMessage);
  return w.take();
}

export interface DecodedPacket {
  sender: string;
  messages: Message[];
}

export function decodeBody(body: Buffer): DecodedPacket | null {
  try {
    const r = new JuteReader(body);
    const sender = r.string();
    const messages = r.vector(readMessage, 4) ?? [];
    if (r.remaining !== 0) return null;
    return { sender, messages };
  } catch (e) {
    if (e instanceof DecodeError || e instanceof RangeError) return null;
    throw e;
  }
}
