import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameError } from '../../src/protocol/frame.js';
import { DecodeError, JuteReader, JuteWriter } from '../../src/protocol/jute.js';
import { OpCode } from '../../src/protocol/opcodes.js';
import {
  decodeRequestBody,
  decodeResponseBody,
  encodeConnectRequest,
  encodeReply,
  encodeRequest,
  readConnectRequest,
  readReplyHeader,
  readRequestHeader,
  type RequestBody,
  type ResponseBody,
} from '../../src/protocol/records.js';

const ACL = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const STAT = { czxid: 2 ** 40 + 3, mzxid: 5, ctime: 1_700_000_000_123, mtime: 1_700_000_000_456, version: 2, cversion: -1, aversion: 0, ephemeralOwner: -0x8000000000000000n, dataLength: 4, numChildren: 1, pzxid: 9 };

test('a ConnectRequest is byte-exact with the jute layout', () => {
  const frame = encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0x1_0000_0002, timeOut: 30000, sessionId: 0x0102030405060708n, passwd: Buffer.from([9, 9]), readOnly: true });
  const want = Buffer.from(
    '0000001f' + // length 31
      '00000000' + // protocolVersion
      '0000000100000002' + // lastZxidSeen
      '00007530' + // timeOut
      '0102030405060708' + // sessionId
      '00000002' + '0909' + // passwd
      '01', // readOnly
    'hex',
  );
  assert.deepEqual(frame, want);
  const back = readConnectRequest(new JuteReader(frame, 4));
  assert.equal(back.lastZxidSeen, 0x1_0000_0002);
  assert.equal(back.sessionId, 0x0102030405060708n);
  assert.equal(back.readOnly, true);
  // Old clients send no readOnly byte.
  const old = readConnectRequest(new JuteReader(frame.subarray(0, frame.length - 1), 4));
  assert.equal(old.readOnly, undefined);
});

test('a create request and an error reply are byte-exact', () => {
  const frame = encodeRequest(7, { type: OpCode.create, path: '/a', data: Buffer.from('x'), acl: ACL, flags: 1 });
  const want =
    '00000007' + '00000001' + // header: xid, type
    '00000002' + '2f61' + // path
    '00000001' + '78' + // data
    '00000001' + '0000001f' + '00000005' + Buffer.from('world').toString('hex') + '00000006' + Buffer.from('anyone').toString('hex') + // acl
    '00000001'; // flags
  assert.equal(frame.subarray(4).toString('hex'), want);
  assert.equal(frame.readInt32BE(0), want.length / 2);
  assert.equal(encodeReply(7, 0x10, -101, OpCode.getData).toString('hex'), '00000010' + '00000007' + '0000000000000010' + 'ffffff9b');
});

test('every request body round-trips', () => {
  const bodies: RequestBody[] = [
    { type: OpCode.create2, path: '/c', data: Buffer.from('d'), acl: ACL, flags: 3 },
    { type: OpCode.createTTL, path: '/t', data: Buffer.alloc(0), acl: ACL, flags: 5, ttl: 1234 },
    { type: OpCode.delete, path: '/d', version: 3 },
    { type: OpCode.exists, path: '/e', watch: true },
    { type: OpCode.setData, path: '/s', data: Buffer.from('v'), version: -1 },
    { type: OpCode.getACL, path: '/g' },
    { type: OpCode.setACL, path: '/g', acl: ACL, version: 2 },
    { type: OpCode.check, path: '/c', version: 1 },
    { type: OpCode.getEphemerals, prefixPath: '/p' },
    { type: OpCode.addWatch, path: '/w', mode: 1 },
    { type: OpCode.removeWatches, path: '/w', watcherType: 3 },
    { type: OpCode.reconfig, joiningServers: null, leavingServers: '2', newMembers: null, curConfigId: 7 },
    { type: OpCode.setWatches2, relativeZxid: 99, dataWatches: ['/a'], existWatches: [], childWatches: ['/b', '/c'], persistentWatches: ['/p'], persistentRecursiveWatches: ['/r'] },
    { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('u:p') },
    { type: OpCode.whoAmI },
    { type: OpCode.multi, ops: [{ type: OpCode.create, path: '/m', data: Buffer.alloc(0), acl: ACL, flags: 0 }, { type: OpCode.delete, path: '/m', version: 0 }] },
    { type: OpCode.multiRead, ops: [{ type: OpCode.getChildren, path: '/', watch: false }] },
  ];
  for (const body of bodies) {
    const frame = encodeRequest(1, body);
    const r = new JuteReader(frame, 4);
    const h = readRequestHeader(r);
    assert.equal(h.type, body.type);
    assert.deepEqual(decodeRequestBody(h.type, r), body);
    assert.equal(r.remaining, 0);
  }
});

test('response bodies round-trip, multi results included', () => {
  const cases: [number, ResponseBody][] = [
    [OpCode.create2, { path: '/x', stat: STAT }],
    [OpCode.getData, { data: Buffer.from('abc'), stat: STAT }],
    [OpCode.getChildren2, { children: ['a', 'b'], stat: STAT }],
    [OpCode.getACL, { acl: ACL, stat: STAT }],
    [OpCode.getAllChildrenNumber, { totalNumber: 12 }],
    [OpCode.whoAmI, { clientInfo: [{ authScheme: 'ip', user: '127.0.0.1' }] }],
    [OpCode.multi, { results: [{ type: OpCode.create, path: '/m' }, { type: OpCode.setData, stat: STAT }, { type: OpCode.error, err: -101 }] }],
  ];
  for (const [type, body] of cases) {
    const frame = encodeReply(3, 9, 0, type, body);
    const r = new JuteReader(frame, 4);
    assert.deepEqual(readReplyHeader(r), { xid: 3, zxid: 9, err: 0 });
    assert.deepEqual(decodeResponseBody(type, r), body);
  }
});

test('the reader rejects truncation and impossible lengths', () => {
  const w = new JuteWriter();
  w.ustring('/path').int(5);
  const full = w.take();
  for (let cut = 0; cut < full.length; cut++) {
    assert.throws(() => {
      const r = new JuteReader(full.subarray(0, cut));
      r.ustring();
      r.int();
    }, DecodeError);
  }
  const neg = Buffer.from('fffffff0', 'hex');
  assert.throws(() => new JuteReader(neg).buffer(), DecodeError);
  assert.equal(new JuteReader(Buffer.from('ffffffff', 'hex')).ustring(), null);
});

test('the frame decoder reassembles frames split at every byte', () => {
  const frames = [encodeRequest(1, { type: OpCode.getData, path: '/a', watch: true }), encodeRequest(2, { type: OpCode.sync, path: '/' })];
  const stream = Buffer.concat(frames);
  for (let cut = 0; cut <= stream.length; cut++) {
    const d = new FrameDecoder(1024);
    const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
    assert.deepEqual(got, frames.map((f) => f.subarray(4)));
    assert.equal(d.buffered, 0);
  }
});

test('an oversize or negative length is refused before anything is buffered', () => {
  const d = new FrameDecoder(100);
  const len = Buffer.alloc(4);
  len.writeInt32BE(101);
  assert.throws(() => d.push(len), FrameError);
  len.writeInt32BE(-1);
  assert.throws(() => new FrameDecoder(100).push(len), FrameError);
});
