/**
 * Limits per connection: jute.maxbuffer exactly as Apache ZooKeeper applies it, and
 * bounded memory for a client that sends faster than it reads. The server stops taking
 * a connection's requests once its queued output or its requests in flight pass their
 * limits, keeps the rest unread, and carries on when the client catches up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { startServer as startEmbedded } from '../../src/index.js';
import { MemoryCommitter, type CommitTarget, type Committer } from '../../src/pipeline/committer.js';
import { CreateMode, OpCode } from '../../src/protocol/opcodes.js';
import { encodeRequest } from '../../src/protocol/records.js';
import { resolveConfig } from '../../src/server/config.js';
import { startServer, type Proposal } from '../../src/server/server.js';
import { targets, type TestServer } from '../support/servers.js';
import { WireSession, WAIT_MS } from './wire.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const MAX_BUFFER = 1048575; // ZooKeeper's default jute.maxbuffer

/** A setData frame whose body (after the 4-byte length) is exactly `bodyBytes` long. */
function setDataFrame(xid: number, path: string, bodyBytes: number): Buffer {
  const overhead = 8 + 4 + Buffer.byteLength(path) + 4 + 4;
  return encodeRequest(xid, { type: OpCode.setData, path, data: Buffer.alloc(bodyBytes - overhead, 'x'), version: -1 });
}

describe('jute.maxbuffer at the boundary, as ZooKeeper applies it', () => {
  for (const target of targets()) {
    describe(target.name, () => {
      let server: TestServer;
      before(async () => {
        server = await target.start();
      });
      after(async () => server?.stop());

      test(`a body of ${MAX_BUFFER} bytes is served; one byte more closes the connection`, async () => {
        const s = await WireSession.open(server.port);
        try {
          s.send(encodeRequest(1, { type: OpCode.create, path: '/big', data: Buffer.alloc(0), acl: OPEN, flags: 0 }));
          assert.equal((await s.reply(1)).err, 0);
          const fits = setDataFrame(2, '/big', MAX_BUFFER);
          assert.equal(fits.length, 4 + MAX_BUFFER);
          s.send(fits);
          assert.equal((await s.reply(2)).err, 0);
          s.send(setDataFrame(3, '/big', MAX_BUFFER + 1));
          assert.ok(await s.closedWithin(WAIT_MS), 'the connection stays open');
          assert.ok(!s.frames.some((f) => f.xid === 3), 'the oversized request was answered');
        } finally {
          s.close();
        }
      });
    });
  }
});

/** Resident memory of a process, in bytes. */
function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

describe('a client that never reads', () => {
  test('1,000 pipelined reads of a 1 MB znode keep the server within 64 MiB more memory; other sessions go on', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./child-server.ts', import.meta.url).pathname, '{}'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const stuck: Socket[] = [];
    try {
      const [line] = (await Promise.race([
        once(createInterface({ input: child.stdout! }), 'line'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('server did not start')), 30_000)),
      ])) as string[];
      const { port } = JSON.parse(line) as { port: number };
      const other = await WireSession.open(port);
      other.send(encodeRequest(1, { type: OpCode.create, path: '/big', data: Buffer.alloc(1_000_000, 'b'), acl: OPEN, flags: CreateMode.PERSISTENT }));
      assert.equal((await other.reply(1)).err, 0);
      const before = rss(child.pid!);

      // A session that asks for 1,000 copies in one write and then reads nothing.
      const reader = await WireSession.open(port);
      reader.socket.pause();
      stuck.push(reader.socket);
      const get = encodeRequest(5, { type: OpCode.getData, path: '/big', watch: false });
      reader.send(Buffer.concat(Array.from({ length: 1000 }, () => get)));

      let peak = 0;
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 100));
        peak = Math.max(peak, rss(child.pid!) - before);
        assert.ok(peak < 64 * 2 ** 20, `server RSS grew by ${(peak / 2 ** 20).toFixed(0)} MiB`);
      }
      // Meanwhile another session is served, big reads included.
      other.send(encodeRequest(2, { type: OpCode.getData, path: '/big', watch: false }));
      other.send(encodeRequest(3, { type: OpCode.setData, path: '/big', data: Buffer.from('small'), version: -1 }));
      assert.equal((await other.reply(2)).body.readInt32BE(0), 1_000_000);
      assert.equal((await other.reply(3)).err, 0);
      other.close();
    } finally {
      for (const s of stuck) s.destroy();
      child.kill('SIGKILL');
    }
  });

  test('a slow reader still gets every reply, in order, once it reads', async () => {
    const server = await startEmbedded({});
    try {
      const s = await WireSession.open(server.port);
      s.send(encodeRequest(1, { type: OpCode.create, path: '/n', data: Buffer.alloc(64 * 1024, 'n'), acl: OPEN, flags: 0 }));
      assert.equal((await s.reply(1)).err, 0);
      s.socket.pause();
      // 300 replies of 64 KiB: about 19 MiB, more than the server queues before it stops reading.
      const frames = Array.from({ length: 300 }, (_, i) => encodeRequest(100 + i, { type: OpCode.getData, path: '/n', watch: false }));
      s.send(Buffer.concat(frames));
      await new Promise((r) => setTimeout(r, 300));
      s.socket.resume();
      await s.reply(399);
      const xids = s.frames.filter((f) => f.xid >= 100).map((f) => f.xid);
      assert.deepEqual(xids, frames.map((_, i) => 100 + i));
      assert.ok(s.frames.every((f) => f.err === 0));
      s.close();
    } finally {
      await server.close();
    }
  });
});

/** Commits in memory, but only when the test lets it: proposals wait until release(). */
class GatedCommitter implements Committer<Proposal> {
  private readonly inner = new MemoryCommitter<Proposal>();
  readonly held: [Proposal, unknown][] = [];
  get role() {
    return this.inner.role;
  }
  get lastZxid() {
    return this.inner.lastZxid;
  }
  attach(target: CommitTarget<Proposal>): void {
    this.inner.attach(target);
  }
  propose(txn: Proposal, ref: unknown): boolean {
    // Sessions are let through: the test holds only the requests of its client.
    if (txn.body.type === OpCode.createSession) return this.inner.propose(txn, ref);
    this.held.push([txn, ref]);
    return true;
  }
  release(): void {
    for (const [txn, ref] of this.held.splice(0)) this.inner.propose(txn, ref);
  }
  sync(done: (ok: boolean) => void): void {
    done(true);
  }
  async close(): Promise<void> {}
}

test('requests in flight stop at maxPendingPerConnection until earlier ones are answered', async () => {
  const committer = new GatedCommitter();
  const server = await startServer({ config: resolveConfig({ port: 0, maxPendingPerConnection: 10 }), committer });
  try {
    const s = await WireSession.open(server.port);
    const creates = Array.from({ length: 50 }, (_, i) => encodeRequest(100 + i, { type: OpCode.create, path: `/c${i}`, data: Buffer.alloc(0), acl: OPEN, flags: 0 }));
    s.send(Buffer.concat(creates));
    const deadline = Date.now() + WAIT_MS;
    while (committer.held.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(committer.held.length, 10, 'requests taken past the limit');
    // Each release answers the ones in flight, and the server takes the next ones.
    while (!s.frames.some((f) => f.xid === 149)) {
      assert.ok(Date.now() < deadline + WAIT_MS, 'not every create was answered');
      assert.ok(committer.held.length <= 10, `${committer.held.length} requests in flight`);
      committer.release();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(
      s.frames.map((f) => f.xid),
      creates.map((_, i) => 100 + i),
    );
    s.close();
  } finally {
    await server.close();
  }
});
