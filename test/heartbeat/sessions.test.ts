/**
 * Heartbeat-based session liveness over real loopback sockets: expiry within
 * [timeout, timeout + tick] of the last heartbeat, never while pinging, reattach
 * before the deadline, SessionExpired after it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type RunningServer } from '../../src/index.js';
import { createLogger } from '../../src/util/log.js';
import { CreateMode, EventType, OpCode } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { RawClient } from '../support/raw-client.js';
import { targets, type TestServer } from '../support/servers.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const TICK = 100;
const TIMEOUT = 600;
/** Allowance for timers and the event's trip back on a shared machine; only ever added to an upper bound. */
const SCHEDULING_SLACK = 250;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ephemeral(c: RawClient, path: string): Promise<void> {
  const r = await c.request({ type: OpCode.create, path, data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.EPHEMERAL });
  assert.equal(r.err, 0);
}

async function exists(c: RawClient, path: string, watch = false): Promise<boolean> {
  return (await c.request({ type: OpCode.exists, path, watch })).err === ErrorCode.OK;
}

describe('session expiry timing (pulsekeeper)', () => {
  let server: RunningServer;
  const logs: string[] = [];
  before(async () => {
    server = await startServer({ tickTime: TICK, minSessionTimeout: 2 * TICK, logger: createLogger({ sink: (l) => logs.push(l) }) });
  });
  after(async () => server?.close());

  test('a silent session is expired no sooner than its timeout and within one tick after it', async () => {
    const watcher = await RawClient.connect(server.port, { timeout: 10_000 });
    for (let i = 0; i < 3; i++) {
      const silent = await RawClient.connect(server.port, { timeout: TIMEOUT });
      assert.equal(silent.session.timeOut, TIMEOUT);
      const path = `/silent-${i}`;
      await ephemeral(silent, path);
      assert.equal(await exists(watcher, path, true), true);
      const sentAt = performance.now();
      const reply = silent.ping();
      await reply;
      const repliedAt = performance.now();
      // From here the client says nothing (the socket stays open).
      const before = watcher.events.length;
      const deadline = performance.now() + TIMEOUT * 4;
      while (watcher.events.length === before && performance.now() < deadline) await watcher.waitForEvents(before + 1, 50);
      const firedAt = performance.now();
      const ev = watcher.events[before];
      assert.ok(ev, 'the ephemeral of a silent session is deleted');
      assert.equal(ev.type, EventType.NodeDeleted);
      assert.equal(ev.path, path);
      assert.ok(firedAt - sentAt >= TIMEOUT, `expired ${Math.round(firedAt - sentAt)} ms after the last heartbeat, before the ${TIMEOUT} ms timeout`);
      assert.ok(
        firedAt - repliedAt <= TIMEOUT + TICK + SCHEDULING_SLACK,
        `expired ${Math.round(firedAt - repliedAt)} ms after the last heartbeat; bound ${TIMEOUT + TICK} (+${SCHEDULING_SLACK} scheduling)`,
      );
      await silent.whenClosed();
    }
    await watcher.close();
  });

  test('each expiry is logged with session id, timeout and time since last heard', async () => {
    const lines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'session expired');
    assert.ok(lines.length >= 3);
    for (const l of lines) {
      assert.match(l.sessionId, /^0x[0-9a-f]+$/);
      assert.equal(l.timeoutMs, TIMEOUT);
      assert.ok(l.sinceLastHeardMs >= TIMEOUT);
    }
  });

  test('a session pinging every timeout/3 is never expired', async () => {
    const c = await RawClient.connect(server.port, { timeout: TIMEOUT });
    await ephemeral(c, '/pinger');
    const watcher = await RawClient.connect(server.port, { timeout: 10_000 });
    assert.equal(await exists(watcher, '/pinger', true), true);
    const until = performance.now() + TIMEOUT * 8;
    while (performance.now() < until) {
      await sleep(TIMEOUT / 3);
      const [r] = await Promise.all([c.ping(), watcher.ping()]);
      assert.equal(r.err, 0);
    }
    assert.equal(watcher.events.length, 0, 'no NodeDeleted for a live session');
    assert.equal(await exists(watcher, '/pinger'), true);
    await c.close();
    await watcher.close();
  });
});

for (const target of targets()) {
  describe(`session lifecycle against ${target.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await target.start({ tickTime: TICK, minSessionTimeout: 2 * TICK });
    });
    after(async () => server?.stop());

    test('reattach with id and password before the deadline keeps the session and its ephemerals', async () => {
      const c = await RawClient.connect(server.port, { timeout: 2000 });
      await ephemeral(c, '/kept');
      const { sessionId, passwd } = c.session;
      await c.destroy();
      await sleep(300);
      const again = await RawClient.connect(server.port, { timeout: 2000, sessionId, passwd, lastZxidSeen: c.lastZxid });
      assert.equal(again.session.sessionId, sessionId);
      assert.ok(again.session.timeOut > 0);
      assert.equal(await exists(again, '/kept'), true);
      const eph = await again.request({ type: OpCode.getEphemerals, prefixPath: '/' });
      assert.deepEqual((eph.response as { ephemerals: string[] }).ephemerals, ['/kept']);
      await again.close();
    });

    test('a wrong password is refused like an expired session', async () => {
      const c = await RawClient.connect(server.port, { timeout: 2000 });
      const bad = await RawClient.connect(server.port, { timeout: 2000, sessionId: c.session.sessionId, passwd: Buffer.alloc(16, 7) });
      assert.equal(bad.session.timeOut, 0);
      await c.close();
    });

    test('after expiry a reattach gets SessionExpired (timeout 0) and the ephemerals are gone', async () => {
      const c = await RawClient.connect(server.port, { timeout: 400 });
      await ephemeral(c, '/lost');
      const { sessionId, passwd } = c.session;
      await c.destroy();
      const other = await RawClient.connect(server.port, { timeout: 10_000 });
      await exists(other, '/lost', true);
      await other.waitForEvents(1, 5000);
      assert.equal(other.events[0]?.type, EventType.NodeDeleted);
      const late = await RawClient.connect(server.port, { timeout: 400, sessionId, passwd });
      assert.equal(late.session.timeOut, 0, 'expired sessions answer with timeout 0');
      await late.whenClosed();
      await other.close();
    });

    test('closeSession deletes the ephemerals at once', async () => {
      const c = await RawClient.connect(server.port, { timeout: 10_000 });
      await ephemeral(c, '/closing');
      const other = await RawClient.connect(server.port, { timeout: 10_000 });
      await c.close();
      assert.equal(await exists(other, '/closing'), false);
      await other.close();
    });
  });
}
