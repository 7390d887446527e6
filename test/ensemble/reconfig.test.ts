/**
 * ZooKeeper's reconfig against a running ensemble: a member added by a client joins as
 * a learner, catches up and becomes a participant; members leave; observers come and
 * go; the refusals come with ZooKeeper's error codes; /zookeeper/config shows the
 * membership and its watchers hear of every change.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateDigest } from '../../src/acl/acl.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { EventType, OpCode } from '../../src/protocol/opcodes.js';
import type { ConfigDataResponse, DataResponse } from '../../src/protocol/records.js';
import { TestEnsemble } from '../support/ensemble.js';
import { RawClient } from '../support/raw-client.js';

const SUPER = 'super:secret';
let e: TestEnsemble;

before(async () => {
  e = await TestEnsemble.start({
    size: 3,
    spares: 2,
    cfg: { reconfigEnabled: true, superDigest: generateDigest(SUPER) },
  });
  await e.waitForLeader();
});

after(async () => {
  await e?.close();
});

async function admin(id: number): Promise<RawClient> {
  const c = await RawClient.connect(e.member(id).clientPort);
  const r = await c.request({ type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from(SUPER) });
  assert.equal(r.err, 0);
  return c;
}

const reconfig = (c: RawClient, joining: string | null, leaving: string | null, curConfigId = -1, newMembers: string | null = null) =>
  c.request({ type: OpCode.reconfig, joiningServers: joining, leavingServers: leaving, newMembers, curConfigId });

async function config(c: RawClient): Promise<{ text: string; version: number; mzxid: number }> {
  await c.request({ type: OpCode.sync, path: '/zookeeper/config' });
  const r = await c.request({ type: OpCode.getData, path: '/zookeeper/config', watch: false });
  const d = r.response as DataResponse;
  return { text: d.data!.toString(), version: d.stat.version, mzxid: d.stat.mzxid };
}

const lines = (text: string) => text.split('\n').filter((l) => l.startsWith('server.')).map((l) => l.split('=')[0]);

async function eventually(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}\n${e.logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('/zookeeper/config lists the bootstrap members, with the version ZooKeeper writes', async () => {
  const c = await RawClient.connect(e.member(2).clientPort);
  try {
    const cfg = await config(c);
    assert.deepEqual(lines(cfg.text), ['server.1', 'server.2', 'server.3']);
    assert.match(cfg.text, new RegExp(`\\nversion=${cfg.mzxid.toString(16)}$`));
  } finally {
    await c.close();
  }
});

test('refusals: no permission, stale version, several changes at once, non-incremental, bad spec', async () => {
  const plain = await RawClient.connect(e.member(1).clientPort);
  const c = await admin(2);
  try {
    assert.equal((await reconfig(plain, null, '3')).err, ErrorCode.NOAUTH, 'only who may write /zookeeper/config');
    const { mzxid } = await config(c);
    assert.equal((await reconfig(c, null, '3', mzxid + 1)).err, ErrorCode.BADVERSION);
    assert.equal((await reconfig(c, `${e.spec(4)},${e.spec(5)}`, null)).err, ErrorCode.BADARGUMENTS);
    assert.equal((await reconfig(c, null, null, -1, 'server.1=127.0.0.1:1:2;3')).err, ErrorCode.BADARGUMENTS);
    assert.equal((await reconfig(c, 'server.4=nonsense', null)).err, ErrorCode.BADARGUMENTS);
    assert.equal((await reconfig(c, 'server.4=127.0.0.1:1:2:participant', null)).err, ErrorCode.BADARGUMENTS, 'a client port is required');
    assert.deepEqual(lines((await config(c)).text), ['server.1', 'server.2', 'server.3'], 'nothing changed');
  } finally {
    await plain.close();
    await c.close();
  }
});

test('a new participant joins through a follower: it catches up, votes, and serves', async () => {
  const leader = await e.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const watcher = await RawClient.connect(e.member(leader).clientPort);
  const c = await admin(follower);
  try {
    // Data the new member must catch up on.
    for (let i = 0; i < 200; i++) {
      await c.request({ type: OpCode.create, path: `/before-${i}`, data: Buffer.from(String(i)), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 });
    }
    await watcher.request({ type: OpCode.getData, path: '/zookeeper/config', watch: true });
    await e.startMember(4);
    const before = await config(c);
    const r = await reconfig(c, e.spec(4), null, before.mzxid);
    assert.equal(r.err, 0, 'reconfig succeeds');
    const answered = r.response as ConfigDataResponse;
    assert.deepEqual(lines(answered.data!.toString()), ['server.1', 'server.2', 'server.3', 'server.4']);
    assert.ok(answered.stat.mzxid > before.mzxid, 'the new config has a newer version');
    const events = await watcher.waitForEvents(1, 10_000);
    assert.deepEqual(events.map((ev) => [ev.type, ev.path]), [[EventType.NodeDataChanged, '/zookeeper/config']]);

    await eventually('member 4 follows', async () => (await e.mode(4)) === 'follower');
    const d = await RawClient.connect(e.member(4).clientPort);
    try {
      const got = await d.request({ type: OpCode.getData, path: '/before-199', watch: false });
      assert.equal((got.response as DataResponse).data!.toString(), '199', 'caught up with what was written before it joined');
      assert.equal((await d.request({ type: OpCode.create, path: '/from-4', data: Buffer.from('x'), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 })).err, 0);
      assert.deepEqual(lines((await config(d)).text), ['server.1', 'server.2', 'server.3', 'server.4']);
    } finally {
      await d.close();
    }
    const m = await e.mntr(await e.waitForLeader());
    assert.match(m.pk_members, /4:participant/);
  } finally {
    await watcher.close();
    await c.close();
  }
});

test('a member leaves: the rest carry on without it, and it stops serving', async () => {
  const leader = await e.waitForLeader();
  const leaving = [1, 2, 3, 4].find((id) => id !== leader)!;
  const c = await admin(leader);
  try {
    const r = await reconfig(c, null, String(leaving));
    assert.equal(r.err, 0);
    assert.ok(!lines((r.response as ConfigDataResponse).data!.toString()).includes(`server.${leaving}`));
    await eventually(`member ${leaving} stops serving`, async () => {
      const mode = await e.mode(leaving);
      return mode === 'not serving';
    });
    // Three participants remain; one of them can fail and writes still commit.
    const others = [1, 2, 3, 4].filter((id) => id !== leaving && id !== leader);
    await e.kill(others[0]);
    assert.equal((await c.request({ type: OpCode.create, path: '/after-leave', data: Buffer.alloc(0), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 })).err, 0);
    await e.startMember(others[0]);
    await e.kill(leaving);
  } finally {
    await c.close();
  }
});

test('an observer joins, serves reads and forwards writes, and never votes', async () => {
  const leader = await e.waitForLeader();
  const c = await admin(leader);
  try {
    await e.startMember(5);
    const r = await reconfig(c, e.spec(5, 'observer'), null);
    assert.equal(r.err, 0);
    assert.match((r.response as ConfigDataResponse).data!.toString(), /server\.5=.*:observer;/);
    await eventually('member 5 observes', async () => (await e.mode(5)) === 'observer');
    const o = await RawClient.connect(e.member(5).clientPort);
    try {
      assert.equal((await o.request({ type: OpCode.create, path: '/from-observer', data: Buffer.alloc(0), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 })).err, 0);
      await c.request({ type: OpCode.sync, path: '/' });
      assert.equal((await c.request({ type: OpCode.exists, path: '/from-observer', watch: false })).err, 0);
    } finally {
      await o.close();
    }
    const m = await e.mntr(leader);
    assert.match(m.pk_members, /5:observer/);
  } finally {
    await c.close();
  }
});
