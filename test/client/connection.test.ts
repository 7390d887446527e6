/**
 * Connection management against Apache ZooKeeper and pulsekeeper, with faults
 * injected by TCP proxies on loopback: several hosts in random order, heartbeats,
 * silence detection before the server expires the session, reconnection with the
 * session and its watches, requests while suspended, no silent retries, expiry
 * and renewal, server restart and failover.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import {
  ConnectionLossError,
  PulseClient,
  SessionExpiredError,
  ThrottledOpError,
  type ConnectionState,
  type WatchEvent,
} from '../../src/client/index.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { JuteReader } from '../../src/protocol/jute.js';
import { EventType, KeeperState, OpCode } from '../../src/protocol/opcodes.js';
import { encodeConnectResponse, encodeNotification, encodeReply, readRequestHeader, type ResponseBody, type Stat } from '../../src/protocol/records.js';
import { clientTargets, connectTo, skipUnless, type ClientTestServer } from '../support/client-targets.js';
import { expireSession, sleep, until } from '../support/client-faults.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** A client whose state changes are recorded (patient to connect: the machine may be busy). */
async function watched(connectionString: string, opts: Parameters<typeof PulseClient.connect>[1] = {}) {
  const client = await PulseClient.connect(connectionString, { connectTimeoutMs: 15_000, ...opts });
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  return { client, states };
}

test('a server answering garbage costs a connection, not the process', async () => {
  const fake = createServer((sock) => sock.end(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])));
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
  const port = (fake.address() as { port: number }).port;
  await assert.rejects(PulseClient.connect(`127.0.0.1:${port}`, { connectTimeoutMs: 600 }), ConnectionLossError);
  fake.close();
});

/**
 * A fake server on 127.0.0.1 for wire-level client tests: the first frame of a connection gets a
 * ConnectResponse granting `grantedMs` (onHandshake is told when), every later frame goes to
 * onRequest with its header. Connections after the first are accepted and left unanswered.
 */
async function fakeServer(
  grantedMs: number,
  onRequest: (sock: Socket, xid: number, type: number) => void,
  onHandshake: () => void = () => {},
): Promise<{ port: number; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    if (sockets.length > 1) return;
    const decoder = new FrameDecoder(1 << 20);
    let handshaken = false;
    sock.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) {
        if (!handshaken) {
          handshaken = true;
          onHandshake();
          sock.write(encodeConnectResponse({ protocolVersion: 0, timeOut: grantedMs, sessionId: 7n, passwd: Buffer.alloc(16), readOnly: false }));
          continue;
        }
        const { xid, type } = readRequestHeader(new JuteReader(frame));
        onRequest(sock, xid, type);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close() {
      for (const sock of sockets) sock.destroy();
      server.close();
    },
  };
}

test('a notification in the same packet as the reply that set its watch is delivered', async () => {
  // A server that answers every request with a Stat and, in the same write, the node's deletion.
  const stat: Stat = { czxid: 1, mzxid: 1, ctime: 0, mtime: 0, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 0, numChildren: 0, pzxid: 1 };
  const fake = await fakeServer(4000, (sock, xid, type) => {
    if (type === OpCode.ping || type === OpCode.closeSession) {
      sock.write(encodeReply(xid, 0, 0, type));
      return;
    }
    const event = type === OpCode.addWatch ? EventType.NodeDataChanged : EventType.NodeDeleted;
    const body: ResponseBody = type === OpCode.getData ? { data: Buffer.alloc(0), stat } : type === OpCode.addWatch ? {} : { stat };
    sock.write(Buffer.concat([encodeReply(xid, 2, 0, type, body), encodeNotification(-1, { type: event, state: KeeperState.SyncConnected, path: '/x' })]));
  });
  const client = await PulseClient.connect(`127.0.0.1:${fake.port}`);
  const got: string[] = [];
  await client.exists('/x', (e) => got.push(`exists ${e.type}`));
  await client.getData('/x', (e) => got.push(`getData ${e.type}`));
  await client.addWatch('/x', (e) => got.push(`addWatch ${e.type}`));
  await until(() => got.length >= 3, 5000, 'the events');
  await sleep(50);
  assert.deepEqual(got.sort(), ['addWatch dataChanged', 'exists deleted', 'getData deleted']);
  await client.close();
  fake.close();
});

test('on the wire: idle, the client pings every third of the negotiated timeout; unanswered, it suspends after two thirds and before the timeout', async () => {
  // A server that grants less than the client asks for (the client must time itself by the grant) and
  // answers pings until told to stop, recording when each arrives. Later connections get no handshake.
  const grantedMs = 4500;
  let handshakeAt = 0;
  let lastAnswerAt = 0;
  let answering = true;
  const pings: number[] = [];
  const fake = await fakeServer(
    grantedMs,
    (sock, xid, type) => {
      if (type === OpCode.ping) pings.push(performance.now());
      if (!answering) return;
      lastAnswerAt = performance.now();
      sock.write(encodeReply(xid, 0, 0, type));
    },
    () => (handshakeAt = performance.now()),
  );
  const client = await PulseClient.connect(`127.0.0.1:${fake.port}`, { sessionTimeoutMs: 20_000 });
  const states: ConnectionState[] = [];
  let suspendedAt = 0;
  client.on('state', (s) => {
    states.push(s);
    if (s === 'suspended') suspendedAt ||= performance.now();
  });
  assert.equal(client.sessionTimeoutMs, grantedMs);
  const third = grantedMs / 3;
  await until(() => pings.length >= 3, 4 * grantedMs, 'three idle pings');
  answering = false;
  // Each ping goes a third of the timeout after the client's last send (timers never fire early), and
  // well before the client would give up on a silent server (two thirds), even on a busy machine.
  for (const [i, at] of pings.slice(0, 3).entries()) {
    assert.ok(at - handshakeAt >= (i + 1) * third, `ping ${i} came ${(at - handshakeAt).toFixed(1)} ms after the handshake, before ${(i + 1) * third} ms`);
    const gap = at - (i === 0 ? handshakeAt : pings[i - 1]);
    assert.ok(gap < 2 * third, `ping ${i} came ${gap.toFixed(1)} ms after the one before`);
  }
  assert.ok(pings[2] - handshakeAt < grantedMs + third, `three pings took ${(pings[2] - handshakeAt).toFixed(1)} ms, not about ${grantedMs}`);
  // Unanswered, it keeps the connection for two thirds of the timeout after it last heard the server
  // (no sooner than the last answer was written), then suspends while the session would still live.
  await until(() => suspendedAt > 0, 2 * grantedMs, 'suspended');
  assert.deepEqual(states, ['suspended']);
  const silentFor = suspendedAt - lastAnswerAt;
  assert.ok(silentFor >= 2 * third && silentFor < grantedMs, `suspended ${silentFor.toFixed(1)} ms after the last answer, expected ${2 * third} to ${grantedMs} ms`);
  await client.close();
  fake.close();
});

for (const target of clientTargets({ ensemble: true })) {
  describe(`connection management against ${target.name}`, () => {
    let server: ClientTestServer;
    let observer: PulseClient;
    const cleanup: (() => Promise<unknown>)[] = [];
    const proxy = async () => {
      const p = await TcpProxy.start(server.ports[0]);
      cleanup.push(() => p.close());
      return p;
    };
    before(async () => {
      server = await target.start({ tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 20_000 });
      observer = await connectTo(server, { sessionTimeoutMs: 10_000 });
    });
    after(async () => {
      for (const f of cleanup.reverse()) await f().catch(() => {});
      await observer?.close();
      await server?.stop();
    });

    test('hosts are tried in random order; a lost host is replaced by the next with the same session', async () => {
      const [a, b] = [await proxy(), await proxy()];
      const both = `${a.connectionString},${b.connectionString}`;
      for (let i = 0; i < 16; i++) await (await PulseClient.connect(both)).close();
      assert.ok(a.accepted > 0 && b.accepted > 0, `first hosts: ${a.accepted} and ${b.accepted} of 16`);

      const before = [a.accepted, b.accepted];
      const { client, states } = await watched(both, { sessionTimeoutMs: 4000 });
      cleanup.push(() => client.close());
      await client.create('/multi-host', Buffer.alloc(0), { mode: 'ephemeral' });
      const id = client.sessionId;
      // The host it uses goes down for good; the client must move to the other one.
      const [using, other] = a.accepted > before[0] ? [a, b] : [b, a];
      const otherBefore = other.accepted;
      using.refuse();
      using.cut();
      await until(() => states.at(-1) === 'reconnected', 10_000, 'reconnected through the other host');
      assert.equal(client.sessionId, id);
      assert.equal(other.accepted, otherBefore + 1);
      assert.ok(await observer.exists('/multi-host'), 'the ephemeral survived the move');
    });

    test('an idle session is kept alive by pings for many session timeouts', async () => {
      const p = await proxy();
      const { client, states } = await watched(p.connectionString, { sessionTimeoutMs: 1000 });
      cleanup.push(() => client.close());
      await client.create('/idle', Buffer.alloc(0), { mode: 'ephemeral' });
      const id = client.sessionId;
      await sleep(3000); // three session timeouts without a request
      assert.ok(!states.includes('expired') && client.sessionId === id, `the same session throughout: ${states}`);
      assert.ok(await observer.exists('/idle'), 'the server still has the session');
      // Pings are what kept it: with the client's traffic dropped, the server expires the session.
      p.silence('toServer');
      await until(async () => (await observer.exists('/idle')) === null, 10_000, 'expiry without pings');
      p.heal();
      await until(() => states.at(-1) === 'connected', 10_000, 'a new session');
    });

    test('silence is detected before the server expires the session, and a reconnect in time keeps it', async () => {
      const p = await proxy();
      // A long timeout: the margin between the client giving up (two thirds) and expiry must outlast a busy machine's stalls.
      const { client, states } = await watched(p.connectionString, { sessionTimeoutMs: 6000 });
      cleanup.push(() => client.close());
      await client.create('/quiet', Buffer.alloc(0), { mode: 'ephemeral' });
      const id = client.sessionId;
      let aliveAtSuspension: boolean | undefined;
      client.once('suspended', () => {
        // The network comes back at once, before the client dials again (it waits at least 100 ms).
        p.heal();
        observer.exists('/quiet').then((s) => (aliveAtSuspension = s !== null));
      });
      p.silence();
      await until(() => aliveAtSuspension !== undefined, 10_000, 'suspension');
      assert.equal(aliveAtSuspension, true, 'the client gave up the connection while its session still lived');
      await until(() => states.at(-1) === 'reconnected', 10_000, () => `reconnected (states: ${states})`);
      assert.deepEqual(states, ['suspended', 'reconnected']);
      assert.equal(client.sessionId, id);
      assert.ok(await observer.exists('/quiet'));
    });

    test('after a reconnect, watches are re-registered and changes made meanwhile are delivered', async () => {
      const p = await proxy();
      const { client, states } = await watched(p.connectionString, { sessionTimeoutMs: 4000 });
      cleanup.push(() => client.close());
      await observer.create('/rw');
      await observer.create('/rw/gone');
      await observer.create('/pw');
      await observer.create('/pr');
      const fired: string[] = [];
      const record = (label: string) => (e: WatchEvent) => fired.push(`${label}: ${e.type} ${e.path}`);
      await client.getData('/rw', record('data'));
      await client.exists('/rw/new', record('exists'));
      await client.getChildren('/rw', record('children'));
      await client.exists('/rw/gone', record('gone'));
      await client.addWatch('/pw', record('persistent'));
      await client.addWatch('/pr', record('recursive'), { recursive: true });
      p.refuse();
      p.cut();
      await until(() => states.includes('suspended'), 5000, 'suspended');
      await observer.delete('/rw/gone'); // while the client is away
      p.accept();
      await until(() => states.at(-1) === 'reconnected', 10_000, 'reconnected');
      await until(() => fired.length >= 2, 5000, 'the missed changes');
      assert.deepEqual(fired.sort(), ['children: childrenChanged /rw', 'gone: deleted /rw/gone']);
      fired.length = 0;
      await observer.setData('/rw', Buffer.from('x'));
      await observer.create('/rw/new');
      await observer.setData('/pw', Buffer.from('x'));
      await observer.create('/pr/x');
      await until(() => fired.length >= 4, 5000, 'events after the reconnect');
      await sleep(100);
      assert.deepEqual(fired.sort(), ['data: dataChanged /rw', 'exists: created /rw/new', 'persistent: dataChanged /pw', 'recursive: created /pr/x']);
    });

    test('requests made while suspended wait for the reconnect, or fail with ConnectionLossError at their deadline', async () => {
      const p = await proxy();
      const { client, states } = await watched(p.connectionString, { sessionTimeoutMs: 4000, requestTimeoutMs: 1500, maxOutstanding: 3 });
      cleanup.push(() => client.close());
      await client.create('/waiting', Buffer.from('v'));
      p.refuse();
      p.cut();
      await until(() => states.includes('suspended'), 5000, 'suspended');
      const patient = client.getData('/waiting');
      await sleep(200);
      p.accept();
      assert.equal((await patient).data.toString(), 'v', 'served once reconnected');

      p.refuse();
      p.cut();
      await until(() => states.filter((s) => s === 'suspended').length === 2, 5000, 'suspended again');
      const doomed = [client.getData('/waiting'), client.exists('/waiting'), client.getChildren('/')];
      await assert.rejects(client.getData('/waiting'), ThrottledOpError, 'bounded: a fourth request is refused at once');
      for (const r of doomed) await assert.rejects(r, ConnectionLossError);
      p.accept();
      await until(() => states.at(-1) === 'reconnected', 10_000, 'reconnected');
    });

    test('a request whose reply is lost fails with ConnectionLossError and is not sent again', async () => {
      const p = await proxy();
      const { client, states } = await watched(p.connectionString, { sessionTimeoutMs: 3000 });
      cleanup.push(() => client.close());
      await client.create('/once');
      p.silence('toClient'); // requests reach the server; nothing comes back
      const create = client.create('/once/n-', Buffer.alloc(0), { mode: 'persistent-sequential' });
      await assert.rejects(create, ConnectionLossError);
      p.heal();
      await until(() => states.at(-1) === 'reconnected', 10_000, 'reconnected');
      await sleep(200);
      assert.deepEqual(await observer.getChildren('/once'), ['n-0000000000'], 'applied once, never retried');
    });

    test('expiry: queued requests fail, ephemerals are gone, a new session starts and keeps the watches', async () => {
      const p = await proxy();
      const { client, states } = await watched(p.connectionString, { sessionTimeoutMs: 4000 });
      cleanup.push(() => client.close());
      await client.create('/mine', Buffer.alloc(0), { mode: 'ephemeral' });
      await observer.create('/kept');
      const fired: WatchEvent[] = [];
      await client.getData('/kept', (e) => fired.push(e));
      const oldId = client.sessionId;
      p.refuse();
      p.cut();
      await until(() => states.includes('suspended'), 5000, 'suspended');
      const queued = client.getData('/kept');
      await expireSession(server.connectionString, client, server.clientOptions);
      // The session may have been closed through another member of an ensemble: read after it catches up.
      await until(async () => (await observer.exists('/mine')) === null, 10_000, 'the ephemeral gone with its session');
      p.accept();
      await assert.rejects(queued, SessionExpiredError);
      await until(() => states.at(-1) === 'connected', 10_000, 'a new session');
      assert.deepEqual(states, ['suspended', 'expired', 'connected']);
      assert.notEqual(client.sessionId, oldId);
      await observer.setData('/kept', Buffer.from('new'));
      await until(() => fired.length === 1, 5000, 'the watch carried to the new session');
      assert.equal((await client.getData('/kept')).data.toString(), 'new');
    });

    test('without renewal an expired client stays expired', async () => {
      const { client, states } = await watched(server.connectionString, { ...server.clientOptions, sessionTimeoutMs: 4000, renewExpiredSession: false });
      await expireSession(server.connectionString, client, server.clientOptions);
      await until(() => states.includes('expired'), 10_000, 'expired');
      await assert.rejects(client.getData('/'), SessionExpiredError);
      await sleep(300);
      assert.equal(client.state, 'expired');
      await client.close();
      assert.equal(client.state, 'closed');
    });

    test('closing ends the session at once', async () => {
      const client = await connectTo(server);
      await client.create('/closing', Buffer.alloc(0), { mode: 'ephemeral' });
      await client.close();
      assert.equal(await observer.exists('/closing'), null);
      await assert.rejects(client.getData('/'), ConnectionLossError);
    });

    test('a server restart keeps the session, its ephemerals and watches', { skip: skipUnless(target, 'restart') }, async () => {
      // Longer than a JVM takes to restart beside other work (15 s once was not).
      const { client, states } = await watched(server.connectionString, { ...server.clientOptions, sessionTimeoutMs: 30_000 });
      cleanup.push(() => client.close());
      await client.create('/restart-eph', Buffer.alloc(0), { mode: 'ephemeral' });
      await client.create('/restart-data', Buffer.from('1'));
      const fired: WatchEvent[] = [];
      await client.getData('/restart-data', (e) => fired.push(e));
      const id = client.sessionId;
      await server.restart!();
      await until(() => states.at(-1) === 'reconnected', 40_000, () => `reconnected (states seen: ${states.join(', ')})`);
      assert.equal(client.sessionId, id);
      assert.ok(await client.exists('/restart-eph'));
      await client.setData('/restart-data', Buffer.from('2'));
      await until(() => fired.length === 1, 5000, 'the watch after the restart');
      await observer.whenConnected(20_000);
    });

    test('a failover keeps the session, its ephemerals and watches', { skip: skipUnless(target, 'failover') }, async () => {
      const { client, states } = await watched(server.connectionString, { ...server.clientOptions, sessionTimeoutMs: 15_000 });
      cleanup.push(() => client.close());
      await client.create('/failover-eph', Buffer.alloc(0), { mode: 'ephemeral' });
      const id = client.sessionId;
      await server.failover!();
      await until(() => states.at(-1) === 'reconnected', 20_000, () => `reconnected (states seen: ${states.join(', ')})`);
      assert.equal(client.sessionId, id);
      assert.ok(await client.exists('/failover-eph'));
    });
  });
}
