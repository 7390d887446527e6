import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring } from '../../src/membership/keyring.js';
import { decodePacket, encodePacket } from '../../src/membership/packet.js';
import { decodeBody, encodeBody, MAX_META_BYTES, MAX_NAME_BYTES } from '../../src/membership/wire.js';
import { messageSize, utf8Length } from '../../src/membership/core/size.js';
import type { Message } from '../../src/membership/core/types.js';
import { Rng } from '../support/random.js';

const MESSAGES: Message[] = [
  { type: 'ping', seq: 7, from: 'a', target: 'b', gossip: [{ kind: 'suspect', id: 'c', incarnation: 1_700_000_000, from: 'a' }] },
  { type: 'ack', seq: 7, from: 'b', gossip: [{ kind: 'alive', id: 'd', incarnation: 3, address: '127.0.0.1:7003', meta: Uint8Array.from([1, 2, 3]) }] },
  { type: 'nack', seq: 9, from: 'c' },
  { type: 'ping-req', seq: 11, from: 'a', target: 'e', targetAddress: '[::1]:7005', gossip: [] },
  { type: 'gossip', from: 'a', gossip: [{ kind: 'dead', id: 'f', incarnation: 4, from: 'f' }] },
  {
    type: 'push-pull',
    from: 'a',
    join: true,
    reply: false,
    members: [{ id: 'a', address: '127.0.0.1:7001', incarnation: 5, state: 'suspect', meta: Uint8Array.from([9]) }],
  },
];

test('every message survives the wire, in the clear and sealed', () => {
  const ring = new Keyring([Keyring.generateKey()]);
  for (const keyring of [undefined, ring]) {
    const packet = encodePacket('127.0.0.1:7001', MESSAGES, keyring);
    const back = decodePacket(packet, keyring);
    assert.notEqual(typeof back, 'string');
    assert.deepEqual(back, { sender: '127.0.0.1:7001', messages: MESSAGES });
  }
});

test('encoded sizes are exactly what the core budgets with', () => {
  const names = ['127.0.0.1:7001', 'nœud-é', 'ノード', '🦀:1'];
  for (const sender of names) {
    for (const m of MESSAGES) {
      const withNames: Message = JSON.parse(JSON.stringify(m, (k, v) => (k === 'from' || k === 'id' ? sender : v)), (k, v) => (k === 'meta' ? Uint8Array.from(Object.values(v)) : v));
      assert.equal(encodeBody(sender, [withNames]).length, 2 + utf8Length(sender) + 1 + messageSize(withNames), `${m.type} from ${sender}`);
    }
  }
  assert.equal(encodeBody('s', MESSAGES).length, 2 + 1 + 1 + MESSAGES.reduce((n, m) => n + messageSize(m), 0));
});

test('names and metadata beyond their limits are refused when decoding', () => {
  const long = 'x'.repeat(MAX_NAME_BYTES + 1);
  assert.equal(decodeBody(encodeBody(long, [])), null);
  assert.equal(decodeBody(encodeBody('a', [{ type: 'gossip', from: 'a', gossip: [{ kind: 'alive', id: long, incarnation: 1, address: 'b' }] }])), null);
  const bigMeta = new Uint8Array(MAX_META_BYTES + 1);
  assert.equal(decodeBody(encodeBody('a', [{ type: 'gossip', from: 'a', gossip: [{ kind: 'alive', id: 'b', incarnation: 1, address: 'b', meta: bigMeta }] }])), null);
  assert.notEqual(decodeBody(encodeBody('a', [{ type: 'gossip', from: 'a', gossip: [{ kind: 'alive', id: 'b', incarnation: 1, address: 'b', meta: bigMeta.subarray(1) }] }])), null);
});

test('tampered, foreign-key and clear packets are dropped for authentication', () => {
  const a = new Keyring([Keyring.generateKey()]);
  const b = new Keyring([Keyring.generateKey()]);
  const sealed = encodePacket('x', MESSAGES.slice(0, 1), a);
  assert.equal(decodePacket(sealed, b), 'auth');
  const tampered = Buffer.from(sealed);
  tampered[tampered.length - 20] ^= 1;
  assert.equal(decodePacket(tampered, a), 'auth');
  const header = Buffer.from(sealed);
  header[1] = 0;
  assert.equal(decodePacket(header, a), 'auth', 'a clear packet is refused by a keyed member');
  assert.equal(decodePacket(sealed, undefined), 'auth', 'a sealed packet means nothing to an unkeyed member');
});

test('key rotation: old and new keys overlap, then the old one goes', () => {
  const oldKey = Keyring.generateKey();
  const newKey = Keyring.generateKey();
  const a = new Keyring([oldKey]);
  const b = new Keyring([oldKey]);
  b.add(newKey);
  b.use(newKey); // b now seals with the new key
  assert.equal(decodePacket(encodePacket('b', MESSAGES, b), a), 'auth', 'a cannot read b yet');
  a.add(newKey);
  assert.notEqual(typeof decodePacket(encodePacket('b', MESSAGES, b), a), 'string');
  assert.notEqual(typeof decodePacket(encodePacket('a', MESSAGES, a), b), 'string', 'b still reads the old key');
  a.use(newKey);
  a.remove(oldKey);
  b.remove(oldKey);
  assert.notEqual(typeof decodePacket(encodePacket('a', MESSAGES, a), b), 'string');
  assert.throws(() => a.remove(newKey), /primary/);
});

test('random and mutated packets are dropped and counted, never thrown', () => {
  const rng = new Rng(5);
  const ring = new Keyring([Keyring.generateKey()]);
  const seeds = [encodePacket('127.0.0.1:1', MESSAGES), encodePacket('127.0.0.1:1', MESSAGES, ring)];
  let dropped = 0;
  for (let i = 0; i < 30_000; i++) {
    const src = rng.pick(seeds);
    const p = Buffer.from(rng.chance(0.2) ? Array.from({ length: rng.int(80) }, () => rng.int(256)) : src);
    for (let k = 0, n = 1 + rng.int(4); k < n && p.length; k++) p[rng.int(p.length)] = rng.int(256);
    const cut = rng.chance(0.3) ? p.subarray(0, rng.int(p.length + 1)) : p;
    const r = decodePacket(cut, src === seeds[1] ? ring : undefined);
    if (typeof r === 'string') dropped++;
  }
  assert.ok(dropped > 20_000, `${dropped} dropped`);
});
