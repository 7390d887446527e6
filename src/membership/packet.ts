/** Whole packets: header, then the body in the clear or sealed with the key ring. */
import { decodeBody, encodeBody, FLAG_ENCRYPTED, WIRE_VERSION, type DecodedPacket } from './wire.js';
import type { Keyring } from './keyring.js';
import type { Message } from './core/types.js';

export type DropReason = 'parse' | 'auth';

export function encodePacket(sender: string, messages: Message[], keyring?: Keyring): Buffer {
  const header = Buffer.from([WIRE_VERSION, keyring ? FLAG_ENCRYPTED : 0]);
  const body = encodeBody(sender, messages);
  return Buffer.concat([header, keyring ? keyring.seal(header, body) : body]);
}

/** The packet's contents, or why it was dropped. With a key ring, clear packets are refused. */
export function decodePacket(packet: Buffer, keyring?: Keyring): DecodedPacket | DropReason {
  if (packet.length < 2 || packet[0] !== WIRE_VERSION) return 'parse';
  const header = packet.subarray(0, 2);
  const encrypted = (packet[1] & FLAG_ENCRYPTED) !== 0;
  if (keyring && !encrypted) return 'auth';
  if (!keyring && encrypted) return 'auth';
  let body = packet.subarray(2);
  if (keyring) {
    const opened = keyring.open(header, body);
    if (!opened) return 'auth';
    body = opened;
  }
  return decodeBody(body) ?? 'parse';
}
