/**
 * Encoded sizes of membership messages in the wire format (src/membership/wire.ts,
 * which a test holds to these figures), so the core can fill a datagram with news
 * up to a byte budget and the simulator can count bytes as the network would.
 */
import type { Gossip, MemberState, Message } from './types.js';

export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return n;
}

/** A string or byte field: a two-byte length, then the bytes. */
function field(s: string): number {
  return 2 + utf8Length(s);
}

function listSize(gossip: Gossip[]): number {
  let n = 2;
  for (const g of gossip) n += gossipSize(g);
  return n;
}

/** Flags-and-kind byte, incarnation, id, then address, meta and accuser when present. */
export function gossipSize(g: Gossip): number {
  return 5 + field(g.id) + (g.address !== undefined ? field(g.address) : 0) + (g.meta !== undefined ? 2 + g.meta.length : 0) + (g.from !== undefined ? field(g.from) : 0);
}

export function memberStateSize(m: MemberState): number {
  return field(m.id) + field(m.address) + 4 + 1 + 2 + m.meta.length;
}

/** One message: type byte and its fields (a gossip list is a two-byte count and its items). */
export function messageSize(msg: Message): number {
  switch (msg.type) {
    case 'ping':
      return 1 + 4 + field(msg.from) + field(msg.target) + listSize(msg.gossip);
    case 'ack':
      return 1 + 4 + field(msg.from) + listSize(msg.gossip);
    case 'nack':
      return 1 + 4 + field(msg.from);
    case 'ping-req':
      return 1 + 4 + field(msg.from) + field(msg.target) + field(msg.targetAddress) + listSize(msg.gossip);
    case 'gossip':
      return 1 + field(msg.from) + listSize(msg.gossip);
    case 'push-pull': {
      let n = 1 + field(msg.from) + 1 + 4;
      for (const m of msg.members) n += memberStateSize(m);
      return n;
    }
  }
}
