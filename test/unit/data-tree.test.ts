import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataTree } from '../../src/tree/data-tree.js';
import type { Txn, WriteBody } from '../../src/tree/txn.js';
import { CreateMode, EventType, OpCode } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import type { Stat } from '../../src/protocol/records.js';
import { invalidPathReason } from '../../src/tree/path.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

function harness(extendedTypesEnabled = true) {
  const tree = new DataTree({ extendedTypesEnabled });
  let zxid = 0;
  const apply = (body: WriteBody, sessionId = 1n, time = 1000) => tree.apply({ zxid: ++zxid, time, sessionId, auth: [], body } as Txn);
  const create = (path: string, flags: number = CreateMode.PERSISTENT, data = '', sessionId = 1n) =>
    apply({ type: OpCode.create2, path, data: Buffer.from(data), acl: OPEN, flags }, sessionId);
  const stat = (path: string) => (tree.read({ type: OpCode.exists, path, watch: false }, { sessionId: 1n, auth: [] }).response as { stat: Stat } | undefined)?.stat;
  apply({ type: OpCode.createSession, timeoutMs: 1000, password: Buffer.alloc(16) }, 1n);
  apply({ type: OpCode.createSession, timeoutMs: 1000, password: Buffer.alloc(16) }, 2n);
  return { tree, apply, create, stat, zxid: () => zxid };
}

test('the fresh tree has the system nodes with ZooKeeper\'s Stat', () => {
  const { stat } = harness();
  assert.equal(stat('/')!.cversion, -1);
  assert.equal(stat('/')!.numChildren, 1);
  assert.equal(stat('/zookeeper')!.cversion, -2);
  assert.equal(stat('/zookeeper/config')!.aversion, -1);
});

test('Stat fields evolve as ZooKeeper\'s: create, setData, child changes, setACL', () => {
  const h = harness();
  const c = h.create('/a', CreateMode.PERSISTENT, 'xy');
  assert.equal(c.err, 0);
  const z1 = h.zxid();
  assert.deepEqual({ ...h.stat('/a')!, ctime: 0, mtime: 0 }, { czxid: z1, mzxid: z1, pzxid: z1, ctime: 0, mtime: 0, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 2, numChildren: 0 });
  h.apply({ type: OpCode.setData, path: '/a', data: Buffer.from('xyz'), version: 0 });
  assert.equal(h.stat('/a')!.version, 1);
  assert.equal(h.stat('/a')!.mzxid, h.zxid());
  assert.equal(h.stat('/a')!.dataLength, 3);
  assert.equal(h.apply({ type: OpCode.setData, path: '/a', data: Buffer.alloc(0), version: 0 }).err, ErrorCode.BADVERSION);
  h.create('/a/b');
  h.apply({ type: OpCode.delete, path: '/a/b', version: -1 });
  const s = h.stat('/a')!;
  assert.equal(s.cversion, 2, 'one create and one delete');
  assert.equal(s.pzxid, h.zxid());
  h.apply({ type: OpCode.setACL, path: '/a', acl: OPEN, version: 0 });
  assert.equal(h.stat('/a')!.aversion, 1);
});

test('sequential names follow the parent\'s count of created children', () => {
  const h = harness();
  h.create('/q');
  assert.equal((h.create('/q/n-', CreateMode.PERSISTENT_SEQUENTIAL).response as { path: string }).path, '/q/n-0000000000');
  h.apply({ type: OpCode.delete, path: '/q/n-0000000000', version: -1 });
  assert.equal((h.create('/q/', CreateMode.EPHEMERAL_SEQUENTIAL).response as { path: string }).path, '/q/0000000001');
});

test('errors: NONODE, NODEEXISTS, NOCHILDRENFOREPHEMERALS, NOTEMPTY, BADARGUMENTS', () => {
  const h = harness();
  assert.equal(h.create('/x/y').err, ErrorCode.NONODE);
  h.create('/x');
  assert.equal(h.create('/x').err, ErrorCode.NODEEXISTS);
  h.create('/e', CreateMode.EPHEMERAL);
  assert.equal(h.create('/e/c').err, ErrorCode.NOCHILDRENFOREPHEMERALS);
  h.create('/x/y');
  assert.equal(h.apply({ type: OpCode.delete, path: '/x', version: -1 }).err, ErrorCode.NOTEMPTY);
  assert.equal(h.create('bad').err, ErrorCode.BADARGUMENTS);
  assert.equal(h.create('/x/.').err, ErrorCode.BADARGUMENTS);
  assert.equal(h.create('/nope//b').err, ErrorCode.NONODE, 'as ZooKeeper, the parent is looked up before the full path is validated');
  assert.equal(h.apply({ type: OpCode.delete, path: '/zookeeper', version: -1 }).err, ErrorCode.BADARGUMENTS);
  assert.equal(h.create('/ttl', CreateMode.PERSISTENT_WITH_TTL).err, ErrorCode.BADARGUMENTS);
  assert.equal(harness(false).create('/ttl', CreateMode.PERSISTENT_WITH_TTL).err, ErrorCode.UNIMPLEMENTED);
});

test('closeSession deletes the session\'s ephemerals in one transaction, with their events', () => {
  const h = harness();
  h.create('/g');
  h.create('/g/m1', CreateMode.EPHEMERAL, '', 2n);
  h.create('/g/m2', CreateMode.EPHEMERAL, '', 2n);
  h.create('/g/m3', CreateMode.EPHEMERAL, '', 1n);
  assert.deepEqual([...h.tree.ephemeralsOf(2n)].sort(), ['/g/m1', '/g/m2']);
  const r = h.apply({ type: OpCode.closeSession }, 2n);
  assert.deepEqual(r.events.map((e) => `${e.type}:${e.path}`), ['2:/g/m1', '4:/g', '2:/g/m2', '4:/g']);
  assert.equal(h.stat('/g/m1'), undefined);
  assert.ok(h.stat('/g/m3'));
  assert.equal(h.create('/late', CreateMode.EPHEMERAL, '', 2n).err, ErrorCode.SESSIONEXPIRED);
});

test('multi is all-or-nothing with ZooKeeper\'s per-op results', () => {
  const h = harness();
  const ok = h.apply({ type: OpCode.multi, ops: [
    { type: OpCode.create, path: '/m', data: Buffer.alloc(0), acl: OPEN, flags: 0 },
    { type: OpCode.create, path: '/m/c', data: Buffer.alloc(0), acl: OPEN, flags: 0 },
    { type: OpCode.check, path: '/m', version: 0 },
  ] });
  assert.equal(ok.err, 0);
  assert.deepEqual(ok.events.map((e) => e.type), [EventType.NodeCreated, EventType.NodeChildrenChanged, EventType.NodeCreated, EventType.NodeChildrenChanged]);
  const failed = h.apply({ type: OpCode.multi, ops: [
    { type: OpCode.delete, path: '/m/c', version: -1 },
    { type: OpCode.setData, path: '/m', data: Buffer.from('x'), version: 7 },
    { type: OpCode.create, path: '/other', data: Buffer.alloc(0), acl: OPEN, flags: 0 },
  ] });
  assert.deepEqual((failed.response as { results: unknown[] }).results, [
    { type: OpCode.error, err: ErrorCode.OK },
    { type: OpCode.error, err: ErrorCode.BADVERSION },
    { type: OpCode.error, err: ErrorCode.RUNTIMEINCONSISTENCY },
  ]);
  assert.deepEqual(failed.events, []);
  assert.ok(h.stat('/m/c'), 'the delete of a failed multi is rolled back');
  assert.equal(h.stat('/m')!.numChildren, 1);
  assert.equal(h.stat('/m')!.cversion, 1);
});

test('containers and TTL nodes become deletion candidates', () => {
  const h = harness();
  h.apply({ type: OpCode.createContainer, path: '/box', data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.CONTAINER });
  h.apply({ type: OpCode.createTTL, path: '/ttl', data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 500 });
  assert.deepEqual(h.tree.deletionCandidates(1000), [], 'a container that never had children stays; a fresh TTL node too');
  h.create('/box/x');
  h.apply({ type: OpCode.delete, path: '/box/x', version: -1 });
  assert.deepEqual(h.tree.deletionCandidates(1000), ['/box']);
  assert.deepEqual(h.tree.deletionCandidates(2000).sort(), ['/box', '/ttl']);
  assert.equal(h.stat('/box')!.ephemeralOwner, 0n, 'clients see no owner on containers');
  assert.equal(h.apply({ type: OpCode.deleteContainer, path: '/box', version: -1 }).err, 0);
});

test('path validation follows ZooKeeper\'s rules', () => {
  for (const ok of ['/', '/a', '/a/b.c', '/a/...', '/zookeeper']) assert.equal(invalidPathReason(ok), null, ok);
  for (const bad of ['', 'a', '/a/', '//a', '/a/./b', '/a/../b', '/.', '/a/\u0000', '/\u0001']) assert.notEqual(invalidPathReason(bad), null, JSON.stringify(bad));
});

test('a reconfig txn sets /zookeeper/config as ZooKeeper does (a setData of version -1), and its watchers hear of it', () => {
  const { tree, apply, stat, zxid } = harness();
  const members = 'server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181';
  const r = apply({ type: OpCode.reconfig, data: Buffer.from(members) });
  const text = `${members}\nversion=${zxid().toString(16)}`;
  assert.equal(r.err, 0);
  assert.deepEqual(r.events.map((e) => [e.type, e.path]), [[EventType.NodeDataChanged, '/zookeeper/config']]);
  const s = stat('/zookeeper/config')!;
  assert.equal(s.version, -1);
  assert.equal(s.mzxid, zxid());
  assert.equal(s.mtime, 1000, "the txn's time");
  assert.equal(tree.configMembers(), members);
  assert.equal(s.dataLength, text.length);
  assert.equal(tree.get('/zookeeper/config')!.data.toString(), text);
  assert.equal(tree.lastZxid, zxid());
});

test('proposals are accepted once per proposer and number, in increasing order', () => {
  const tree = new DataTree();
  assert.equal(tree.acceptProposal(1, 10), true);
  assert.equal(tree.acceptProposal(1, 10), false, 'the same proposal again is a copy');
  assert.equal(tree.acceptProposal(2, 3), true, 'each proposer counts on its own');
  assert.equal(tree.acceptProposal(1, 9), false, 'an earlier number after a later one was applied');
  assert.equal(tree.acceptProposal(1, 11), true);
  assert.deepEqual([...tree.proposers], [[1, 11], [2, 3]]);
});
