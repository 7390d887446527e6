/**
 * The client transports (epoll addon and net.Socket) against the same expectations,
 * over real sockets on 127.0.0.1: bytes arrive per connection intact and in order,
 * pause holds them back, output a client does not read is queued and reported drained,
 * end/destroy/peer close behave as documented, a dead handle is refused, and a seeded
 * storm of clients doing random things (odd chunk sizes, pauses, half and abrupt closes)
 * leaves every echo intact. On Linux the epoll addon must have been built, unless
 * PULSEKEEPER_NATIVE=skip says it was not meant to be.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { loadEpollAddon } from '../../src/server/epoll-transport.js';
import { listenForClients, type ClientTransport, type TransportEvents, type TransportKind } from '../../src/server/transport.js';
import { Rng } from '../support/random.js';

const WAIT_MS = 10_000;

function kinds(): { kind: TransportKind; skip: string | false }[] {
  const epoll = loadEpollAddon();
  let skip: string | false = false;
  if (!epoll.addon) {
    if (process.platform === 'linux' && process.env.PULSEKEEPER_NATIVE !== 'skip') throw new Error(`the epoll addon is missing on Linux: ${epoll.error}`);
    skip = epoll.error ?? 'not available';
  }
  return [
    { kind: 'epoll', skip },
    { kind: 'net', skip: false },
  ];
}

async function until(what: string, done: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A transport whose events are recorded, with per-connection received bytes. */
async function recorded(kind: TransportKind, onData?: (t: ClientTransport, handle: number, chunk: Buffer) => void) {
  const log: string[] = [];
  const received = new Map<number, Buffer[]>();
  const accepted = new Map<string, number>();
  const closed = new Set<number>();
  const drained = new Set<number>();
  let transport!: ClientTransport;
  const events: TransportEvents = {
    accepted(handle, address, port) {
      accepted.set(`${address.replace(/^::ffff:/, '')}:${port}`, handle);
      received.set(handle, []);
    },
    data(handle, chunk) {
      received.get(handle)!.push(Buffer.from(chunk));
      onData?.(transport, handle, chunk);
    },
    drained(handle) {
      drained.add(handle);
    },
    closed(handle) {
      log.push(`closed ${handle}`);
      closed.add(handle);
    },
  };
  transport = await listenForClients({ host: '127.0.0.1', port: 0, backlog: 1024, kind }, events);
  return { transport, log, received, accepted, closed, drained };
}

async function client(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

const handleOf = async (r: Awaited<ReturnType<typeof recorded>>, s: Socket) => {
  const key = `127.0.0.1:${s.localPort}`;
  await until('the accept', () => r.accepted.has(key));
  return r.accepted.get(key)!;
};
const bytesOf = (chunks: Buffer[] | undefined) => Buffer.concat(chunks ?? []);
const digest = (b: Buffer) => createHash('sha1').update(b).digest('hex');

for (const { kind, skip } of kinds()) {
  describe(`${kind} transport`, { skip }, () => {
    test('bytes from many connections reach the right handle, whole and in order; the address is the peer\'s', async () => {
      const r = await recorded(kind);
      const sockets: Socket[] = [];
      try {
        for (let i = 0; i < 300; i++) sockets.push(await client(r.transport.port));
        const rng = new Rng(7);
        const sent = sockets.map(() => [] as Buffer[]);
        for (let round = 0; round < 5; round++) {
          sockets.forEach((s, i) => {
            const b = Buffer.from(Array.from({ length: 1 + rng.int(3000) }, () => rng.int(256)));
            sent[i].push(b);
            s.write(b);
          });
        }
        for (const [i, s] of sockets.entries()) {
          const h = await handleOf(r, s);
          const want = Buffer.concat(sent[i]);
          await until(`all bytes of connection ${i}`, () => bytesOf(r.received.get(h)).length >= want.length);
          assert.ok(bytesOf(r.received.get(h)).equals(want), `connection ${i}`);
        }
      } finally {
        for (const s of sockets) s.destroy();
        await r.transport.close();
      }
    });

    test('pause holds bytes back until resume; writes echo to the client', async () => {
      const r = await recorded(kind);
      const s = await client(r.transport.port);
      try {
        const h = await handleOf(r, s);
        r.transport.pause(h);
        s.write('held back');
        await new Promise((res) => setTimeout(res, 200));
        assert.equal(bytesOf(r.received.get(h)).length, 0);
        r.transport.resume(h);
        await until('the held bytes', () => bytesOf(r.received.get(h)).toString() === 'held back');
        const got: Buffer[] = [];
        s.on('data', (c) => got.push(c));
        assert.equal(r.transport.write(h, Buffer.from('echo')), 0);
        await until('the echo', () => Buffer.concat(got).toString() === 'echo');
      } finally {
        s.destroy();
        await r.transport.close();
      }
    });

    test('output a client does not read is queued, drained once it reads, and arrives intact', async () => {
      const r = await recorded(kind);
      const s = await client(r.transport.port);
      try {
        const h = await handleOf(r, s);
        s.pause();
        const big = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 255));
        let queued = 0;
        for (let i = 0; i < 32; i++) queued = r.transport.write(h, big);
        assert.ok(queued > 0, 'the kernel took 32 MiB without a reader');
        const got: Buffer[] = [];
        s.on('data', (c) => got.push(c));
        s.resume();
        await until('the drain', () => r.drained.has(h));
        await until('32 MiB', () => got.reduce((n, c) => n + c.length, 0) >= 32 * big.length);
        assert.equal(digest(Buffer.concat(got)), digest(Buffer.concat(Array.from({ length: 32 }, () => big))));
      } finally {
        s.destroy();
        await r.transport.close();
      }
    });

    test('end writes what is queued, then closes; closed() follows the peer\'s close', async () => {
      const r = await recorded(kind);
      const s = await client(r.transport.port);
      try {
        const h = await handleOf(r, s);
        const got: Buffer[] = [];
        s.on('data', (c) => got.push(c));
        const ended = new Promise<void>((res) => s.once('end', () => res()));
        r.transport.write(h, Buffer.alloc(3 << 20, 1));
        r.transport.end(h);
        assert.equal(r.transport.write(h, Buffer.from('late')), -1);
        await ended;
        assert.equal(Buffer.concat(got).length, 3 << 20);
        s.end();
        await until('closed()', () => r.closed.has(h));
      } finally {
        s.destroy();
        await r.transport.close();
      }
    });

    test('destroy closes at once without closed(); a peer\'s close or reset gives closed(); dead handles are refused', async () => {
      const r = await recorded(kind);
      const [a, b, c] = [await client(r.transport.port), await client(r.transport.port), await client(r.transport.port)];
      try {
        const [ha, hb, hc] = [await handleOf(r, a), await handleOf(r, b), await handleOf(r, c)];
        const aClosed = new Promise<void>((res) => a.once('close', () => res()));
        r.transport.destroy(ha);
        await aClosed;
        b.end();
        c.resetAndDestroy();
        await until('closed() for the peers', () => r.closed.has(hb) && r.closed.has(hc));
        assert.ok(!r.closed.has(ha));
        for (const h of [ha, hb, hc]) assert.equal(r.transport.write(h, Buffer.from('x')), -1);
        // A new connection may reuse a descriptor; the old handles still name nothing.
        const d = await client(r.transport.port);
        const hd = await handleOf(r, d);
        assert.ok(![ha, hb, hc].includes(hd));
        assert.equal(r.transport.write(ha, Buffer.from('x')), -1);
        d.destroy();
      } finally {
        for (const s of [a, b, c]) s.destroy();
        await r.transport.close();
      }
    });

    test('close stops listening and closes every connection', async () => {
      const r = await recorded(kind);
      const s = await client(r.transport.port);
      await handleOf(r, s);
      const gone = new Promise<void>((res) => s.once('close', () => res()));
      await r.transport.close();
      await gone;
      await assert.rejects(client(r.transport.port));
    });

    test('a seeded storm of clients doing odd things: every echo intact, nothing left open', async () => {
      const echo = (t: ClientTransport, h: number, chunk: Buffer) => t.write(h, chunk);
      const r = await recorded(kind, echo);
      const rng = new Rng(kind === 'epoll' ? 11 : 12);
      try {
        // Generous waits: the machine is shared, and this moves tens of megabytes both ways.
        const STORM_WAIT_MS = 60_000;
        const clients = Array.from({ length: 300 }, async () => {
          const s = await client(r.transport.port);
          const sent: Buffer[] = [];
          const got: Buffer[] = [];
          let sentBytes = 0;
          let gotBytes = 0;
          s.on('data', (c) => {
            got.push(c);
            gotBytes += c.length;
          });
          const ops = 1 + rng.int(20);
          for (let i = 0; i < ops; i++) {
            const b = Buffer.from(Array.from({ length: rng.pick([1, 3, 4, 5, 100, 4096, 20_000, 70_000]) }, () => rng.int(256)));
            sent.push(b);
            sentBytes += b.length;
            s.write(b);
            if (rng.int(4) === 0) s.pause();
            if (rng.int(4) === 0) s.resume();
            if (rng.int(10) === 0) await new Promise((res) => setTimeout(res, rng.int(20)));
          }
          s.resume();
          switch (rng.int(3)) {
            case 0: // wait for the whole echo, then close normally
              await until('the echo', () => gotBytes >= sentBytes, STORM_WAIT_MS);
              assert.ok(Buffer.concat(got).equals(Buffer.concat(sent)));
              s.end();
              break;
            case 1: // vanish with a reset, whatever is in flight
              s.resetAndDestroy();
              break;
            default: // half-close: the echo must still come back whole
              s.end();
              await until('the echo after a half close', () => gotBytes >= sentBytes, STORM_WAIT_MS);
              assert.ok(Buffer.concat(got).equals(Buffer.concat(sent)));
          }
        });
        await Promise.all(clients);
        // Counted by handle: a reset frees its client port at once, and the next client may take it.
        await until('every connection closed', () => r.closed.size === r.received.size, STORM_WAIT_MS);
      } finally {
        await r.transport.close();
      }
    });
  });
}
