/**
 * A load generator speaking the ZooKeeper wire protocol: many sessions, each with
 * a bounded window of pipelined requests, recording every request's latency.
 */
import { connect, type Socket } from 'node:net';
import { FrameDecoder } from '../src/protocol/frame.js';
import { JuteReader } from '../src/protocol/jute.js';
import { CreateMode, OpCode, Xid } from '../src/protocol/opcodes.js';
import { encodeConnectRequest, encodeRequest, readConnectResponse, readReplyHeader, type RequestBody } from '../src/protocol/records.js';

export const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

/** One session; replies come back in request order, so a FIFO of start times is enough. */
export class LoadSession {
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);
  private readonly started: number[] = [];
  private head = 0;
  private onReply: ((latency: number, err: number) => void) | undefined;
  private connected: (() => void) | undefined;
  errors = 0;
  inFlight = 0;
  sessionId = 0n;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => {});
  }

  static async open(port: number, timeoutMs: number): Promise<LoadSession> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    const s = new LoadSession(socket);
    await new Promise<void>((resolve, reject) => {
      s.connected = resolve;
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed while connecting')));
      socket.write(encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0, timeOut: timeoutMs, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false }));
    });
    return s;
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    for (const frame of this.decoder.push(chunk)) {
      const r = new JuteReader(frame);
      if (this.connected) {
        this.sessionId = readConnectResponse(r).sessionId;
        const done = this.connected;
        this.connected = undefined;
        done();
        continue;
      }
      const h = readReplyHeader(r);
      if (h.xid === Xid.notification) continue;
      const t0 = this.started[this.head++];
      if (this.head > 4096) {
        this.started.splice(0, this.head);
        this.head = 0;
      }
      this.inFlight--;
      if (h.err !== 0) this.errors++;
      this.onReply?.(now - t0, h.err);
    }
  }

  setHandler(fn: (latency: number, err: number) => void): void {
    this.onReply = fn;
  }

  send(frame: Buffer): void {
    this.started.push(performance.now());
    this.inFlight++;
    this.socket.write(frame);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface Result {
  ops: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  p999: number;
}

export function percentiles(lat: Float64Array, n: number): { p50: number; p99: number; p999: number } {
  const sorted = lat.subarray(0, n).sort();
  const at = (q: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]);
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

/** Makes the i-th request of session s. */
export type RequestMaker = (s: number, i: number) => Buffer;

/**
 * Runs `total` requests over the sessions with `window` in flight per session,
 * stopping early at `maxSeconds`.
 */
export async function drive(sessions: LoadSession[], make: RequestMaker, total: number, window: number, maxSeconds: number): Promise<Result> {
  const lat = new Float64Array(total);
  let sent = 0;
  let done = 0;
  let errors = 0;
  const start = performance.now();
  const stopAt = start + maxSeconds * 1000;
  const perSession = new Array(sessions.length).fill(0);
  await new Promise<void>((resolve) => {
    const pump = (k: number) => {
      const s = sessions[k];
      s.socket.cork();
      while (s.inFlight < window && sent < total && performance.now() < stopAt) {
        s.send(make(k, perSession[k]++));
        sent++;
      }
      s.socket.uncork();
    };
    sessions.forEach((s, k) => {
      s.setHandler((latency, err) => {
        lat[done++] = latency;
        if (err !== 0) errors++;
        if (done === sent && (sent === total || performance.now() >= stopAt)) resolve();
        else pump(k);
      });
    });
    sessions.forEach((_, k) => pump(k));
  });
  const seconds = (performance.now() - start) / 1000;
  return { ops: done, errors, seconds, opsPerSec: done / seconds, ...percentiles(lat, done) };
}

export function createFrame(path: string, data: Buffer, flags: number = CreateMode.PERSISTENT): Buffer {
  return encodeRequest(1, { type: OpCode.create, path, data, acl: OPEN, flags });
}

export function frame(body: RequestBody): Buffer {
  return encodeRequest(1, body);
}
