import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { CreateMode, OpCode } from '../../src/protocol/opcodes.js';
import type { ACL, MultiOp } from '../../src/protocol/records.js';
import { DataTree } from '../../src/tree/data-tree.js';
import { joinPath } from '../../src/tree/path.js';
import { beginSnapshot, loadSnapshot, SnapshotError, SnapshotLoader, type SnapshotProducer } from '../../src/tree/snapshot.js';
import type { Txn, WriteBody } from '../../src/tree/txn.js';
import { Rng } from '../support/random.js';

const OPEN: ACL[] = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const USER = { scheme: 'digest', id: 'user:c2VjcmV0' };

/** Everything a snapshot must keep, as plain values, found by walking the tree from the root. */
function dump(tree: DataTree) {
  const nodes: Record<string, unknown> = {};
  const walk = (path: string) => {
    const n = tree.get(path)!;
    nodes[path] = {
      stat: n.stat(),
      cversion: n.cversion,
      ephemeralOwner: n.ephemeralOwner,
      data: Buffer.from(n.data),
      acl: structuredClone(n.acl),
      children: [...n.children].sort(),
    };
    for (const c of n.children) walk(joinPath(path, c));
  };
  walk('/');
  return {
    nodes,
    nodeCount: tree.nodeCount,
    dataSize: tree.approximateDataSize,
    ephemerals: [...tree.allEphemerals()].map(([s, paths]) => [s, [...paths].sort()]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    sessions: [...tree.sessions].map(([id, s]) => [id, s.timeoutMs, Buffer.from(s.password)]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    lastZxid: tree.lastZxid,
    proposers: [...tree.proposers].sort((a, b) => a[0] - b[0]),
  };
}

/** A seeded stream of every kind of write, many of which fail as they would from real clients. */
class Workload {
  readonly rng: Rng;
  private zxid: number;
  private time = 1_000_000;
  readonly paths: string[] = ['/'];
  private readonly live: bigint[] = [];
  private nextSession = 0x100n;

  constructor(
    readonly tree: DataTree,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.zxid = tree.lastZxid;
  }

  apply(body: WriteBody, sessionId = this.live.length ? this.rng.pick(this.live) : 1n) {
    const auth = this.rng.chance(0.3) ? [USER] : [];
    const txn: Txn = { zxid: ++this.zxid, time: (this.time += 1 + this.rng.int(5)), sessionId, auth, body };
    // As the ensemble does: each applied txn records its proposer's number.
    this.tree.acceptProposal(1 + this.rng.int(3), this.zxid);
    const result = this.tree.apply(txn);
    const created = (result.response as { path?: string } | undefined)?.path;
    if (created) this.paths.push(created);
    for (const r of (result.response as { results?: { path?: string }[] } | undefined)?.results ?? []) if (r.path) this.paths.push(r.path);
    return result;
  }

  private path(): string {
    return this.rng.pick(this.paths);
  }

  private data(): Buffer {
    const b = Buffer.alloc(this.rng.int(120));
    for (let i = 0; i < b.length; i++) b[i] = this.rng.int(256);
    return b;
  }

  private acl(): ACL[] {
    return this.rng.weighted<ACL[]>([
      [6, OPEN],
      [1, [{ perms: 31, id: { scheme: 'auth', id: '' } }, { perms: 1, id: { scheme: 'world', id: 'anyone' } }]],
      [1, [{ perms: 7, id: { scheme: 'ip', id: '10.0.0.0/8' } }, ...OPEN]],
    ]);
  }

  private createOp(): MultiOp {
    const parent = this.path();
    const path = joinPath(parent, this.rng.pick(['a', 'b', 'c', 'd', 'seq-', 'e', 'f']) + (this.rng.chance(0.5) ? this.rng.int(30) : ''));
    const kind = this.rng.weighted([
      [5, 'plain'],
      [2, 'sequential'],
      [2, 'ephemeral'],
      [1, 'container'],
      [1, 'ttl'],
    ] as const);
    const base = { path, data: this.data(), acl: this.acl() };
    switch (kind) {
      case 'plain':
        return { type: OpCode.create2, ...base, flags: CreateMode.PERSISTENT };
      case 'sequential':
        return { type: OpCode.create, ...base, flags: this.rng.pick([CreateMode.PERSISTENT_SEQUENTIAL, CreateMode.EPHEMERAL_SEQUENTIAL]) };
      case 'ephemeral':
        return { type: OpCode.create, ...base, flags: CreateMode.EPHEMERAL };
      case 'container':
        return { type: OpCode.createContainer, ...base, flags: CreateMode.CONTAINER };
      case 'ttl':
        return { type: OpCode.createTTL, ...base, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 1 + this.rng.int(10_000) };
    }
  }

  private simpleOp(): MultiOp {
    return this.rng.weighted<() => MultiOp>([
      [6, () => this.createOp()],
      [1, () => ({ type: OpCode.delete, path: this.path(), version: -1 })],
      [2, () => ({ type: OpCode.setData, path: this.path(), data: this.data(), version: this.rng.chance(0.8) ? -1 : this.rng.int(3) })],
      [1, () => ({ type: OpCode.check, path: this.path(), version: this.rng.int(2) })],
    ])();
  }

  step(): void {
    const kind = this.rng.weighted([
      [10, 'op'],
      [1, 'setACL'],
      [1, 'session'],
      [0.5, 'close'],
      [1, 'multi'],
      [1, 'deleteContainer'],
    ] as const);
    switch (kind) {
      case 'op':
        this.apply(this.simpleOp() as WriteBody);
        return;
      case 'setACL':
        this.apply({ type: OpCode.setACL, path: this.path(), acl: this.acl(), version: -1 });
        return;
      case 'session': {
        const id = this.nextSession++;
        const password = Buffer.alloc(16, Number(id & 0xffn));
        this.apply({ type: OpCode.createSession, timeoutMs: 1000 + this.rng.int(30_000), password }, id);
        this.live.push(id);
        return;
      }
      case 'close': {
        if (this.live.length === 0) return;
        const id = this.live.splice(this.rng.int(this.live.length), 1)[0];
        this.apply({ type: OpCode.closeSession }, id);
        return;
      }
      case 'multi': {
        const ops = Array.from({ length: 1 + this.rng.int(4) }, () => this.simpleOp());
        this.apply({ type: OpCode.multi, ops });
        return;
      }
      case 'deleteContainer':
        this.apply({ type: OpCode.deleteContainer, path: this.path(), version: -1 });
        return;
    }
  }

  run(steps: number): this {
    for (let i = 0; i < steps; i++) this.step();
    return this;
  }
}

function drain(producer: SnapshotProducer, maxBytes?: number, between?: () => void): Buffer[] {
  const chunks: Buffer[] = [];
  for (let c = producer.next(maxBytes); c !== null; c = producer.next(maxBytes)) {
    chunks.push(c);
    between?.();
  }
  return chunks;
}

function loadSync(chunks: Iterable<Uint8Array>): DataTree {
  const loader = new SnapshotLoader({ extendedTypesEnabled: true });
  for (const c of chunks) loader.push(c);
  return loader.finish();
}

/** The same bytes cut at random places, down to single bytes. */
function recut(rng: Rng, bytes: Buffer, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + rng.int(maxPiece);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('random trees round-trip: every node, ACL, stat, child, ephemeral and session', async () => {
  for (const seed of [1, 2, 3]) {
    const tree = new DataTree({ extendedTypesEnabled: true });
    const work = new Workload(tree, seed).run(1500);
    assert.ok(tree.nodeCount > 150 && tree.ephemeralCount > 5 && tree.sessions.size > 5, 'the workload builds a varied tree');
    const before = dump(tree);
    const chunks = drain(beginSnapshot(tree), 128 + seed * 700);
    assert.ok(chunks.length > 10);
    const whole = Buffer.concat(chunks);
    assert.deepEqual(dump(loadSync(chunks)), before, `seed ${seed}`);
    assert.deepEqual(dump(loadSync(recut(work.rng, whole, 3))), before, 'cut into tiny pieces');
    assert.deepEqual(dump(loadSync(recut(work.rng, whole, 5000))), before, 'cut into large pieces');
    async function* slowly() {
      for (const c of recut(work.rng, whole, 700)) yield new Uint8Array(c);
    }
    const loaded = await loadSnapshot(slowly(), { extendedTypesEnabled: true });
    assert.deepEqual(dump(loaded), before, 'from an async iterable');
    assert.deepEqual(dump(tree), before, 'taking a snapshot changes nothing');

    // The loaded tree goes on exactly as the original: sequence numbers, versions, ephemerals, sessions.
    const a = new Workload(tree, seed * 100);
    const b = new Workload(loaded, seed * 100);
    a.paths.push(...work.paths);
    b.paths.push(...work.paths);
    for (let i = 0; i < 500; i++) {
      a.step();
      b.step();
    }
    assert.deepEqual(dump(loaded), dump(tree), 'the same writes after loading');
  }
});

test('a snapshot taken while writes go on between every chunk holds the tree as it began', () => {
  for (const seed of [11, 12, 13, 14]) {
    const tree = new DataTree({ extendedTypesEnabled: true });
    const work = new Workload(tree, seed).run(1200);
    const atBegin = dump(tree);
    const producer = beginSnapshot(tree);
    assert.equal(producer.lastZxid, atBegin.lastZxid);
    let writes = 0;
    const chunks = drain(producer, 200 + work.rng.int(800), () => {
      const n = work.rng.int(25);
      work.run(n);
      writes += n;
    });
    assert.ok(writes > 500, `${writes} writes ran during the snapshot`);
    assert.notDeepEqual(dump(tree), atBegin, 'the writes changed the tree');
    assert.deepEqual(dump(loadSync(chunks)), atBegin, `seed ${seed}`);
    // Copy-on-write has stopped: a new snapshot sees the tree as it is now.
    const now = dump(tree);
    assert.deepEqual(dump(loadSync(drain(beginSnapshot(tree)))), now);
  }
});

test('a node changed before the walk reaches it is emitted as it was at the start', () => {
  const tree = new DataTree({ extendedTypesEnabled: true });
  const work = new Workload(tree, 5);
  work.apply({ type: OpCode.createSession, timeoutMs: 5000, password: Buffer.alloc(16, 1) }, 77n);
  work.apply({ type: OpCode.create, path: '/x', data: Buffer.alloc(0), acl: OPEN, flags: 0 });
  for (let i = 0; i < 200; i++) work.apply({ type: OpCode.create, path: `/x/${i}`, data: Buffer.alloc(100, i), acl: OPEN, flags: 0 });
  work.apply({ type: OpCode.create, path: '/x/eph', data: Buffer.from('e'), acl: OPEN, flags: CreateMode.EPHEMERAL }, 77n);
  const atBegin = dump(tree);

  const producer = beginSnapshot(tree);
  const chunks = [producer.next(2000)!];
  // The walk follows creation order: the last nodes have not been reached yet.
  assert.ok(!chunks[0].includes('/x/150'));
  work.apply({ type: OpCode.setData, path: '/x/199', data: Buffer.from('new'), version: -1 });
  work.apply({ type: OpCode.setACL, path: '/x/198', acl: [{ perms: 1, id: { scheme: 'world', id: 'anyone' } }], version: -1 });
  work.apply({ type: OpCode.delete, path: '/x/197', version: -1 });
  work.apply({ type: OpCode.create, path: '/x/196/child', data: Buffer.alloc(0), acl: OPEN, flags: 0 });
  work.apply({ type: OpCode.closeSession }, 77n);
  work.apply({ type: OpCode.create, path: '/later', data: Buffer.alloc(0), acl: OPEN, flags: 0 });
  // Deleted and created again under the same path: still the old node.
  work.apply({ type: OpCode.delete, path: '/x/195', version: -1 });
  work.apply({ type: OpCode.create, path: '/x/195', data: Buffer.from('again'), acl: OPEN, flags: 0 });
  // A failed multi is undone after its first op already saved the node.
  const failed = work.apply({
    type: OpCode.multi,
    ops: [
      { type: OpCode.setData, path: '/x/194', data: Buffer.from('undone'), version: -1 },
      { type: OpCode.delete, path: '/x/193', version: -1 },
      { type: OpCode.check, path: '/none', version: 0 },
    ],
  });
  assert.equal((failed.response as { results: { err?: number }[] }).results[2].err, -101);
  chunks.push(...drain(producer, 2000));

  const loaded = loadSync(chunks);
  assert.deepEqual(dump(loaded), atBegin);
  assert.equal(loaded.get('/x/199')!.data[0], 199);
  assert.equal(loaded.get('/later'), undefined);
  assert.equal(loaded.get('/x/196')!.children.size, 0);
  assert.deepEqual([...loaded.ephemeralsOf(77n)], ['/x/eph']);
});

test('ACL lists are written once and shared by the loaded nodes', () => {
  const tree = new DataTree();
  const work = new Workload(tree, 9);
  for (let i = 0; i < 1000; i++) work.apply({ type: OpCode.create, path: `/n${i}`, data: Buffer.alloc(0), acl: [...OPEN], flags: 0 });
  const bytes = Buffer.concat(drain(beginSnapshot(tree)));
  // Two lists in all: the open one, and /zookeeper/config's read-only one.
  assert.equal(bytes.toString('latin1').split('anyone').length - 1, 2);
  const loaded = loadSync([bytes]);
  assert.equal(loaded.get('/n1')!.acl, loaded.get('/n999')!.acl);
});

test('one snapshot at a time; abort and completion let the next one begin', () => {
  const tree = new DataTree();
  new Workload(tree, 3).run(200);
  const first = beginSnapshot(tree);
  assert.throws(() => beginSnapshot(tree), /already in progress/);
  first.next(100);
  first.abort();
  assert.equal(first.next(), null);
  const second = beginSnapshot(tree);
  drain(second);
  assert.equal(second.next(), null);
  drain(beginSnapshot(tree));
});

test('chunks stay within maxBytes unless one record is larger', () => {
  const tree = new DataTree();
  const work = new Workload(tree, 4).run(300);
  work.apply({ type: OpCode.create, path: '/big', data: Buffer.alloc(5000, 1), acl: OPEN, flags: 0 });
  const chunks = drain(beginSnapshot(tree), 1000);
  assert.ok(chunks.every((c) => c.length <= 1000 || c.length > 5000), chunks.map((c) => c.length).join());
  assert.ok(chunks.some((c) => c.length > 5000));
  assert.deepEqual(dump(loadSync(chunks)), dump(tree));
});

function snapshotBytes(seed: number, steps: number): Buffer {
  const tree = new DataTree({ extendedTypesEnabled: true });
  new Workload(tree, seed).run(steps);
  return Buffer.concat(drain(beginSnapshot(tree)));
}

test('every truncation and every changed byte fails with a SnapshotError', () => {
  const good = snapshotBytes(21, 60);
  assert.ok(good.length > 1000);
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => loadSync([good.subarray(0, n)]), (e: Error) => e instanceof SnapshotError && /truncated/.test(e.message), `cut at ${n}`);
  }
  for (let i = 0; i < good.length; i++) {
    const bad = Buffer.from(good);
    bad[i] ^= 1 << (i % 8);
    assert.throws(() => loadSync(recut(new Rng(i), bad, 200)), SnapshotError, `byte ${i} changed`);
  }
  assert.throws(() => loadSync([good, Buffer.from([0])]), /after the end record/);
  assert.throws(() => loadSync(recut(new Rng(3), Buffer.concat([good, Buffer.from('more')]), 2)), /after the end record/);
  assert.throws(() => loadSync([Buffer.from('PKSX\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000')]), /bad magic/);
  const otherVersion = Buffer.from(good);
  otherVersion[4] = 99;
  assert.throws(() => loadSync([otherVersion]), /format version 99/);
});

/** A stream built by hand, with a correct checksum, to reach the structural checks. */
function craft(records: [number, Buffer][], counts?: [number, number, number, number]): Buffer {
  const parts: Buffer[] = [Buffer.from('PKSN\u0002'), Buffer.alloc(8)];
  for (const [type, payload] of records) {
    const head = Buffer.alloc(5);
    head.writeInt32BE(payload.length + 1);
    head[4] = type;
    parts.push(head, payload);
  }
  const body = Buffer.concat(parts);
  const end = Buffer.alloc(25);
  end.writeInt32BE(21);
  end[4] = 4;
  const count = (type: number) => records.filter((r) => r[0] === type).length;
  const [n, s, a, p] = counts ?? [count(3), count(1), count(2), count(5)];
  end.writeInt32BE(n, 5);
  end.writeInt32BE(s, 9);
  end.writeInt32BE(a, 13);
  end.writeInt32BE(p, 17);
  end.writeUInt32BE(crc32(body), 21);
  return Buffer.concat([body, end]);
}

function nodeRecord(path: string, acl = 0): [number, Buffer] {
  const p = Buffer.from(path);
  const b = Buffer.alloc(4 + p.length + 4 + 4 + 5 * 8 + 3 * 4 + 8);
  b.writeInt32BE(p.length);
  p.copy(b, 4);
  b.writeInt32BE(0, 4 + p.length);
  b.writeInt32BE(acl, 8 + p.length);
  return [3, b];
}

const openAclRecord: [number, Buffer] = [2, Buffer.from('000000010000001f00000005776f726c6400000006616e796f6e65', 'hex')];

test('well-checksummed but inconsistent snapshots are refused with the reason', () => {
  assert.equal(loadSync([craft([openAclRecord, nodeRecord('/'), nodeRecord('/a')])]).get('/a')!.data.length, 0);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/a')])]), /no root node/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), nodeRecord('/a/b')])]), /\/a\/b has no parent/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), nodeRecord('/')])]), /node \/ appears twice/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), nodeRecord('/a', 1)])]), /ACL list 1, of 1 read/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), nodeRecord('/a/../b')])]), /bad node path/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/')], [2, 0, 1, 0])]), /end record counts 2 nodes/);
  const proposer = (origin: number, seq: number): [number, Buffer] => {
    const b = Buffer.alloc(12);
    b.writeInt32BE(origin);
    b.writeBigInt64BE(BigInt(seq), 4);
    return [5, b];
  };
  assert.deepEqual([...loadSync([craft([openAclRecord, nodeRecord('/'), proposer(2, 77)])]).proposers], [[2, 77]]);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), proposer(2, 7), proposer(2, 8)])]), /proposer 2 appears twice/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), proposer(2, 7)], [1, 0, 1, 0])]), /0 proposers/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), [9, Buffer.alloc(3)]])]), /unknown record type 9/);
  assert.throws(() => loadSync([craft([openAclRecord, nodeRecord('/'), [1, Buffer.alloc(12)]])]), /session record: truncated/);
  const [, extra] = nodeRecord('/');
  assert.throws(() => loadSync([craft([openAclRecord, [3, Buffer.concat([extra, Buffer.alloc(2)])]])]), /2 unexpected trailing bytes/);
});

test('a length field cannot make the loader allocate: huge lengths are refused at once', () => {
  const huge = craft([openAclRecord, nodeRecord('/')]).subarray(0, 13 + 4);
  huge.writeInt32BE(0x7fff_ffff, 13);
  assert.throws(() => loadSync([huge]), /record length 2147483647 out of range/);
  const loader = new SnapshotLoader({ maxRecordBytes: 1000 });
  const big = Buffer.from(huge);
  big.writeInt32BE(1001, 13);
  assert.throws(() => loader.push(big), /out of range \(1\.\.1000\)/);
  const negative = Buffer.from(huge);
  negative.writeInt32BE(-4, 13);
  assert.throws(() => loadSync(recut(new Rng(1), negative, 2)), /record length -4/);
});
