/**
 * Watch events and replies in the order ZooKeeper promises, checked on the wire
 * against Apache ZooKeeper (proving the test), pulsekeeper and a pulsekeeper ensemble
 * (where commits are asynchronous and the writer may sit on another member):
 * - an event never overtakes a reply answered before the change, and comes before the
 *   reply of the write that caused it;
 * - a client hears of a change before any read of its own shows the new value.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventType, OpCode } from '../../src/protocol/opcodes.js';
import { encodeRequest } from '../../src/protocol/records.js';
import { targets, type TestServer } from '../support/servers.js';
import { WireSession, type Frame } from './wire.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const ROUNDS = 20;

const describeFrame = (f: Frame) => (f.event ? `event ${f.event}` : `reply ${f.xid}`);
const dataOf = (f: Frame) => f.body.subarray(4, 4 + f.body.readInt32BE(0)).toString();

for (const target of targets({ ensemble: true })) {
  describe(`watch event order on ${target.name}`, () => {
    let server: TestServer;
    const sessions: WireSession[] = [];
    before(async () => {
      server = await target.start();
    });
    after(async () => {
      for (const s of sessions) s.close();
      await server?.stop();
    });
    const open = async (member: number) => {
      const s = await WireSession.open(server.ports[member % server.ports.length]);
      sessions.push(s);
      return s;
    };

    test('reply(getData /y), event(/x), reply(setData /x) for a pipelined read and write', async () => {
      const a = await open(0);
      a.send(encodeRequest(1, { type: OpCode.create, path: '/x', data: Buffer.from('0'), acl: OPEN, flags: 0 }));
      a.send(encodeRequest(2, { type: OpCode.create, path: '/y', data: Buffer.from('0'), acl: OPEN, flags: 0 }));
      a.send(encodeRequest(3, { type: OpCode.getData, path: '/x', watch: true }));
      assert.equal((await a.reply(3)).err, 0);
      const from = a.frames.length;
      // One write carrying both requests, so the server has both before it answers either.
      a.send(Buffer.concat([encodeRequest(10, { type: OpCode.getData, path: '/y', watch: false }), encodeRequest(11, { type: OpCode.setData, path: '/x', data: Buffer.from('1'), version: -1 })]));
      await a.reply(11);
      assert.deepEqual(a.frames.slice(from).map(describeFrame), ['reply 10', `event ${EventType.NodeDataChanged}:/x`, 'reply 11']);
    });

    test(`a client sees the event before a read shows the new value (${ROUNDS} rounds, writer on another member)`, async () => {
      const reader = await open(0);
      const writer = await open(1);
      let xid = 100;
      writer.send(encodeRequest(xid, { type: OpCode.create, path: '/v', data: Buffer.from('v0'), acl: OPEN, flags: 0 }));
      assert.equal((await writer.reply(xid++)).err, 0);
      // The reader's member may not have applied the create yet.
      reader.send(encodeRequest(xid, { type: OpCode.sync, path: '/v' }));
      await reader.reply(xid++);
      for (let round = 1; round <= ROUNDS; round++) {
        const watch = xid++;
        reader.send(encodeRequest(watch, { type: OpCode.getData, path: '/v', watch: true }));
        assert.equal(dataOf(await reader.reply(watch)), `v${round - 1}`);
        writer.send(encodeRequest(xid++, { type: OpCode.setData, path: '/v', data: Buffer.from(`v${round}`), version: -1 }));
        // Read until the new value shows; the event must have come first.
        for (const deadline = Date.now() + 10_000; ; ) {
          assert.ok(Date.now() < deadline, `round ${round}: v${round} never showed`);
          const read = xid++;
          reader.send(encodeRequest(read, { type: OpCode.getData, path: '/v', watch: false }));
          const reply = await reader.reply(read);
          if (dataOf(reply) !== `v${round}`) continue;
          const replyAt = reader.frames.indexOf(reply);
          const eventAt = reader.frames.findIndex((f, i) => i > reader.frames.findIndex((g) => g.xid === watch) && f.event === `${EventType.NodeDataChanged}:/v`);
          assert.ok(eventAt >= 0 && eventAt < replyAt, `round ${round}: the read showing v${round} came before its event`);
          break;
        }
      }
    });
  });
}
