import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { Message } from '../../src/consensus/types.js';
import { decodePeerFrame, encodePeerFrame, PEER_PROTOCOL_VERSION, type PeerFrame } from '../../src/ensemble/peer-codec.js';
import { PeerTransport } from '../../src/ensemble/peer-transport.js';
import { DecodeError } from '../../src/protocol/jute.js';
import { silentLogger } from '../../src/util/log.js';
import { Rng } from '../support/random.js';

const base = { from: 2, to: 3, term: 7 };
const messages: Message[] = [
  {
    ...base,
    type: 'append',
    index: 10,
    logTerm: 6,
    commit: 9,
    entries: [
      { index: 11, term: 7, kind: 'empty' },
      { index: 12, term: 7, kind: 'normal', data: Buffer.from('hello') },
      {
        index: 13,
        term: 7,
        kind: 'config',
        change: { op: 'add-learner', id: 4, context: '127.0.0.1:2891:3891:observer;127.0.0.1:2184' },
        config: { membership: { voters: [1, 2, 3], learners: [4] }, contexts: { 1: 'a', 2: 'b', 3: 'c', 4: '127.0.0.1:2891:3891:observer;127.0.0.1:2184' } },
      },
    ],
  },
  { ...base, type: 'append-resp', reject: true, index: 12, hintIndex: 11, hintTerm: 5 },
  { ...base, type: 'heartbeat', commit: 12, context: 3 },
  { ...base, type: 'heartbeat-resp', context: 3 },
  { ...base, type: 'pre-vote', index: 12, logTerm: 7, transfer: false },
  { ...base, type: 'vote', index: 12, logTerm: 7, transfer: true },
  { ...base, type: 'pre-vote-resp', reject: false },
  { ...base, type: 'vote-resp', reject: true },
  { ...base, type: 'snapshot', snapshot: { index: 100, term: 6, membership: { voters: [1, 2, 3], learners: [4] }, contexts: { 1: 'a', 2: 'b', 3: 'c', 4: 'd' } } },
  { ...base, type: 'snapshot-status', reject: false },
  { ...base, type: 'timeout-now' },
  { ...base, type: 'propose', entries: [{ index: 0, term: 0, kind: 'normal', data: Buffer.from([1, 2, 3]) }] },
  { ...base, type: 'read-index', context: 99 },
  { ...base, type: 'read-index-resp', index: 12, context: 99 },
];
const frames: PeerFrame[] = [
  { kind: 'hello', version: PEER_PROTOCOL_VERSION, from: 1, to: 2 },
  ...messages.map((message) => ({ kind: 'raft' as const, message })),
  { kind: 'touches', ids: [1n, -0x7fffffffffffffffn, 0x0100000000000001n] },
  { kind: 'heard', ticksAgo: 17 },
  { kind: 'snapshot-begin', meta: { index: 100, term: 6, membership: { voters: [1], learners: [] }, contexts: { 1: 'x' } } },
  { kind: 'snapshot-chunk', index: 100, term: 6, offset: 65536, data: Buffer.alloc(1000, 7) },
  { kind: 'reconfig', requestId: 5, change: { op: 'remove', id: 3, context: '' } },
  { kind: 'reconfig-result', requestId: 5, err: -14, index: 0 },
];

/** Entries' data come back as Buffers; compare as plain bytes. */
const plain = (f: unknown) => JSON.parse(JSON.stringify(f, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));

test('every peer frame survives a round trip', () => {
  for (const f of frames) {
    const bytes = encodePeerFrame(f);
    assert.equal(bytes.readInt32BE(0), bytes.length - 4, 'length prefix');
    assert.deepEqual(plain(decodePeerFrame(bytes.subarray(4))), plain(f), f.kind);
  }
});

test('truncated, extended and random frames fail with DecodeError, never anything else', () => {
  const rng = new Rng(7);
  let cases = 0;
  for (const f of frames) {
    const body = encodePeerFrame(f).subarray(4);
    for (let cut = 0; cut < body.length; cut++) {
      assert.throws(() => decodePeerFrame(body.subarray(0, cut)), DecodeError);
      cases++;
    }
    assert.throws(() => decodePeerFrame(Buffer.concat([body, Buffer.from([0])])), DecodeError);
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(body);
      m[rng.int(m.length)] = rng.int(256);
      try {
        decodePeerFrame(m);
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
      }
      cases++;
    }
  }
  assert.ok(cases > 3000);
});

async function transports(n: number, got: [number, number, PeerFrame][]) {
  const ts: PeerTransport[] = [];
  const addrs = new Map<number, { host: string; port: number }>();
  for (let id = 1; id <= n; id++) {
    const t = new PeerTransport({
      myid: id,
      listen: { host: '127.0.0.1', port: 0 },
      logger: silentLogger,
      onFrame: (from, f) => got.push([id, from, f]),
      onUnreachable: () => {},
    });
    addrs.set(id, await t.listen());
    ts.push(t);
  }
  for (const t of ts) t.setPeers(addrs);
  return { ts, addrs };
}

async function until(cond: () => boolean, what: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('members exchange frames over loopback; a stranger sending garbage is cut off without disturbing them', async () => {
  const got: [number, number, PeerFrame][] = [];
  const { ts, addrs } = await transports(3, got);
  try {
    await until(() => ts.every((t, i) => [1, 2, 3].filter((id) => id !== i + 1).every((id) => t.isConnected(id))), 'connections');
    const hb = (from: number, to: number): PeerFrame => ({ kind: 'raft', message: { type: 'heartbeat', from, to, term: 1, commit: 0, context: 0 } });
    for (let i = 0; i < 100; i++) {
      assert.ok(ts[0].send(2, hb(1, 2)));
      assert.ok(ts[2].send(1, hb(3, 1)));
    }
    await until(() => got.length === 200, '200 frames');
    assert.equal(got.filter(([at, from]) => at === 2 && from === 1).length, 100);
    assert.equal(got.filter(([at, from]) => at === 1 && from === 3).length, 100);

    // A connection that lies about who it is, or sends garbage, is closed; the members carry on.
    for (const payload of [Buffer.from('ruok'), encodePeerFrame({ kind: 'hello', version: 1, from: 2, to: 9 }), Buffer.from([0, 0, 0, 4, 0, 0, 0, 99])]) {
      const s = net.connect(addrs.get(1)!);
      await new Promise((r) => s.once('connect', r));
      s.write(payload);
      await new Promise((r) => s.once('close', r));
    }
    // A hello naming one member followed by a message claiming to be from another.
    const s = net.connect(addrs.get(1)!);
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.concat([encodePeerFrame({ kind: 'hello', version: 1, from: 2, to: 1 }), encodePeerFrame(hb(3, 1))]));
    await new Promise((r) => s.once('close', r));
    const before = got.length;
    assert.ok(ts[1].send(1, hb(2, 1)));
    await until(() => got.length === before + 1, 'a frame after the garbage');
  } finally {
    await Promise.all(ts.map((t) => t.close()));
  }
});

test('frames to a member that is down are dropped and counted; it is reached once it is back', async () => {
  const got: [number, number, PeerFrame][] = [];
  const { ts, addrs } = await transports(2, got);
  await ts[1].close();
  const msg: PeerFrame = { kind: 'touches', ids: [5n] };
  try {
    await until(() => !ts[0].isConnected(2), 'disconnect');
    assert.equal(ts[0].send(2, msg), false);
    assert.equal(ts[0].dropped.get(2), 1);
    const back = new PeerTransport({ myid: 2, listen: addrs.get(2)!, logger: silentLogger, onFrame: (from, f) => got.push([2, from, f]), onUnreachable: () => {} });
    await back.listen();
    ts[1] = back;
    await until(() => ts[0].isConnected(2), 'reconnect');
    assert.ok(ts[0].send(2, msg));
    await until(() => got.length === 1, 'delivery');
  } finally {
    await Promise.all(ts.map((t) => t.close()));
  }
});
