/**
 * Malformed input against a live server over loopback: garbage before and after
 * connect, oversize length prefixes, unknown opcodes, half frames. Each bad
 * connection is closed (or answered with an error); a healthy session keeps
 * working throughout and the server's memory stays bounded.
 *
 * Then FUZZ_FRAMES (100,000) mutated valid request frames of every opcode over a few
 * long-lived sessions to a server in a process of its own, whose live memory after
 * full collections is compared between an early and a late quiet point.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { startServer, type RunningServer } from '../../src/index.js';
import { generateDigest } from '../../src/acl/acl.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { JuteReader } from '../../src/protocol/jute.js';
import { CreateMode, OpCode, Xid } from '../../src/protocol/opcodes.js';
import { encodeConnectRequest, encodeRequest, readConnectResponse, readReplyHeader, type ConnectResponse, type RequestBody } from '../../src/protocol/records.js';
import { RawClient } from '../support/raw-client.js';
import { Rng } from '../support/random.js';
import { sleep, TIMING_SLACK_MS } from '../support/client-faults.js';
import { fourLetter } from '../support/zookeeper.js';

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

// ---- mutated valid frames over long-lived sessions ---------------------------------------

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const LANES = 4;
/** jute.maxbuffer of the fuzzed server: small, so frames at and past the limit are cheap to send. */
const MAX_BUFFER = 64 * 1024;
/** Markers (a valid request after each fuzzed frame) use xids from here up; fuzzed xids stay far below. */
const MARKER_XID = 0x7f000000;
const SUPER = 'super:fuzz';
const ACL_OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const ACL_DIGEST = [{ perms: 1, id: { scheme: 'digest', id: generateDigest('u:p') } }, ...ACL_OPEN];

/** A header-only frame, for opcodes the codec has no request body for. */
function rawFrame(xid: number, type: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(xid, 4);
  b.writeInt32BE(type, 8);
  return b;
}

/** One valid frame per opcode a client can send (and some it cannot), on paths under /f. */
const VALID: Buffer[] = [
  ...(
    [
      { type: OpCode.create, path: '/f/a', data: Buffer.from('data'), acl: ACL_OPEN, flags: CreateMode.PERSISTENT },
      { type: OpCode.create, path: '/f/e-', data: Buffer.alloc(0), acl: ACL_DIGEST, flags: CreateMode.EPHEMERAL_SEQUENTIAL },
      { type: OpCode.create2, path: '/f/b', data: Buffer.alloc(8), acl: ACL_OPEN, flags: CreateMode.EPHEMERAL },
      { type: OpCode.createContainer, path: '/f/c', data: Buffer.alloc(0), acl: ACL_OPEN, flags: CreateMode.CONTAINER },
      { type: OpCode.createTTL, path: '/f/t', data: Buffer.alloc(3), acl: ACL_OPEN, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 500 },
      { type: OpCode.delete, path: '/f/a', version: -1 },
      { type: OpCode.deleteContainer, path: '/f/c', version: -1 },
      { type: OpCode.exists, path: '/f/a', watch: true },
      { type: OpCode.getData, path: '/f', watch: true },
      { type: OpCode.setData, path: '/f/a', data: Buffer.alloc(16, 1), version: -1 },
      { type: OpCode.getACL, path: '/f' },
      { type: OpCode.setACL, path: '/f/a', acl: ACL_DIGEST, version: -1 },
      { type: OpCode.getChildren, path: '/f', watch: true },
      { type: OpCode.sync, path: '/f' },
      { type: OpCode.getChildren2, path: '/f', watch: false },
      { type: OpCode.check, path: '/f', version: -1 },
      {
        type: OpCode.multi,
        ops: [
          { type: OpCode.create, path: '/f/m', data: Buffer.from('m'), acl: ACL_OPEN, flags: CreateMode.EPHEMERAL },
          { type: OpCode.check, path: '/f/m', version: 0 },
          { type: OpCode.setData, path: '/f/m', data: Buffer.from('n'), version: 0 },
          { type: OpCode.delete, path: '/f/m', version: 1 },
        ],
      },
      { type: OpCode.reconfig, joiningServers: 'server.9=127.0.0.1:1:2', leavingServers: null, newMembers: null, curConfigId: -1 },
      { type: OpCode.checkWatches, path: '/f', watcherType: 3 },
      { type: OpCode.removeWatches, path: '/f', watcherType: 3 },
      {
        type: OpCode.multiRead,
        ops: [
          { type: OpCode.getData, path: '/f', watch: false },
          { type: OpCode.getChildren, path: '/f', watch: false },
        ],
      },
      { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('u:p') },
      { type: OpCode.setWatches, relativeZxid: 1, dataWatches: ['/f', '/f/a'], existWatches: ['/f/x'], childWatches: ['/f'], persistentWatches: [], persistentRecursiveWatches: [] },
      { type: OpCode.sasl, token: Buffer.from('token') },
      { type: OpCode.getEphemerals, prefixPath: '/f' },
      { type: OpCode.getAllChildrenNumber, path: '/f' },
      { type: OpCode.setWatches2, relativeZxid: 1, dataWatches: ['/f'], existWatches: [], childWatches: ['/f'], persistentWatches: ['/f'], persistentRecursiveWatches: ['/f/a'] },
      { type: OpCode.addWatch, path: '/f', mode: 1 },
      { type: OpCode.whoAmI },
      { type: OpCode.ping },
      { type: OpCode.closeSession },
    ] as RequestBody[]
  ).map((body) => {
    const xid = body.type === OpCode.ping ? Xid.ping : body.type === OpCode.auth ? Xid.auth : body.type === OpCode.setWatches || body.type === OpCode.setWatches2 ? Xid.setWatches : 1;
    return encodeRequest(xid, body);
  }),
  rawFrame(1, OpCode.createSession),
  rawFrame(1, OpCode.notification),
  rawFrame(1, 55),
];
const ALL_TYPES = [...new Set(VALID.map((f) => f.readInt32BE(8))), 10, 23, 99, 108, -1, 0x7fffffff];
/** closeSession ends its session: rarer, or sessions would hardly be long-lived. */
const CLOSE_SESSION = VALID.findIndex((f) => f.readInt32BE(8) === OpCode.closeSession);

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function framed(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** Offsets past the header whose int reads like a length or count (-1 or what is left): strings, buffers, vectors. */
function lengthFields(body: Buffer): number[] {
  const out: number[] = [];
  for (let o = 8; o + 4 <= body.length; o++) {
    const v = body.readInt32BE(o);
    if (v === -1 || (v >= 0 && v <= body.length - o - 4)) out.push(o);
  }
  return out;
}

const EXTREMES = [-2, -1, 0, 1, 0x7fffffff, 0x40000000, 0x80000000 | 0, MAX_BUFFER, MAX_BUFFER + 1];

/**
 * A mutated valid frame. Most keep a length prefix that matches the body, so the
 * server reads them as one request each (aligned); the rest corrupt the prefix itself
 * (negative, past jute.maxbuffer, short of or beyond the body), after which the stream
 * means nothing and the connection ends with them.
 */
function mutatedFrame(rng: Rng): { bytes: Buffer; aligned: boolean; kind: string } {
  let pick = rng.int(VALID.length);
  if (pick === CLOSE_SESSION && !rng.chance(0.05)) pick = (pick + 1) % VALID.length;
  const body = Buffer.from(VALID[pick].subarray(4));
  if (body.readInt32BE(0) === 1) body.writeInt32BE(1 + rng.int(1 << 20), 0);
  const kind = rng.weighted([
    [5, 'valid'],
    [18, 'bits'],
    [20, 'length-field'],
    [8, 'int-field'],
    [10, 'truncate'],
    [10, 'tail'],
    [1, 'oversize'],
    [10, 'overwrite'],
    [8, 'opcode'],
    [4, 'random-body'],
    [4, 'prefix'],
  ] as const);
  let out = body;
  switch (kind) {
    case 'valid':
      break;
    case 'bits': // mostly past the header: a changed opcode closes the connection, and 'opcode' does that already
      for (let i = 0, n = 1 + rng.int(4); i < n; i++) out[rng.chance(0.9) && out.length > 8 ? 8 + rng.int(out.length - 8) : rng.int(out.length)] ^= 1 << rng.int(8);
      break;
    case 'length-field': {
      const fields = lengthFields(out);
      if (fields.length === 0) break;
      const at = rng.pick(fields);
      const v = out.readInt32BE(at);
      out.writeInt32BE(rng.chance(0.5) ? rng.pick(EXTREMES) : v + rng.pick([-2, -1, 1, 2, 3]), at);
      break;
    }
    case 'int-field':
      if (out.length >= 12) out.writeInt32BE(rng.pick(EXTREMES), 8 + rng.int(out.length - 11));
      break;
    case 'truncate':
      out = out.subarray(0, rng.int(out.length));
      break;
    case 'tail':
      out = Buffer.concat([out, randomBytes(rng, 1 + rng.int(64))]);
      break;
    case 'oversize': // up to jute.maxbuffer, at it, or just past it (the connection is closed)
      out = Buffer.concat([out, Buffer.alloc(rng.pick([MAX_BUFFER - out.length - 1, MAX_BUFFER - out.length, MAX_BUFFER - out.length + 1, rng.int(MAX_BUFFER - out.length)]), 0x2f)]);
      break;
    case 'overwrite': {
      const at = rng.chance(0.9) && out.length > 8 ? 8 + rng.int(out.length - 8) : rng.int(out.length);
      for (let i = at; i < Math.min(out.length, at + 1 + rng.int(8)); i++) out[i] = rng.int(256);
      break;
    }
    case 'opcode': // another opcode's header on this body
      out.writeInt32BE(rng.pick(ALL_TYPES), 4);
      break;
    case 'random-body':
      out = Buffer.concat([out.subarray(0, 8), randomBytes(rng, rng.int(48))]);
      break;
    case 'prefix': {
      const bytes = framed(out);
      bytes.writeInt32BE(rng.pick([-1, -100, MAX_BUFFER + 1, 0x7fffffff, out.length - 1 - rng.int(6), out.length + 1 + rng.int(64)]), 0);
      return { bytes, aligned: false, kind };
    }
  }
  return { bytes: framed(out), aligned: out.length <= MAX_BUFFER, kind };
}

/**
 * One fuzzing session. Each mutated frame is followed by a valid marker request whose
 * reply shows that the server took the frame (replies leave in request order); the
 * first frame without an answered marker is the one the server closed the connection
 * for, and the frames after it never reached the parser. When the server closes, the
 * lane reattaches to its session (a new one if that session is gone).
 */
class Lane {
  private socket: Socket | undefined;
  private decoder = new FrameDecoder(16 * 1024 * 1024);
  private handshake: ((r: ConnectResponse) => void) | undefined;
  private session: { id: bigint; passwd: Buffer } | undefined;
  private answered = 0;
  private nextMarker = MARKER_XID;
  /** The markers of the batch in flight; a fuzzed xid rarely falls in so narrow a window. */
  private markers = [0, -1];
  private wake: (() => void) | undefined;
  private closed = true;
  connections = 0;
  sessions = 0;

  constructor(private readonly port: number) {}

  private onData(chunk: Buffer): void {
    // A reply the client cannot frame or read is the server's fault: it fails the test.
    for (const f of this.decoder.push(chunk)) {
      const r = new JuteReader(f);
      if (this.handshake) {
        const done = this.handshake;
        this.handshake = undefined;
        done(readConnectResponse(r));
        continue;
      }
      const { xid } = readReplyHeader(r);
      if (xid >= this.markers[0] && xid <= this.markers[1]) this.answered = xid;
    }
    this.wake?.();
  }

  private async until(cond: () => boolean, what: () => string, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (!cond()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`lane: no ${what()} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private async open(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (attempt === 20) throw new Error('lane: could not open a session in 20 attempts');
      const socket = connect({ host: '127.0.0.1', port: this.port, noDelay: true });
      this.socket = socket;
      this.decoder = new FrameDecoder(16 * 1024 * 1024);
      this.closed = false;
      this.answered = 0;
      // Events of a connection given up earlier must not touch this one.
      socket.on('data', (c) => this.socket === socket && this.onData(c));
      socket.on('error', () => {});
      socket.on('close', () => {
        if (this.socket !== socket) return;
        this.closed = true;
        this.wake?.();
      });
      let response: ConnectResponse | undefined;
      this.handshake = (r) => (response = r);
      this.connections++;
      socket.write(
        encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0, timeOut: 4000, sessionId: this.session?.id ?? 0n, passwd: this.session?.passwd ?? Buffer.alloc(16), readOnly: false }),
      );
      await this.until(() => response !== undefined || this.closed, () => 'ConnectResponse');
      if (response && response.timeOut > 0) {
        if (response.sessionId !== this.session?.id) this.sessions++;
        this.session = { id: response.sessionId, passwd: response.passwd };
        return;
      }
      // Refused: a fuzzed closeSession ended the session. Start another.
      this.session = undefined;
      socket.destroy();
    }
  }

  /**
   * Sends the frames, each with its marker, and waits until the last marker is answered
   * or the server has closed the connection; returns how many frames reached the server
   * and whether the last of those closed the connection. A frame with a corrupt length
   * prefix comes last and has no marker: the lane hangs up after it, and the server,
   * which may be waiting for bytes that never come, must close.
   */
  async batch(frames: { bytes: Buffer; aligned: boolean }[], split: number | undefined): Promise<{ reached: number; closed: boolean }> {
    if (this.closed) await this.open();
    const socket = this.socket!;
    const first = this.nextMarker;
    const parts: Buffer[] = [];
    for (const f of frames) {
      parts.push(f.bytes);
      if (f.aligned) parts.push(encodeRequest(this.nextMarker++, { type: OpCode.exists, path: '/', watch: false }));
    }
    const last = this.nextMarker - 1;
    this.markers = [first, last];
    const bytes = Buffer.concat(parts);
    // Sometimes in two writes, so that a frame may arrive in pieces.
    if (split !== undefined) {
      socket.write(bytes.subarray(0, split % bytes.length));
      socket.write(bytes.subarray(split % bytes.length));
    } else socket.write(bytes);
    const terminal = !frames[frames.length - 1].aligned;
    if (terminal) socket.end();
    await this.until(
      () => (!terminal && this.answered >= last) || this.closed,
      () => `answer or close after ${frames.length} frames (${terminal ? 'the last with a corrupt length prefix' : 'aligned'}; markers ${first - MARKER_XID}..${last - MARKER_XID}, answered up to ${this.answered - MARKER_XID}): ${bytes.toString('hex').slice(0, 4000)}`,
    );
    const answered = Math.max(0, this.answered - first + 1);
    return answered === frames.length ? { reached: answered, closed: false } : { reached: answered + 1, closed: true };
  }

  /** Closes the session (it must not outlive the phase) and the connection. */
  async quiesce(): Promise<void> {
    if (this.closed && this.session) await this.open();
    if (!this.closed) {
      this.markers = [0, -1];
      this.socket!.write(encodeRequest(this.nextMarker++, { type: OpCode.closeSession }));
      await this.until(() => this.closed, () => 'close after closeSession');
    }
    this.session = undefined;
  }
}

/** A server in its own process started with --expose-gc (test/server/child-server.ts). */
class ChildServer {
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static start(config: object): ChildServer {
    const script = new URL('../server/child-server.ts', import.meta.url).pathname;
    return new ChildServer(spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  }

  async line<T>(key: string, ms = 30_000): Promise<T> {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = this.lines.findIndex((l) => key in JSON.parse(l));
      if (i >= 0) return JSON.parse(this.lines.splice(i, 1)[0])[key] as T;
      if (this.child.exitCode !== null || performance.now() > deadline) throw new Error(`server ${this.child.exitCode !== null ? `exited (${this.child.exitCode})` : 'did not answer'} before "${key}"`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** Live memory after full collections. */
  async memory(): Promise<{ heapUsed: number; external: number; arrayBuffers: number; rss: number }> {
    process.kill(this.child.pid!, 'SIGUSR2');
    return this.line('memory');
  }
}

/** Deletes everything below / except /zookeeper and /healthy (the client passes every ACL); returns how many nodes went. */
async function clearTree(c: RawClient): Promise<number> {
  const found: string[] = [];
  let level = ['/'];
  while (level.length > 0) {
    const replies = await Promise.all(level.map((path) => c.request({ type: OpCode.getChildren, path, watch: false })));
    const next: string[] = [];
    replies.forEach((r, i) => {
      if (r.err !== 0) return;
      for (const child of (r.response as { children: string[] }).children) {
        const path = level[i] === '/' ? `/${child}` : `${level[i]}/${child}`;
        if (path === '/zookeeper' || path === '/healthy') continue;
        next.push(path);
      }
    });
    found.push(...next);
    level = next;
  }
  // Deepest first, pipelined: a connection's requests are applied in order.
  await Promise.all(found.reverse().map((path) => c.request({ type: OpCode.delete, path, version: -1 })));
  return found.length;
}

const mntr = async (port: number) => new Map((await fourLetter(port, 'mntr')).split('\n').map((l) => l.split('\t') as [string, string]));
const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

test(`${FRAMES} mutated request frames of every opcode from ${LANES} sessions reattached after each close: the server stays up, a healthy session keeps working, memory stays bounded`, async (t) => {
  const started = performance.now();
  const server = ChildServer.start({
    maxClientCnxns: 0,
    tickTime: 200,
    minSessionTimeout: 400,
    maxSessionTimeout: 4000,
    maxBuffer: MAX_BUFFER,
    extendedTypesEnabled: true,
    containerCheckIntervalMs: 100,
    superDigest: generateDigest(SUPER),
    fourLetterWords: '*',
  });
  let healthyLoop: Promise<void> | undefined;
  let stop = false;
  try {
    const port = await server.line<number>('port');
    const healthy = await RawClient.connect(port, { timeout: 10_000 });
    assert.equal((await healthy.request({ type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from(SUPER) })).err, 0);
    assert.equal((await healthy.request({ type: OpCode.create, path: '/healthy', data: Buffer.from('0'), acl: ACL_OPEN, flags: CreateMode.EPHEMERAL })).err, 0);

    // The healthy session writes and reads all along; each answer must come within the slack a busy machine needs.
    let writes = 0;
    let worstMs = 0;
    let healthyFailed: unknown;
    healthyLoop = (async () => {
      while (!stop) {
        const at = performance.now();
        const set = await healthy.request({ type: OpCode.setData, path: '/healthy', data: Buffer.from(String(writes)), version: writes });
        assert.equal(set.err, 0, `healthy write ${writes} failed`);
        writes++;
        const get = await healthy.request({ type: OpCode.getData, path: '/healthy', watch: false });
        assert.equal((get.response as { data: Buffer }).data.toString(), String(writes - 1));
        worstMs = Math.max(worstMs, performance.now() - at);
        assert.ok(worstMs < TIMING_SLACK_MS, `a healthy write and read took ${worstMs.toFixed(0)} ms`);
        await sleep(20);
      }
    })().catch((e: unknown) => {
      healthyFailed = e;
      stop = true;
    });

    const seed = Number(process.env.FUZZ_SEED ?? 23);
    const lanes = Array.from({ length: LANES }, () => new Lane(port));
    // One generator per lane: its frames do not depend on how the lanes interleave.
    const rngs = lanes.map((_, i) => new Rng(seed * 31 + i));
    // Per kind of mutation: frames that reached the server, and how many of those it closed the connection for.
    const reachedBy = new Map<string, number>();
    const closedBy = new Map<string, number>();
    let reached = 0;
    const runPhase = async (until: number) => {
      await Promise.all(
        lanes.map(async (lane, i) => {
          const rng = rngs[i];
          while (reached < until && !stop) {
            const frames: ReturnType<typeof mutatedFrame>[] = [];
            for (let k = 0, n = 1 + rng.int(8); k < n; k++) {
              frames.push(mutatedFrame(rng));
              if (!frames[k].aligned) break;
            }
            const r = await lane.batch(frames, rng.chance(0.2) ? rng.int(1 << 16) : undefined);
            reached += r.reached;
            for (const f of frames.slice(0, r.reached)) reachedBy.set(f.kind, (reachedBy.get(f.kind) ?? 0) + 1);
            if (r.closed) closedBy.set(frames[r.reached - 1].kind, (closedBy.get(frames[r.reached - 1].kind) ?? 0) + 1);
          }
        }),
      );
    };

    /** Sessions closed, fuzzed nodes deleted, only the healthy session and connection left: then live memory. */
    const quietPoint = async (what: string) => {
      await Promise.all(lanes.map((l) => l.quiesce()));
      const deleted = await clearTree(healthy);
      assert.equal((await healthy.request({ type: OpCode.create, path: '/f', data: Buffer.alloc(0), acl: ACL_OPEN, flags: 0 })).err, 0);
      let m = await mntr(port);
      const deadline = performance.now() + 15_000;
      // Sessions a lane gave up when the server refused them are already gone; this waits out any the server still holds.
      while ((m.get('zk_global_sessions') !== '1' || m.get('zk_ephemerals_count') !== '1') && performance.now() < deadline) {
        await sleep(200);
        m = await mntr(port);
      }
      assert.equal(m.get('zk_global_sessions'), '1', `${what}: sessions left besides the healthy one`);
      assert.equal(m.get('zk_ephemerals_count'), '1', `${what}: ephemerals left besides /healthy`);
      assert.equal(m.get('zk_watch_count'), '0', `${what}: watches left by closed connections`);
      const memory = await server.memory();
      t.diagnostic(`${what}: ${reached} frames, ${deleted} nodes deleted, heap ${MiB(memory.heapUsed)}, external ${MiB(memory.external)} (array buffers ${MiB(memory.arrayBuffers)}), rss ${MiB(memory.rss)}, ${m.get('zk_num_alive_connections')} connections`);
      return { memory, conns: m.get('zk_num_alive_connections') };
    };

    await runPhase(FRAMES / 10);
    if (healthyFailed) throw healthyFailed;
    const early = await quietPoint('early');
    await runPhase(FRAMES);
    if (healthyFailed) throw healthyFailed;
    const late = await quietPoint('late');
    stop = true;
    await healthyLoop;
    if (healthyFailed) throw healthyFailed;

    const kinds = [...reachedBy].map(([k, n]) => `${k} ${n}/${closedBy.get(k) ?? 0}`).join(', ');
    t.diagnostic(
      `${Math.round(performance.now() - started)} ms; frames reached/closed the connection by mutation: ${kinds}; ` +
        `connections ${lanes.reduce((n, l) => n + l.connections, 0)}, sessions ${lanes.reduce((n, l) => n + l.sessions, 0)}; healthy writes ${writes}, worst ${worstMs.toFixed(0)} ms`,
    );
    assert.ok(reached >= FRAMES, `${reached} frames reached the server`);
    for (const kind of ['valid', 'bits', 'length-field', 'truncate', 'tail', 'oversize', 'opcode', 'prefix']) assert.ok(reachedBy.get(kind), `no ${kind} frames`);
    assert.equal(late.conns, early.conns, 'connections left open');
    // A leak of even a few dozen bytes per frame or per connection would show here.
    const heapGrowth = late.memory.heapUsed - early.memory.heapUsed;
    const externalGrowth = late.memory.external - early.memory.external;
    assert.ok(heapGrowth < 2 * 2 ** 20, `live heap grew by ${MiB(heapGrowth)} from ${MiB(early.memory.heapUsed)}`);
    assert.ok(externalGrowth < 2 * 2 ** 20, `external memory grew by ${MiB(externalGrowth)} from ${MiB(early.memory.external)}`);

    // The server is up, the healthy session has every write, and a new session is served.
    assert.equal(server.child.exitCode, null, 'the server exited');
    assert.equal(await fourLetter(port, 'ruok'), 'imok');
    const get = await healthy.request({ type: OpCode.getData, path: '/healthy', watch: false });
    assert.equal((get.response as { stat: { version: number } }).stat.version, writes);
    const fresh = await RawClient.connect(port, { timeout: 4000 });
    assert.equal((await fresh.request({ type: OpCode.exists, path: '/healthy', watch: false })).err, 0);
    await fresh.close();
    await healthy.close();
  } finally {
    stop = true;
    await healthyLoop;
    server.child.kill('SIGKILL');
  }
});
