/**
 * Requests no well-behaved client sends, answered as Apache ZooKeeper 3.8 answers
 * them: the same frames go to both servers and each answer is compared as sent (reply
 * xid, zxid relative to the last one, error code, body bytes, and whether the
 * connection stays open). Also the xids of auth and setWatches replies, which clients
 * match against their requests, and whoAmI after the super digest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer as startEmbedded } from '../../src/index.js';
import { generateDigest } from '../../src/acl/acl.js';
import { JuteReader, JuteWriter } from '../../src/protocol/jute.js';
import { OpCode } from '../../src/protocol/opcodes.js';
import { decodeResponseBody, encodeRequest, writeACL } from '../../src/protocol/records.js';
import { targets, type TestServer } from '../support/servers.js';
import { skipWithoutZooKeeper, startZooKeeper } from '../support/zookeeper.js';
import { WireSession } from './wire.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

function frame(xid: number, type: number, body: (w: JuteWriter) => void = () => {}): Buffer {
  const w = new JuteWriter();
  const start = w.beginFrame();
  w.int(xid).int(type);
  body(w);
  w.endFrame(start);
  return w.take();
}
const nullString = (w: JuteWriter) => w.int(-1);
const openAcl = (w: JuteWriter) => w.vector(OPEN, writeACL);

/** Each case is sent on a fresh session of its own, after /x exists. */
const CASES: Record<string, Buffer> = {
  'getData with a null path': frame(7, OpCode.getData, (w) => (nullString(w), w.bool(false))),
  'exists with a null path': frame(7, OpCode.exists, (w) => (nullString(w), w.bool(false))),
  'getChildren2 with a null path': frame(7, OpCode.getChildren2, (w) => (nullString(w), w.bool(false))),
  'getACL with a null path': frame(7, OpCode.getACL, nullString),
  'getAllChildrenNumber with a null path': frame(7, OpCode.getAllChildrenNumber, nullString),
  'checkWatches with a null path': frame(7, OpCode.checkWatches, (w) => (nullString(w), w.int(3))),
  'create with a null path': frame(7, OpCode.create, (w) => (nullString(w), w.buffer(Buffer.alloc(0)), openAcl(w), w.int(0))),
  'delete with a null path': frame(7, OpCode.delete, (w) => (nullString(w), w.int(-1))),
  'setData with a null path': frame(7, OpCode.setData, (w) => (nullString(w), w.buffer(Buffer.alloc(0)), w.int(-1))),
  'create with a null ACL': frame(7, OpCode.create, (w) => (w.ustring('/nacl'), w.buffer(Buffer.alloc(0)), w.int(-1), w.int(0))),
  'create with an ACL count of -2': frame(7, OpCode.create, (w) => (w.ustring('/nacl'), w.buffer(Buffer.alloc(0)), w.int(-2), w.int(0))),
  'create with a huge ACL count': frame(7, OpCode.create, (w) => (w.ustring('/hacl'), w.buffer(Buffer.alloc(0)), w.int(0x7fffffff))),
  'create with null data': frame(7, OpCode.create, (w) => (w.ustring('/ndata'), w.int(-1), openAcl(w), w.int(0))),
  'create cut short': frame(7, OpCode.create, (w) => w.ustring('/short')),
  'setData cut short': frame(7, OpCode.setData, (w) => (w.ustring('/x'), w.int(5))),
  'setData with trailing bytes': frame(7, OpCode.setData, (w) => (w.ustring('/x'), w.buffer(Buffer.from('z')), w.int(-1), w.int(9))),
  'getData with trailing bytes': frame(7, OpCode.getData, (w) => (w.ustring('/x'), w.bool(false), w.int(5))),
  'getData cut short': frame(7, OpCode.getData, (w) => w.ustring('/x')),
  'getChildren with a huge string length': frame(7, OpCode.getChildren, (w) => w.int(0x7fffffff)),
  'setWatches cut short': frame(7, OpCode.setWatches, (w) => (w.long(0), w.int(1))),
  'multi cut short': frame(7, OpCode.multi, (w) => (w.int(OpCode.check), w.bool(false), w.int(-1), w.ustring('/x'))),
  'multiRead cut short': frame(7, OpCode.multiRead, (w) => (w.int(OpCode.getData), w.bool(false), w.int(-1), w.ustring('/x'))),
  'whoAmI with trailing bytes': frame(7, OpCode.whoAmI, (w) => w.int(1)),
  'checkWatches with watcher type 4': encodeRequest(7, { type: OpCode.checkWatches, path: '/x', watcherType: 4 }),
  'checkWatches with watcher type 0': encodeRequest(7, { type: OpCode.checkWatches, path: '/x', watcherType: 0 }),
  'removeWatches with watcher type 4': encodeRequest(7, { type: OpCode.removeWatches, path: '/x', watcherType: 4 }),
  'addWatch with mode 2': encodeRequest(7, { type: OpCode.addWatch, path: '/x', mode: 2 }),
  'addWatch with mode -1': encodeRequest(7, { type: OpCode.addWatch, path: '/x', mode: -1 }),
  'multi containing getData': encodeRequest(7, { type: OpCode.multi, ops: [{ type: OpCode.getData, path: '/x', watch: false }] }),
  'multi mixing check and getChildren': encodeRequest(7, {
    type: OpCode.multi,
    ops: [
      { type: OpCode.check, path: '/x', version: -1 },
      { type: OpCode.getChildren, path: '/x', watch: false },
    ],
  }),
  'multiRead mixing getData and setData': encodeRequest(7, {
    type: OpCode.multiRead,
    ops: [
      { type: OpCode.getData, path: '/x', watch: false },
      { type: OpCode.setData, path: '/x', data: Buffer.alloc(0), version: -1 },
    ],
  }),
  'multiRead of a check only': encodeRequest(7, { type: OpCode.multiRead, ops: [{ type: OpCode.check, path: '/x', version: -1 }] }),
  'empty multiRead': encodeRequest(7, { type: OpCode.multiRead, ops: [] }),
  'unknown opcode 55': frame(7, 55),
  'unknown opcode -77': frame(7, -77),
  'opcode 0 (notification)': frame(7, OpCode.notification),
  'createSession from a client': frame(7, OpCode.createSession),
  'deleteContainer from a client on a plain node': frame(7, OpCode.deleteContainer, (w) => w.ustring('/x')),
  'reconfig on a standalone server': encodeRequest(7, { type: OpCode.reconfig, joiningServers: null, leavingServers: null, newMembers: null, curConfigId: -1 }),
  'sasl without SASL configured': frame(7, OpCode.sasl, (w) => w.buffer(Buffer.from('x'))),
  'sasl cut short': frame(7, OpCode.sasl),
  'auth with a digest, xid 9': encodeRequest(9, { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('u:p') }),
  'auth with an unknown scheme': encodeRequest(9, { type: OpCode.auth, authType: 0, scheme: 'nosuch', auth: Buffer.from('u:p') }),
  'auth with a null scheme': frame(9, OpCode.auth, (w) => (w.int(0), nullString(w), w.buffer(Buffer.from('a:b')))),
  'auth cut short': frame(9, OpCode.auth, (w) => (w.int(0), w.ustring('digest'))),
  'setWatches with xid 11 for a node that changed': encodeRequest(11, {
    type: OpCode.setWatches,
    relativeZxid: 0,
    dataWatches: ['/x'],
    existWatches: [],
    childWatches: [],
    persistentWatches: [],
    persistentRecursiveWatches: [],
  }),
  'ping with xid 5': frame(5, OpCode.ping),
  'closeSession with trailing bytes': frame(3, OpCode.closeSession, (w) => w.int(1)),
  'a frame shorter than a request header': Buffer.from([0, 0, 0, 3, 1, 2, 3]),
  'an empty frame': Buffer.from([0, 0, 0, 0]),
};

/** What a server sent back for one case, with zxids relative to the last one before it ("L"). */
async function answer(port: number, bytes: Buffer): Promise<string> {
  const s = await WireSession.open(port);
  try {
    // The reply to a sync carries the server's last zxid.
    s.send(encodeRequest(1, { type: OpCode.sync, path: '/' }));
    const last = (await s.reply(1)).zxid;
    const seen = s.frames.length;
    s.send(bytes);
    await s.until(() => s.closed || s.frames.some((f, i) => i >= seen && f.xid !== -1), 'a reply or a close').catch(() => {});
    // A ping after the answer tells a connection the server keeps from one it is closing.
    if (!s.closed) {
      const pings = () => s.frames.filter((f) => f.xid === -2).length;
      const before = pings();
      s.send(frame(-2, OpCode.ping));
      await s.until(() => s.closed || pings() > before, 'ping reply').catch(() => {});
      if (pings() > before) s.frames.splice(s.frames.map((f) => f.xid).lastIndexOf(-2), 1);
    }
    const rel = (z: number) => (z === last ? 'L' : z === last + 1 ? 'L+1' : String(z));
    const lines = s.frames.slice(seen).map((f) => `xid=${f.xid} zxid=${rel(f.zxid)} err=${f.err} body=${f.body.length <= 64 ? f.body.toString('hex') : `${f.body.length} bytes`}`);
    return `${lines.join(' | ') || 'no reply'}; ${s.closed ? 'closed' : 'open'}`;
  } finally {
    s.close();
  }
}

const skip = skipWithoutZooKeeper();
const servers = targets();
const answers = new Map<string, Map<string, string>>();

describe('odd requests', () => {
  const started: TestServer[] = [];
  before(async () => {
    for (const target of servers) {
      const server = await target.start();
      started.push(server);
      const setup = await WireSession.open(server.port);
      setup.send(encodeRequest(1, { type: OpCode.create, path: '/x', data: Buffer.from('1'), acl: OPEN, flags: 0 }));
      assert.equal((await setup.reply(1)).err, 0);
      setup.close();
      const got = new Map<string, string>();
      for (const [name, bytes] of Object.entries(CASES)) got.set(name, await answer(server.port, bytes));
      answers.set(target.name, got);
    }
  });
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  for (const name of Object.keys(CASES)) {
    test(name, { skip }, () => {
      const want = answers.get('zookeeper')!.get(name);
      assert.equal(answers.get('pulsekeeper')!.get(name), want);
    });
  }

  test('auth and setWatches replies echo the request xid (what clients match replies by)', () => {
    for (const [name, got] of answers) {
      assert.match(got.get('auth with a digest, xid 9')!, /^xid=9 zxid=0 err=0 /, name);
      assert.match(got.get('setWatches with xid 11 for a node that changed')!, /^xid=-1 zxid=-1 err=0 body=\S+ \| xid=11 zxid=L err=0 body=; open$/, name);
    }
  });
});

describe('whoAmI after authenticating with the super digest', () => {
  const SUPER = generateDigest('super:secret');
  const starters: Record<string, () => Promise<{ port: number; stop(): Promise<void> }>> = {
    async zookeeper() {
      const zk = await startZooKeeper({ forceSync: false, superDigest: SUPER });
      return { port: zk.port, stop: () => zk.stop() };
    },
    async pulsekeeper() {
      const pk = await startEmbedded({ superDigest: SUPER });
      return { port: pk.port, stop: () => pk.close() };
    },
  };

  for (const [name, start] of Object.entries(starters)) {
    test(`lists the digest user and ("super", "") besides the ip (${name})`, { skip: name === 'zookeeper' && skip }, async () => {
      const server = await start();
      try {
        const s = await WireSession.open(server.port);
        try {
          s.send(encodeRequest(1, { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('super:secret') }));
          s.send(encodeRequest(2, { type: OpCode.whoAmI }));
          const r = new JuteReader((await s.reply(2)).body);
          const info = (decodeResponseBody(OpCode.whoAmI, r) as { clientInfo: { authScheme: string; user: string }[] }).clientInfo;
          // ZooKeeper keeps a connection's ids in a hash set: their order means nothing.
          assert.deepEqual(info.map((i) => `${i.authScheme}:${i.user}`).sort(), ['digest:super', 'ip:127.0.0.1', 'super:']);
        } finally {
          s.close();
        }
      } finally {
        await server.stop();
      }
    });
  }
});

for (const target of servers) {
  describe(`multiRead on ${target.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await target.start();
    });
    after(async () => server?.stop());

    test('registers no watches, whatever its ops\' watch flags say', async () => {
      const reader = await WireSession.open(server.port);
      const writer = await WireSession.open(server.port);
      try {
        writer.send(encodeRequest(1, { type: OpCode.create, path: '/m', data: Buffer.from('0'), acl: OPEN, flags: 0 }));
        await writer.reply(1);
        reader.send(
          encodeRequest(1, {
            type: OpCode.multiRead,
            ops: [
              { type: OpCode.getData, path: '/m', watch: true },
              { type: OpCode.getChildren, path: '/m', watch: true },
            ],
          }),
        );
        assert.equal((await reader.reply(1)).err, 0);
        writer.send(encodeRequest(2, { type: OpCode.setData, path: '/m', data: Buffer.from('1'), version: -1 }));
        writer.send(encodeRequest(3, { type: OpCode.create, path: '/m/c', data: Buffer.alloc(0), acl: OPEN, flags: 0 }));
        await writer.reply(3);
        // A watch set by an ordinary read, fired after those changes, shows events would have arrived by now.
        reader.send(encodeRequest(2, { type: OpCode.exists, path: '/m/d', watch: true }));
        await reader.reply(2);
        writer.send(encodeRequest(4, { type: OpCode.create, path: '/m/d', data: Buffer.alloc(0), acl: OPEN, flags: 0 }));
        await reader.until(() => reader.frames.some((f) => f.event !== undefined), 'the NodeCreated event');
        assert.deepEqual(reader.frames.filter((f) => f.event).map((f) => f.event), [`1:/m/d`]);
      } finally {
        reader.close();
        writer.close();
      }
    });
  });
}
