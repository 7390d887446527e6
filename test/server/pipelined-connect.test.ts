/**
 * Requests sent in the same write as the ConnectRequest, before its ConnectResponse has
 * come back, checked on the wire against Apache ZooKeeper (proving the test), pulsekeeper
 * in memory, on the durable log and on a follower and the leader of an ensemble (where
 * the session is created only once its createSession is committed): the ConnectResponse
 * comes first, then every request's reply in order, on the new or reattached session.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { JuteReader } from '../../src/protocol/jute.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { OpCode } from '../../src/protocol/opcodes.js';
import { encodeConnectRequest, encodeRequest, readConnectResponse, readReplyHeader, type ConnectResponse, type RequestBody } from '../../src/protocol/records.js';
import { RawClient } from '../support/raw-client.js';
import { targets, type TestServer } from '../support/servers.js';
import { WAIT_MS } from './wire.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const TIMEOUT = 10_000;

interface Answer {
  /** The first frame: "ConnectResponse" if it is one, else as a reply ("xid err"). */
  first: string;
  connect?: ConnectResponse;
  /** The frames after the first, as "xid err", in arrival order. */
  replies: string[];
  /** Data of the getData reply, if one came. */
  data?: string;
}

/**
 * Opens a connection and writes the ConnectRequest and the requests (xids 1, 2, ...) in
 * one write; once a frame for each has come (the ConnectResponse and one reply per
 * request), resolves with them in arrival order. Fails, showing what came, if the server
 * closes the connection first or WAIT_MS pass.
 */
async function pipelined(port: number, session: { sessionId: bigint; passwd: Buffer; lastZxidSeen: number }, requests: RequestBody[]): Promise<Answer> {
  const socket: Socket = connect({ host: '127.0.0.1', port, noDelay: true });
  const frames: Buffer[] = [];
  const decoder = new FrameDecoder(1024 * 1024);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${frames.length} frames of ${requests.length + 1} within ${WAIT_MS} ms`)), WAIT_MS);
      socket.on('data', (chunk: Buffer) => {
        frames.push(...decoder.push(chunk));
        if (frames.length < requests.length + 1) return;
        clearTimeout(timer);
        resolve();
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        reject(new Error(`connection closed after ${frames.length} frames of ${requests.length + 1}: ${frames.map(summary).join(', ') || 'none'}`));
      });
      socket.write(
        Buffer.concat([
          encodeConnectRequest({ protocolVersion: 0, timeOut: TIMEOUT, readOnly: false, ...session }),
          ...requests.map((body, i) => encodeRequest(i + 1, body)),
        ]),
      );
    });
    const answer: Answer = { first: summary(frames[0]), replies: frames.slice(1).map(summary) };
    if (answer.first === 'ConnectResponse') answer.connect = readConnectResponse(new JuteReader(frames[0]));
    const getData = requests.findIndex((r) => r.type === OpCode.getData);
    const reply = frames.slice(1).find((f) => f.readInt32BE(0) === getData + 1);
    if (reply && reply.readInt32BE(12) === 0) answer.data = reply.subarray(20, 20 + reply.readInt32BE(16)).toString();
    return answer;
  } finally {
    socket.destroy();
  }
}

/** "ConnectResponse" (protocol version 0, a 16-byte password; no reply here has xid 0), else a reply's "xid err". */
function summary(f: Buffer): string {
  if (f.length >= 36 && f.readInt32BE(0) === 0 && f.readInt32BE(16) === 16) return 'ConnectResponse';
  if (f.length < 16) return `${f.length}-byte frame`;
  const h = readReplyHeader(new JuteReader(f));
  return `${h.xid} ${h.err}`;
}

for (const target of targets({ ensemble: true, durable: true })) {
  describe(`requests pipelined behind the ConnectRequest on ${target.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await target.start();
    });
    after(async () => server?.stop());

    /** Where sessions are opened: a follower and the leader of an ensemble, the server otherwise. */
    const members = (): { name: string; port: number }[] =>
      server.ensemble ? [{ name: 'follower', port: server.ports[0] }, { name: 'leader', port: server.ports[1] }] : [{ name: target.name, port: server.port }];

    test('a new session: the ConnectResponse first, then the exists, create and getData sent with it, in order', async () => {
      for (const { name, port } of members()) {
        const path = `/pipelined-${name}`;
        // A read first: nothing ahead of it on the connection but the session being created.
        const a = await pipelined(port, { sessionId: 0n, passwd: Buffer.alloc(16), lastZxidSeen: 0 }, [
          { type: OpCode.exists, path, watch: false },
          { type: OpCode.create, path, data: Buffer.from(name), acl: OPEN, flags: 0 },
          { type: OpCode.getData, path, watch: false },
        ]);
        assert.equal(a.first, 'ConnectResponse', `${name}: the ConnectResponse comes first`);
        assert.equal(a.connect!.timeOut, TIMEOUT, `${name}: the session is granted`);
        assert.notEqual(a.connect!.sessionId, 0n, name);
        assert.deepEqual(a.replies, [`1 ${ErrorCode.NONODE}`, '2 0', '3 0'], `${name}: every request is answered, in order`);
        assert.equal(a.data, name, `${name}: the read sees the write sent before it`);
      }
    });

    test('a reattach, on the same member and another: the ConnectResponse first, then the exists and getData sent with it', async () => {
      const ms = members();
      for (const [i, from] of ms.entries()) {
        for (const to of new Set([from, ms[(i + 1) % ms.length]])) {
          const path = `/reattach-${from.name}-${to.name}`;
          const c = await RawClient.connect(from.port, { timeout: TIMEOUT });
          assert.equal((await c.request({ type: OpCode.create, path, data: Buffer.from('r'), acl: OPEN, flags: 0 })).err, 0);
          await c.destroy();
          const { sessionId, passwd } = c.session;
          // lastZxidSeen makes another member catch up with the create before it answers.
          const a = await pipelined(to.port, { sessionId, passwd, lastZxidSeen: c.lastZxid }, [
            { type: OpCode.exists, path, watch: false },
            { type: OpCode.getData, path, watch: false },
          ]);
          const where = `created on ${from.name}, reattached on ${to.name}`;
          assert.equal(a.first, 'ConnectResponse', `${where}: the ConnectResponse comes first`);
          assert.equal(a.connect!.sessionId, sessionId, `${where}: the same session`);
          assert.ok(a.connect!.timeOut > 0, `${where}: the session is still alive`);
          assert.deepEqual(a.replies, ['1 0', '2 0'], `${where}: every request is answered, in order`);
          assert.equal(a.data, 'r', where);
        }
      }
    });
  });
}
