import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError } from '../../src/protocol/jute.js';
import { CreateMode, OpCode } from '../../src/protocol/opcodes.js';
import { DataTree } from '../../src/tree/data-tree.js';
import { decodeTxn, encodeTxn, TXN_FORMAT_VERSION, txnProposer, type TxnRecord } from '../../src/tree/txn-codec.js';
import type { WriteBody } from '../../src/tree/txn.js';
import { Rng } from '../support/random.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const DIGEST = [{ perms: 1, id: { scheme: 'digest', id: 'u:Hash=' } }, ...OPEN];

const BODIES: WriteBody[] = [
  { type: OpCode.createSession, timeoutMs: 30_000, password: Buffer.from('0123456789abcdef') },
  { type: OpCode.closeSession },
  { type: OpCode.create, path: '/a', data: Buffer.alloc(100, 7), acl: OPEN, flags: CreateMode.PERSISTENT },
  { type: OpCode.create2, path: '/a/e-', data: Buffer.alloc(0), acl: DIGEST, flags: CreateMode.EPHEMERAL_SEQUENTIAL },
  { type: OpCode.createContainer, path: '/c', data: Buffer.from('x'), acl: OPEN, flags: CreateMode.CONTAINER },
  { type: OpCode.createTTL, path: '/t', data: Buffer.from('ttl'), acl: OPEN, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 2 ** 40 - 1 },
  { type: OpCode.delete, path: '/a', version: 3 },
  { type: OpCode.deleteContainer, path: '/c', version: -1 },
  { type: OpCode.reconfig, data: Buffer.from('server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=100000001') },
  { type: OpCode.setData, path: '/ünïcode', data: Buffer.from([0, 255, 1]), version: -1 },
  { type: OpCode.setACL, path: '/a', acl: DIGEST, version: 7 },
  { type: OpCode.check, path: '/a', version: 0 },
  { type: OpCode.multi, ops: [] },
  {
    type: OpCode.multi,
    ops: [
      { type: OpCode.create, path: '/m', data: Buffer.from('m'), acl: OPEN, flags: 0 },
      { type: OpCode.createContainer, path: '/mc', data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.CONTAINER },
      { type: OpCode.createTTL, path: '/mt', data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 5 },
      { type: OpCode.check, path: '/m', version: 0 },
      { type: OpCode.setData, path: '/m', data: Buffer.from('n'), version: 0 },
      { type: OpCode.delete, path: '/m', version: -1 },
      // A read inside a write multi is replicated as sent; applying it fails the multi everywhere alike.
      { type: OpCode.getData, path: '/m', watch: true },
    ],
  },
];

function record(body: WriteBody, i = 0): TxnRecord {
  return {
    time: 1_700_000_000_000 + i,
    sessionId: i % 2 ? -0x7fff_ffff_ffff_fff0n : 0x0100_0000_0000_0001n,
    auth: i % 3 ? [] : [{ scheme: 'digest', id: 'u:Hash=' }, { scheme: 'ip', id: '127.0.0.1' }],
    body,
    origin: i % 2 ? 0xffff_ffff : 3,
    seq: i * 1_000_003,
  };
}

test('every body type round-trips with its header', () => {
  BODIES.forEach((body, i) => {
    const txn = record(body, i);
    const bytes = encodeTxn(txn);
    assert.equal(bytes[0], TXN_FORMAT_VERSION);
    assert.deepEqual(decodeTxn(bytes), txn, `body ${i} (op ${body.type})`);
    // Any Uint8Array view decodes, as a log entry's data is one.
    const copy = new Uint8Array(bytes.length + 3);
    copy.set(bytes, 3);
    assert.deepEqual(decodeTxn(copy.subarray(3)), txn);
  });
});

test('a decoded txn applies exactly as the original', () => {
  const original = new DataTree({ extendedTypesEnabled: true });
  const replica = new DataTree({ extendedTypesEnabled: true });
  let zxid = 0;
  for (const [i, body] of [BODIES[0], ...BODIES.slice(2)].entries()) {
    const txn = { ...record(body, i), sessionId: 5n };
    const decoded = decodeTxn(encodeTxn(txn));
    zxid++;
    const a = original.apply({ ...txn, zxid });
    const b = replica.apply({ ...decoded, zxid });
    assert.deepEqual(b, a, `op ${body.type}`);
  }
  assert.ok(original.get('/a') && original.get('/t'), 'the txns did apply');
  assert.deepEqual(replica.get('/a')!.stat(), original.get('/a')!.stat());
});

test('the session password is copied out of the decoded bytes', () => {
  const bytes = encodeTxn(record(BODIES[0]));
  const txn = decodeTxn(bytes);
  bytes.fill(0);
  assert.deepEqual((txn.body as { password: Buffer }).password, Buffer.from('0123456789abcdef'));
});

test('encoding rejects what the format cannot carry', () => {
  assert.throws(() => encodeTxn({ ...record(BODIES[1]), origin: -1 }), RangeError);
  assert.throws(() => encodeTxn({ ...record(BODIES[1]), origin: 2 ** 32 }), RangeError);
  assert.throws(() => encodeTxn({ ...record(BODIES[1]), seq: 1.5 }), RangeError);
  assert.throws(() => encodeTxn(record({ type: OpCode.createSession, timeoutMs: 1, password: Buffer.alloc(15) })), /16 bytes/);
  // A failed encode leaves nothing behind for the next one.
  assert.deepEqual(decodeTxn(encodeTxn(record(BODIES[2]))), record(BODIES[2]));
});

test('bad bytes are DecodeErrors: version, truncation, trailing bytes, non-write opcodes, nested multi, huge counts', () => {
  const good = encodeTxn(record(BODIES[12], 0));
  assert.throws(() => decodeTxn(Buffer.alloc(0)), DecodeError);
  assert.throws(() => decodeTxn(Buffer.from([TXN_FORMAT_VERSION + 1, ...good.subarray(1)])), /version/);
  for (let n = 0; n < good.length; n++) assert.throws(() => decodeTxn(good.subarray(0, n)), DecodeError, `truncated to ${n}`);
  assert.throws(() => decodeTxn(Buffer.concat([good, Buffer.alloc(1)])), /trailing/);

  const header = encodeTxn(record(BODIES[1], 0)).subarray(0, -4);
  const withBody = (...ints: number[]) => {
    const b = Buffer.alloc(ints.length * 4);
    ints.forEach((v, i) => b.writeInt32BE(v, i * 4));
    return Buffer.concat([header, b]);
  };
  assert.throws(() => decodeTxn(withBody(OpCode.getData)), /not a transaction/);
  assert.throws(() => decodeTxn(withBody(OpCode.ping)), /not a transaction/);
  assert.throws(() => decodeTxn(withBody(OpCode.multi, 1, OpCode.multi, 0)), /nested multi/);
  assert.throws(() => decodeTxn(withBody(OpCode.multi, 0x7fff_ffff)), /does not fit/);
  assert.throws(() => decodeTxn(withBody(OpCode.multi, -5)), /does not fit/);
  assert.throws(() => decodeTxn(withBody(OpCode.multi, 1, 999)), /unknown opcode/);
  assert.throws(() => decodeTxn(withBody(OpCode.setData, 0x7fff_ffff)), /exceeds/);
  assert.throws(() => decodeTxn(withBody(OpCode.createSession, 100, 4, 0)), /password of 4 bytes/);
  // Auth vector with a count far beyond the bytes left.
  const hugeAuth = Buffer.from(good);
  hugeAuth.writeInt32BE(0x7fff_ffff, 1 + 8 + 8 + 4 + 8);
  assert.throws(() => decodeTxn(hugeAuth), /vector of 2147483647/);
});

test('mutated encodings decode or throw DecodeError, nothing else', () => {
  const rng = new Rng(7);
  const seeds = BODIES.map((b, i) => encodeTxn(record(b, i)));
  let rejected = 0;
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.from(rng.pick(seeds));
    const flips = 1 + rng.int(4);
    for (let f = 0; f < flips; f++) {
      const at = rng.int(b.length);
      b[at] = rng.chance(0.5) ? rng.int(256) : rng.pick([0, 0xff, 0x7f, 0x80]);
    }
    try {
      decodeTxn(rng.chance(0.2) ? b.subarray(0, rng.int(b.length)) : b);
    } catch (e) {
      assert.ok(e instanceof DecodeError, `unexpected ${String(e)}`);
      rejected++;
    }
  }
  assert.ok(rejected > 1000, 'mutations are mostly caught');
});

test('the proposer and number are read without decoding the rest', () => {
  const bytes = encodeTxn({ time: 5, sessionId: -2n, auth: [{ scheme: 'digest', id: 'u:x' }], origin: 0xfffffffe, seq: 1795579138922060, body: { type: OpCode.closeSession } });
  assert.deepEqual(txnProposer(bytes), { origin: 0xfffffffe, seq: 1795579138922060 });
  assert.throws(() => txnProposer(bytes.subarray(0, 20)), /not a txn/);
});
