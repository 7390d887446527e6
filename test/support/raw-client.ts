/**
 * A minimal client speaking the wire protocol with pulsekeeper's codec. It shows
 * raw error codes, Stat and notifications exactly as a server sent them, which is
 * what differential, heartbeat and fuzz tests compare. Not a client for applications.
 *
 *   const c = await RawClient.connect(port, { timeout: 4000 });
 *   const { err, zxid, response } = await c.request({ type: OpCode.getData, path: '/a', watch: true });
 */
import { connect, type Socket } from 'node:net';
import { JuteReader } from '../../src/protocol/jute.js';
import { OpCode, Xid } from '../../src/protocol/opcodes.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import {
  decodeResponseBody,
  encodeConnectRequest,
  encodeRequest,
  readConnectResponse,
  readReplyHeader,
  readWatcherEvent,
  type ConnectResponse,
  type RequestBody,
  type ResponseBody,
  type WatcherEvent,
} from '../../src/protocol/records.js';

export interface Reply {
  err: number;
  zxid: number;
  response?: ResponseBody;
  /** Length of the reply body after the header, as sent. */
  bodyBytes: number;
}

export interface RawConnectOptions {
  host?: string;
  timeout?: number;
  sessionId?: bigint;
  passwd?: Buffer;
  lastZxidSeen?: number;
  readOnly?: boolean;
}

export interface Notification extends WatcherEvent {
  zxid: number;
}

export class RawClient {
  readonly events: Notification[] = [];
  session!: ConnectResponse;
  lastZxid = 0;
  private xid = 1;
  private readonly pending: { xid: number; type: number; resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private readonly decoder = new FrameDecoder(16 * 1024 * 1024);
  private connected: ((r: ConnectResponse) => void) | undefined;
  private eventWaiters: (() => void)[] = [];
  closed = false;
  closeReason: Error | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (e) => (this.closeReason ??= e));
    socket.on('close', () => {
      this.closed = true;
      const err = this.closeReason ?? new Error('connection closed');
      for (const p of this.pending.splice(0)) p.reject(err);
      for (const w of this.eventWaiters.splice(0)) w();
    });
  }

  static async connect(port: number, opts: RawConnectOptions = {}): Promise<RawClient> {
    const socket = connect({ host: opts.host ?? '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawClient(socket);
    const res = new Promise<ConnectResponse>((resolve, reject) => {
      c.connected = resolve;
      socket.once('close', () => reject(c.closeReason ?? new Error('closed before ConnectResponse')));
    });
    socket.write(
      encodeConnectRequest({
        protocolVersion: 0,
        lastZxidSeen: opts.lastZxidSeen ?? 0,
        timeOut: opts.timeout ?? 10_000,
        sessionId: opts.sessionId ?? 0n,
        passwd: opts.passwd ?? Buffer.alloc(16),
        readOnly: opts.readOnly ?? false,
      }),
    );
    c.session = await res;
    return c;
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.closeReason = e as Error;
      this.socket.destroy();
      return;
    }
    for (const frame of frames) {
      const r = new JuteReader(frame);
      if (this.connected) {
        const cb = this.connected;
        this.connected = undefined;
        cb(readConnectResponse(r));
        continue;
      }
      const h = readReplyHeader(r);
      if (h.xid === Xid.notification) {
        this.events.push({ ...readWatcherEvent(r), zxid: h.zxid });
        for (const w of this.eventWaiters.splice(0)) w();
        continue;
      }
      const p = this.pending.shift();
      if (!p || p.xid !== h.xid) {
        this.closeReason = new Error(`reply xid ${h.xid} does not match request xid ${p?.xid}`);
        this.socket.destroy();
        return;
      }
      if (h.zxid > 0) this.lastZxid = Math.max(this.lastZxid, h.zxid);
      const isMulti = p.type === OpCode.multi || p.type === OpCode.multiRead;
      const bodyBytes = r.remaining;
      const response = (h.err === 0 || isMulti) && r.remaining > 0 ? decodeResponseBody(p.type, r) : undefined;
      p.resolve({ err: h.err, zxid: h.zxid, response, bodyBytes });
    }
  }

  /** Sends a request and resolves with its reply (requests may be pipelined). */
  request(body: RequestBody): Promise<Reply> {
    const xid =
      body.type === OpCode.ping ? Xid.ping : body.type === OpCode.auth ? Xid.auth : body.type === OpCode.setWatches || body.type === OpCode.setWatches2 ? Xid.setWatches : this.xid++;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(this.closeReason ?? new Error('connection closed'));
      this.pending.push({ xid, type: body.type, resolve, reject });
      this.socket.write(encodeRequest(xid, body));
    });
  }

  ping(): Promise<Reply> {
    return this.request({ type: OpCode.ping });
  }

  /** Waits until at least n notifications have arrived in total, or ms pass. */
  async waitForEvents(n: number, ms = 2000): Promise<Notification[]> {
    const deadline = Date.now() + ms;
    while (this.events.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.events;
  }

  sendRaw(data: Buffer): void {
    this.socket.write(data);
  }

  /** closeSession, then wait for the server to close the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.request({ type: OpCode.closeSession });
    } catch {
      // the server may close before or as it answers
    }
    this.socket.end();
    await this.closedPromise;
  }

  /** Drops the connection without closing the session (a client that crashed or lost its network). */
  async destroy(): Promise<void> {
    this.socket.destroy();
    await this.closedPromise;
  }

  whenClosed(): Promise<void> {
    return this.closedPromise;
  }
}
