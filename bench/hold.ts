/**
 * hold-N-sessions against one server: N sessions, each pinging once a second from the
 * moment it is open, for a measured stretch; ping round trips, how many sessions the
 * server still holds at the end, and its memory per session.
 *
 * Memory per session is the slope of the server's resident memory against the number of
 * sessions, read after full garbage collections at `readings` points from `warm` sessions
 * to N and fitted by least squares: what every process has anyway (code, heap reserve,
 * buffers) and the garbage of the moment are left out, and one reading's noise counts for
 * less. Before each reading `fill` small writes go through the server, so that a log kept
 * in memory (the last transactions, whatever they were) holds the same at every reading
 * instead of counting the transactions that opened the sessions as session memory.
 */
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { encodeConnectRequest, encodeRequest } from '../src/protocol/records.js';
import { OpCode } from '../src/protocol/opcodes.js';
import { drive, frame, LoadSession, OPEN, percentiles } from './load.js';
import { cpuSeconds, type BenchServer } from './servers.js';
import type { Row } from './workloads.js';

export interface HoldOptions {
  sessions: number;
  /** Small writes before each memory reading. */
  fill: number;
  /** Sessions open at the first memory reading. */
  warm: number;
  /** Memory readings, evenly spaced from `warm` to N sessions. */
  readings: number;
  /** Length of the measured stretch. */
  seconds: number;
}

const CONNECT = encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0, timeOut: 30_000, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false });
const PING = encodeRequest(-2, { type: OpCode.ping });
const SLICES = 1000;
const INDEX = Symbol('index');
type Indexed = Socket & { [INDEX]: number; rest?: Buffer };

/** Many sessions with as little client state as possible: a socket each and a few numbers in arrays. */
class Sessions {
  readonly sockets: Indexed[] = [];
  /** When the outstanding ping of each session was sent, -1 when none is. */
  readonly sentAt: Float64Array;
  /** When each session last had a ping answered. */
  readonly answeredAt: Float64Array;
  readonly open: Uint8Array;
  latencies = new Float64Array(1 << 22);
  count = 0;
  errors = 0;
  private readonly handshakes: ((ok: boolean) => void)[] = [];
  private slice = 0;
  private nextSliceAt = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly port: number,
    capacity: number,
  ) {
    this.sentAt = new Float64Array(capacity).fill(-1);
    this.answeredAt = new Float64Array(capacity);
    this.open = new Uint8Array(capacity);
    // One timer pings a thousandth of the sessions every millisecond: each once a second, spread
    // evenly, in small bursts the load generator answers quickly (its own delay is in every round trip).
    this.timer = setInterval(() => this.pingSlices(), 1000 / SLICES);
  }

  /** Pings every slice that is due: timers fire late, and each session must still ping once a second. */
  private pingSlices(): void {
    const now = performance.now();
    for (; this.nextSliceAt <= now; this.nextSliceAt += 1000 / SLICES) {
      for (let i = this.slice; i < this.sockets.length; i += SLICES) {
        if (this.open[i] !== 2 || this.sentAt[i] >= 0) continue;
        this.sentAt[i] = now;
        this.sockets[i].write(PING);
      }
      this.slice = (this.slice + 1) % SLICES;
    }
  }

  private onFrame(i: number, frame: Buffer): void {
    if (this.open[i] === 1) {
      this.open[i] = 2;
      this.handshakes[i]?.(true);
      delete this.handshakes[i];
      return;
    }
    const now = performance.now();
    if (frame.readInt32BE(0) !== -2 || frame.readInt32BE(12) !== 0) this.errors++;
    if (this.sentAt[i] >= 0) {
      if (this.count < this.latencies.length) this.latencies[this.count++] = now - this.sentAt[i];
      this.sentAt[i] = -1;
      this.answeredAt[i] = now;
    }
  }

  openOne(): Promise<boolean> {
    const i = this.sockets.length;
    const s = connect({ host: '127.0.0.1', port: this.port, noDelay: true }) as Indexed;
    s[INDEX] = i;
    this.sockets.push(s);
    this.open[i] = 1;
    const self = this;
    s.on('data', function (this: Indexed, chunk: Buffer) {
      let buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
      this.rest = undefined;
      let off = 0;
      while (buf.length - off >= 4 && buf.length - off - 4 >= buf.readInt32BE(off)) {
        const len = buf.readInt32BE(off);
        self.onFrame(this[INDEX], buf.subarray(off + 4, off + 4 + len));
        off += 4 + len;
      }
      if (off < buf.length) this.rest = Buffer.from(buf.subarray(off));
    });
    s.on('error', () => {});
    s.on('close', function (this: Indexed) {
      self.open[this[INDEX]] = 0;
      self.handshakes[this[INDEX]]?.(false);
      delete self.handshakes[this[INDEX]];
    });
    s.write(CONNECT);
    return new Promise((resolve) => (this.handshakes[i] = resolve));
  }

  /** Opens sessions until `n` are open, 250 at a time; returns how many failed to open. */
  async openUpTo(n: number): Promise<number> {
    let failed = 0;
    while (this.sockets.length < n) {
      const batch = Array.from({ length: Math.min(250, n - this.sockets.length) }, () => this.openOne());
      failed += (await Promise.all(batch)).filter((ok) => !ok).length;
    }
    return failed;
  }

  /** Sessions open and answered within the last `ms`. */
  held(ms: number): number {
    const since = performance.now() - ms;
    let n = 0;
    for (let i = 0; i < this.sockets.length; i++) if (this.open[i] === 2 && this.answeredAt[i] >= since) n++;
    return n;
  }

  resetLatencies(): void {
    this.count = 0;
    this.errors = 0;
  }

  close(): void {
    clearInterval(this.timer);
    for (const s of this.sockets) s.destroy();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxy / sxx;
}

/** `n` setData of a few bytes on one node, 64 in flight, from a session of their own. */
async function fill(port: number, n: number): Promise<void> {
  const s = await LoadSession.open(port, 30_000);
  try {
    const create = frame({ type: OpCode.create, path: '/hold-fill', data: Buffer.alloc(0), acl: OPEN, flags: 0 });
    await drive([s], () => create, 1, 1, 60);
    const set = frame({ type: OpCode.setData, path: '/hold-fill', data: Buffer.from('filler'), version: -1 });
    await drive([s], () => set, n, 64, 120);
  } finally {
    s.close();
  }
}

export async function holdSessions(server: BenchServer, o: HoldOptions): Promise<Row> {
  const sessions = new Sessions(server.port, o.sessions);
  try {
    const points: { n: number; rss: number; heapUsed?: number }[] = [];
    let failed = 0;
    for (let k = 0; k < o.readings; k++) {
      const n = Math.round(o.warm + ((o.sessions - o.warm) * k) / (o.readings - 1));
      failed += await sessions.openUpTo(n);
      if (k === o.readings - 1) break; // the last reading follows the measured stretch
      await fill(server.port, o.fill);
      await sleep(2000);
      points.push({ n, ...(await server.memoryAfterGc()) });
    }
    await sleep(5000);
    sessions.resetLatencies();
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    const cpu0 = cpuSeconds(server.pid);
    const start = performance.now();
    await sleep(o.seconds * 1000);
    const seconds = (performance.now() - start) / 1000;
    const serverCpu = cpuSeconds(server.pid) - cpu0;
    loopDelay.disable();
    const held = sessions.held(2000);
    const { count, errors, latencies } = sessions;
    const result = { ops: count, errors, seconds, opsPerSec: count / seconds, ...percentiles(latencies, count) };
    await fill(server.port, o.fill);
    await sleep(2000);
    const full = await server.memoryAfterGc();
    points.push({ n: o.sessions, ...full });
    const perSession = Math.round(slope(points.map((p) => [p.n, p.rss])));
    const heap = full.heapUsed !== undefined ? `, JS heap ${Math.round(slope(points.map((p) => [p.n, p.heapUsed!])))} B` : '';
    return {
      workload: `hold-${o.sessions}-sessions`,
      server: server.name,
      result,
      serverCpu,
      extra:
        `${held}/${o.sessions} sessions held${failed ? ` (${failed} failed to open)` : ''}; ` +
        `${perSession} B/session (RSS after GC, ${points.length} readings${heap}); RSS ${(full.rss / 2 ** 20).toFixed(0)} MiB; ` +
        `server CPU ${((serverCpu / result.ops) * 1e6).toFixed(1)} µs/ping; ` +
        `load generator's event-loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms`,
    };
  } finally {
    sessions.close();
  }
}
