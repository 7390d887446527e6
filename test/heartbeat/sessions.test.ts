/**
 * Heartbeat-based session liveness over real loopback sockets: expiry within
 * [timeout, timeout + tick] of the last heartbeat, never while pinging, reattach
 * before the deadline, SessionExpired after it. The in-process server runs in memory
 * and on the durable log (an ensemble of one, whose expiries go through its log). On a
 * 3-member ensemble the client sits on a follower: the follower passes the sessions it
 * hears from on to the leader, which alone expires sessions.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../src/index.js';
import { hex } from '../../src/server/four-letter.js';
import { createLogger } from '../../src/util/log.js';
import { CreateMode, EventType, OpCode } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { RawClient } from '../support/raw-client.js';
import { ENSEMBLE_HEARTBEAT_MS, pulsekeeperEnsembleTarget, startDurableServer, targets, type Target, type TestServer } from '../support/servers.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const TICK = 500;
const TIMEOUT = 3000;
/**
 * Allowance for timers and the event's trip back on a shared machine; only ever added to
 * an upper bound. Less than a tick, so expiring a tick late fails.
 */
const SCHEDULING_SLACK = 250;
/** The pinging session's timeout: the shortest allowed, so a ping every timeout/3 comes more often than a tick. */
const PINGER_TIMEOUT = 2 * TICK;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const OPTIONS = { tickTime: TICK, minSessionTimeout: 2 * TICK };

async function ephemeral(c: RawClient, path: string): Promise<void> {
  const r = await c.request({ type: OpCode.create, path, data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.EPHEMERAL });
  assert.equal(r.err, 0);
}

async function exists(c: RawClient, path: string, watch = false): Promise<boolean> {
  return (await c.request({ type: OpCode.exists, path, watch })).err === ErrorCode.OK;
}

/** One ensemble for the whole file: the timing tests and the lifecycle tests share it. */
let ensemble: Promise<TestServer> | undefined;
const sharedEnsemble = () => (ensemble ??= pulsekeeperEnsembleTarget.start(OPTIONS));
after(async () => (await ensemble)?.stop());

interface ExpiryLine {
  msg: string;
  sessionId: string;
  timeoutMs: number;
  sinceLastHeardMs: number;
}

/** Where the timing tests put their clients and find the expiry log. */
interface TimingSetup {
  /** The silent and pinging clients' server. */
  clientPort: number;
  /** The watcher's server: another member of an ensemble, so the deletion reaches it through the log. */
  watcherPort: number;
  /** How late the member that expires sessions may hear of a heartbeat after its client sent it. */
  relayMs: number;
  /** The 'session expired' log lines and whether the member that wrote them led. */
  expiries(): Promise<{ line: ExpiryLine; byLeader: boolean }[]>;
  /** Throws unless the clients' server is still where the test wants it (a follower, in an ensemble). */
  checkPlacement(): Promise<void>;
  stop(): Promise<void>;
}

const parseLines = (text: string[]): ExpiryLine[] => text.filter((l) => l.trim() !== '').map((l) => JSON.parse(l)).filter((l) => l.msg === 'session expired');

async function inProcess(durable = false): Promise<TimingSetup> {
  const logs: string[] = [];
  const opts = { ...OPTIONS, logger: createLogger({ sink: (l) => logs.push(l) }) };
  const server = durable ? await startDurableServer(opts) : await startServer(opts);
  return {
    clientPort: server.port,
    watcherPort: server.port,
    relayMs: 0,
    expiries: async () => parseLines(logs).map((line) => ({ line, byLeader: true })),
    checkPlacement: async () => {},
    stop: () => server.close(),
  };
}

async function onFollower(): Promise<TimingSetup> {
  const server = await sharedEnsemble();
  const e = server.ensemble!;
  const idOf = (port: number) => [...e.members.values()].find((m) => m.clientPort === port)!.id;
  return {
    clientPort: server.ports[0],
    watcherPort: server.ports[2],
    // A follower passes the sessions it heard from on to the leader once per heartbeat interval.
    relayMs: ENSEMBLE_HEARTBEAT_MS,
    async expiries() {
      const leader = await e.waitForLeader();
      return [...e.members.values()].flatMap((m) => parseLines(m.log.split('\n')).map((line) => ({ line, byLeader: m.id === leader })));
    },
    async checkPlacement() {
      assert.equal(await e.mode(idOf(server.ports[0])), 'follower', `the clients' member no longer follows:\n${e.logs()}`);
    },
    stop: async () => {},
  };
}

for (const [name, setUp] of [
  ['pulsekeeper', () => inProcess()],
  ['pulsekeeper on the durable log', () => inProcess(true)],
  ['a follower of a pulsekeeper ensemble', onFollower],
] as const) {
  describe(`session expiry timing (${name})`, () => {
    let s: TimingSetup;
    const silentIds: string[] = [];
    before(async () => {
      s = await setUp();
    });
    after(async () => s?.stop());

    test('a silent session is expired no sooner than its timeout and within one tick after it; its ephemeral\'s watchers hear NodeDeleted and NodeChildrenChanged', async (t) => {
      await s.checkPlacement();
      const watcher = await RawClient.connect(s.watcherPort, { timeout: 10_000 });
      // When each event first reached the watcher ("type:path" -> performance.now()).
      const arrivals = new Map<string, number>();
      let watching = true;
      const recorder = (async () => {
        for (let seen = 0; watching && !watcher.closed; ) {
          await watcher.waitForEvents(seen + 1, 50);
          const now = performance.now();
          for (; seen < watcher.events.length; seen++) {
            const key = `${watcher.events[seen].type}:${watcher.events[seen].path}`;
            if (!arrivals.has(key)) arrivals.set(key, now);
          }
        }
      })();
      // Three sessions at once, their last heartbeats a third of a tick apart: each at another point of a tick.
      await Promise.all(
        [0, 1, 2].map(async (i) => {
          await sleep((i * TICK) / 3);
          const silent = await RawClient.connect(s.clientPort, { timeout: TIMEOUT });
          assert.equal(silent.session.timeOut, TIMEOUT);
          silentIds.push(hex(silent.session.sessionId));
          const parent = `/silent-${i}`;
          const path = `${parent}/e`;
          assert.equal((await silent.request({ type: OpCode.create, path: parent, data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.PERSISTENT })).err, 0);
          await ephemeral(silent, path);
          // The watcher's member may not have applied the creates yet: sync first.
          await watcher.request({ type: OpCode.sync, path });
          assert.equal(await exists(watcher, path, true), true);
          const children = await watcher.request({ type: OpCode.getChildren, path: parent, watch: true });
          assert.deepEqual((children.response as { children: string[] }).children, ['e']);
          const sentAt = performance.now();
          await silent.ping();
          const repliedAt = performance.now();
          // From here the client says nothing (the socket stays open).
          const deleted = `${EventType.NodeDeleted}:${path}`;
          const changed = `${EventType.NodeChildrenChanged}:${parent}`;
          const deadline = performance.now() + TIMEOUT * 4;
          while (!(arrivals.has(deleted) && arrivals.has(changed)) && performance.now() < deadline) await sleep(20);
          assert.ok(arrivals.has(deleted), `no NodeDeleted for ${path} of a silent session: ${JSON.stringify(watcher.events)}`);
          assert.ok(arrivals.has(changed), `no NodeChildrenChanged for ${parent} when the silent session's ephemeral went: ${JSON.stringify(watcher.events)}`);
          const order = watcher.events.map((e) => `${e.type}:${e.path}`);
          assert.ok(order.indexOf(deleted) < order.indexOf(changed), 'NodeDeleted comes before its parent\'s NodeChildrenChanged, as ZooKeeper sends them');
          const bound = TIMEOUT + TICK + s.relayMs;
          for (const [event, firedAt] of [
            ['NodeDeleted', arrivals.get(deleted)!],
            ['NodeChildrenChanged', arrivals.get(changed)!],
          ] as const) {
            assert.ok(firedAt - sentAt >= TIMEOUT, `${event} ${Math.round(firedAt - sentAt)} ms after the last heartbeat, before the ${TIMEOUT} ms timeout`);
            assert.ok(
              firedAt - repliedAt <= bound + SCHEDULING_SLACK,
              `${event} ${Math.round(firedAt - repliedAt)} ms after the last heartbeat; bound ${bound} (+${SCHEDULING_SLACK} scheduling)`,
            );
          }
          t.diagnostic(`session ${i}: expiry seen ${Math.round(arrivals.get(deleted)! - sentAt)} ms after the last ping was sent (timeout ${TIMEOUT}, tick ${TICK})`);
          await silent.whenClosed();
        }),
      ).finally(() => (watching = false));
      await recorder;
      await watcher.close();
    });

    test('each expiry is logged, by the member that leads, with session id, timeout and time since last heard', async () => {
      const lines = (await s.expiries()).filter((e) => silentIds.includes(e.line.sessionId));
      assert.deepEqual(lines.map((e) => e.line.sessionId).sort(), [...silentIds].sort(), 'each silent session is expired once');
      for (const { line, byLeader } of lines) {
        assert.ok(byLeader, `session ${line.sessionId} expired by a member that does not lead`);
        assert.match(line.sessionId, /^0x[0-9a-f]+$/);
        assert.equal(line.timeoutMs, TIMEOUT);
        assert.ok(line.sinceLastHeardMs >= TIMEOUT);
      }
    });

    test('a session pinging every timeout/3 is never expired', async () => {
      await s.checkPlacement();
      const c = await RawClient.connect(s.clientPort, { timeout: PINGER_TIMEOUT });
      assert.equal(c.session.timeOut, PINGER_TIMEOUT);
      await ephemeral(c, '/pinger');
      const watcher = await RawClient.connect(s.watcherPort, { timeout: 10_000 });
      await watcher.request({ type: OpCode.sync, path: '/pinger' });
      assert.equal(await exists(watcher, '/pinger', true), true);
      const until = performance.now() + PINGER_TIMEOUT * 5;
      while (performance.now() < until) {
        await sleep(PINGER_TIMEOUT / 3);
        const [r] = await Promise.all([c.ping(), watcher.ping()]);
        assert.equal(r.err, 0);
      }
      // Anything the leader did before the last ping has reached the watcher's member after a sync.
      await watcher.request({ type: OpCode.sync, path: '/pinger' });
      assert.equal(watcher.events.length, 0, 'no NodeDeleted for a live session');
      assert.equal(await exists(watcher, '/pinger'), true);
      await c.close();
      await watcher.close();
    });
  });
}

for (const target of targets({ ensemble: true, durable: true })) {
  describe(`session lifecycle against ${target.name}`, () => {
    let server: TestServer;
    const shared = target.name === 'pulsekeeper-ensemble';
    before(async () => {
      server = shared ? await sharedEnsemble() : await target.start(OPTIONS);
    });
    after(async () => {
      if (!shared) await server?.stop();
    });

    /** Another member of an ensemble (the same server otherwise), caught up with every write so far. */
    async function elsewhere(k: number): Promise<number> {
      const port = server.ports[k % server.ports.length];
      const probe = await RawClient.connect(port, { timeout: 10_000 });
      await probe.request({ type: OpCode.sync, path: '/' });
      await probe.close();
      return port;
    }

    test('reattach with id and password before the deadline keeps the session and its ephemerals, on another member too', async () => {
      const c = await RawClient.connect(server.port, { timeout: 2000 });
      await ephemeral(c, '/kept');
      const { sessionId, passwd } = c.session;
      await c.destroy();
      await sleep(300);
      const again = await RawClient.connect(await elsewhere(2), { timeout: 2000, sessionId, passwd, lastZxidSeen: c.lastZxid });
      assert.equal(again.session.sessionId, sessionId);
      assert.ok(again.session.timeOut > 0);
      assert.equal(await exists(again, '/kept'), true);
      const eph = await again.request({ type: OpCode.getEphemerals, prefixPath: '/' });
      assert.deepEqual((eph.response as { ephemerals: string[] }).ephemerals, ['/kept']);
      await again.close();
    });

    test('a wrong password is refused like an expired session', async () => {
      const c = await RawClient.connect(server.port, { timeout: 2000 });
      for (const port of new Set([server.port, await elsewhere(1)])) {
        const bad = await RawClient.connect(port, { timeout: 2000, sessionId: c.session.sessionId, passwd: Buffer.alloc(16, 7) });
        assert.equal(bad.session.timeOut, 0);
        await bad.whenClosed();
      }
      await c.close();
    });

    test('after expiry a reattach gets SessionExpired (timeout 0) and the ephemerals are gone', async () => {
      const c = await RawClient.connect(server.port, { timeout: 400 });
      await ephemeral(c, '/lost');
      const { sessionId, passwd } = c.session;
      await c.destroy();
      const other = await RawClient.connect(await elsewhere(2), { timeout: 10_000 });
      assert.equal(await exists(other, '/lost', true), true);
      await other.waitForEvents(1, 5000);
      assert.equal(other.events[0]?.type, EventType.NodeDeleted);
      for (const port of new Set([server.port, await elsewhere(1)])) {
        const late = await RawClient.connect(port, { timeout: 400, sessionId, passwd });
        assert.equal(late.session.timeOut, 0, 'expired sessions answer with timeout 0');
        await late.whenClosed();
      }
      await other.close();
    });

    test('closeSession deletes the ephemerals at once', async () => {
      const c = await RawClient.connect(server.port, { timeout: 10_000 });
      await ephemeral(c, '/closing');
      const other = await RawClient.connect(server.ports[2 % server.ports.length], { timeout: 10_000 });
      await c.close();
      // A session on another member sees the deletion once its member has caught up.
      await other.request({ type: OpCode.sync, path: '/closing' });
      assert.equal(await exists(other, '/closing'), false);
      await other.close();
    });
  });
}
