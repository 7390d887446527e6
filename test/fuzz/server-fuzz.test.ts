/**
 * Malformed input against a live server over loopback: garbage before and after
 * connect, oversize length prefixes, unknown opcodes, half frames. Each bad
 * connection is closed (or answered with an error); a healthy session keeps
 * working throughout and the server's memory stays bounded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startServer, type RunningServer } from '../../src/index.js';
import { CreateMode, OpCode } from '../../src/protocol/opcodes.js';
import { encodeConnectRequest, encodeRequest } from '../../src/protocol/records.js';
import { RawClient } from '../support/raw-client.js';
import { Rng } from '../support/random.js';

const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 3000);
const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

let server: RunningServer;
before(async () => {
  server = await startServer({ maxClientCnxns: 0, tickTime: 200, minSessionTimeout: 400, maxSessionTimeout: 4000 });
});
after(async () => server?.close());

const CONNECT = encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0, timeOut: 4000, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false });

function badPayload(rng: Rng): Buffer[] {
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => rng.int(256)));
  const frame = (body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length);
    return Buffer.concat([len, body]);
  };
  const header = (type: number) => {
    const h = Buffer.alloc(8);
    h.writeInt32BE(rng.int(1000));
    h.writeInt32BE(type, 4);
    return h;
  };
  switch (rng.int(8)) {
    case 0:
      return [random(1 + rng.int(200))];
    case 1: {
      const huge = Buffer.alloc(4);
      huge.writeInt32BE(rng.pick([-1, 0x7fffffff, 2 * 1024 * 1024]));
      return [huge, random(16)];
    }
    case 2:
      return [CONNECT, random(1 + rng.int(100))];
    case 3:
      return [CONNECT, frame(Buffer.concat([header(rng.pick([OpCode.create, OpCode.setData, OpCode.multi, OpCode.getData])), random(rng.int(40))]))];
    case 4:
      return [CONNECT, frame(header(rng.pick([55, 200, -77, OpCode.sasl, OpCode.reconfig])))];
    case 5: // half a frame, then hang up
      return [CONNECT.subarray(0, 1 + rng.int(CONNECT.length - 1))];
    case 6: // a connect request with a corrupted password length
    {
      const c = Buffer.from(CONNECT);
      c.writeInt32BE(rng.pick([-5, 1 << 30]), 4 + 4 + 8 + 4 + 8);
      return [c];
    }
    default:
      return [CONNECT, encodeRequest(1, { type: OpCode.create, path: 'bad path', data: random(8), acl: OPEN, flags: 99 }), random(10)];
  }
}

function abuse(port: number, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      for (const c of chunks) s.write(c);
      // Leave it to the server to close; hang up ourselves soon after if it does not.
      setTimeout(() => s.destroy(), 50);
    });
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => resolve());
  });
}

test(`${CONNECTIONS} malformed connections leave a healthy session and the server unharmed`, async () => {
  const rng = new Rng(11);
  const healthy = await RawClient.connect(server.port, { timeout: 4000 });
  const create = await healthy.request({ type: OpCode.create, path: '/healthy', data: Buffer.from('0'), acl: OPEN, flags: CreateMode.EPHEMERAL });
  assert.equal(create.err, 0);
  const heapBefore = process.memoryUsage().heapUsed;
  let writes = 0;
  const batch = 50;
  for (let i = 0; i < CONNECTIONS; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, CONNECTIONS - i) }, () => abuse(server.port, badPayload(rng))));
    // The healthy session keeps reading and writing between every batch.
    const set = await healthy.request({ type: OpCode.setData, path: '/healthy', data: Buffer.from(String(i)), version: -1 });
    assert.equal(set.err, 0, `healthy write failed after ${i} bad connections`);
    writes++;
  }
  const get = await healthy.request({ type: OpCode.getData, path: '/healthy', watch: false });
  assert.equal(get.err, 0);
  assert.equal((get.response as { stat: { version: number } }).stat.version, writes);
  const fresh = await RawClient.connect(server.port, { timeout: 4000 });
  assert.equal((await fresh.request({ type: OpCode.exists, path: '/healthy', watch: false })).err, 0);
  await fresh.close();
  await healthy.close();
  const growth = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(growth < 64 * 1024 * 1024, `heap grew by ${growth} bytes`);
  assert.equal(server.server.connections().length, 0, 'every bad connection was closed');
});
