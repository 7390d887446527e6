/**
 * Fuzzes the frame decoder and the request parser in-process: random bytes and
 * mutated valid frames must only ever be rejected with the codec's own errors,
 * and a length field can never make the decoder allocate past the frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameError } from '../../src/protocol/frame.js';
import { DecodeError, JuteReader } from '../../src/protocol/jute.js';
import { OpCode } from '../../src/protocol/opcodes.js';
import { decodeRequestBody, encodeConnectRequest, encodeRequest, readConnectRequest, readRequestHeader, type RequestBody } from '../../src/protocol/records.js';
import { Rng } from '../support/random.js';

const CASES = Number(process.env.FUZZ_CASES ?? 100_000);
const MAX_FRAME = 1024 * 1024 + 1024;
const ACL = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

/** Valid frames of every shape, to mutate. */
const SEEDS: Buffer[] = [
  encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 5, timeOut: 4000, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false }),
  ...(
    [
      { type: OpCode.create, path: '/a/b', data: Buffer.from('data'), acl: ACL, flags: 3 },
      { type: OpCode.createTTL, path: '/t', data: Buffer.alloc(3), acl: ACL, flags: 5, ttl: 1000 },
      { type: OpCode.delete, path: '/a', version: -1 },
      { type: OpCode.getData, path: '/a', watch: true },
      { type: OpCode.setData, path: '/a', data: Buffer.alloc(10), version: 3 },
      { type: OpCode.setACL, path: '/a', acl: ACL, version: 0 },
      { type: OpCode.getChildren2, path: '/', watch: false },
      {
        type: OpCode.multi,
        ops: [
          { type: OpCode.create, path: '/m', data: Buffer.alloc(0), acl: ACL, flags: 0 },
          { type: OpCode.check, path: '/m', version: 0 },
          { type: OpCode.delete, path: '/m', version: 0 },
        ],
      },
      { type: OpCode.multiRead, ops: [{ type: OpCode.getData, path: '/x', watch: false }] },
      { type: OpCode.setWatches2, relativeZxid: 9, dataWatches: ['/a'], existWatches: ['/b'], childWatches: [], persistentWatches: ['/c'], persistentRecursiveWatches: [] },
      { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('u:p') },
      { type: OpCode.addWatch, path: '/a', mode: 1 },
      { type: OpCode.reconfig, joiningServers: 'x', leavingServers: null, newMembers: null, curConfigId: -1 },
      { type: OpCode.getEphemerals, prefixPath: '/' },
    ] as RequestBody[]
  ).map((b, i) => encodeRequest(i + 1, b)),
];

function mutate(rng: Rng, frame: Buffer): Buffer {
  const b = Buffer.from(frame);
  switch (rng.int(6)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b;
    case 1: // truncate
      return b.subarray(0, rng.int(b.length));
    case 2: // corrupt a 4-byte length-like field with an extreme value
    {
      const at = rng.int(Math.max(1, b.length - 4));
      b.writeInt32BE(rng.pick([-2, -1, 0x7fffffff, 0x40000000, MAX_FRAME + 1, rng.int(1 << 20)]), at);
      return b;
    }
    case 3: // random tail
      return Buffer.concat([b, Buffer.from(Array.from({ length: rng.int(32) }, () => rng.int(256)))]);
    case 4: // overwrite a byte range with random bytes
    {
      const at = rng.int(b.length);
      for (let i = at; i < Math.min(b.length, at + 8); i++) b[i] = rng.int(256);
      return b;
    }
    default: // pure random frame
      return Buffer.from(Array.from({ length: rng.int(64) }, () => rng.int(256)));
  }
}

/** What the server does with a frame body: header, then the body by opcode. */
function parse(body: Buffer, first: boolean): void {
  const r = new JuteReader(body);
  if (first) {
    readConnectRequest(r);
    return;
  }
  const h = readRequestHeader(r);
  decodeRequestBody(h.type, r);
}

test(`frame decoder and request parser reject ${CASES} fuzzed frames with their own errors only`, () => {
  const rng = new Rng(Number(process.env.FUZZ_SEED ?? 7));
  let rejected = 0;
  let parsed = 0;
  const heapBefore = process.memoryUsage().heapUsed;
  for (let i = 0; i < CASES; i++) {
    const frame = mutate(rng, rng.pick(SEEDS));
    const decoder = new FrameDecoder(MAX_FRAME);
    try {
      // Feed in random pieces, as a socket would.
      let off = 0;
      while (off < frame.length) {
        const n = 1 + rng.int(frame.length - off);
        for (const body of decoder.push(frame.subarray(off, off + n))) {
          parse(body, rng.chance(0.1));
          parsed++;
        }
        off += n;
      }
      assert.ok(decoder.buffered <= MAX_FRAME + 4, 'never holds more than one frame');
    } catch (e) {
      if (!(e instanceof DecodeError) && !(e instanceof FrameError)) {
        throw new Error(`case ${i}: ${frame.toString('hex')} threw ${(e as Error).stack}`);
      }
      rejected++;
    }
  }
  assert.ok(rejected > CASES / 10, `most mutations are rejected (${rejected})`);
  assert.ok(parsed > 0);
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 256 * 1024 * 1024, 'heap stays bounded');
});

test('a length field claiming gigabytes fails before allocating', () => {
  const decoder = new FrameDecoder(MAX_FRAME);
  const huge = Buffer.alloc(8);
  huge.writeInt32BE(0x7fffffff, 0);
  assert.throws(() => decoder.push(huge), FrameError);
  // A small frame whose string claims 2 GiB.
  const body = Buffer.alloc(16);
  body.writeInt32BE(1, 0);
  body.writeInt32BE(OpCode.getData, 4);
  body.writeInt32BE(0x7fffffff, 8);
  assert.throws(() => parse(body, false), DecodeError);
  const vec = Buffer.alloc(16);
  vec.writeInt32BE(1, 0);
  vec.writeInt32BE(OpCode.setWatches, 4);
  vec.writeInt32BE(0, 8);
  vec.writeInt32BE(0, 12);
  const withVector = Buffer.concat([vec, Buffer.from([0x7f, 0xff, 0xff, 0xff])]);
  assert.throws(() => parse(withVector, false), DecodeError);
});
