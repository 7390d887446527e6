/**
 * A session on the raw wire that records every frame the server sends, in arrival
 * order, with its header as sent: what tests of reply order, reply-header zxids and
 * answers to odd requests compare between servers.
 *
 *   const s = await WireSession.open(port);
 *   s.send(encodeRequest(7, { type: OpCode.getData, path: '/x', watch: true }));
 *   const reply = await s.reply(7);
 */
import { connect, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { JuteReader } from '../../src/protocol/jute.js';
import { Xid } from '../../src/protocol/opcodes.js';
import { encodeConnectRequest, readConnectResponse, readReplyHeader, readWatcherEvent, type ConnectResponse } from '../../src/protocol/records.js';

export interface Frame {
  xid: number;
  zxid: number;
  err: number;
  /** The bytes after the reply header. */
  body: Buffer;
  /** For notifications (xid -1): "<type>:<path>". */
  event?: string;
}

/** How long a test waits for any one thing from a server before it fails. */
export const WAIT_MS = 10_000;

export class WireSession {
  readonly frames: Frame[] = [];
  closed = false;
  session!: ConnectResponse;
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);
  private waiters: (() => void)[] = [];
  private handshaking = true;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number, timeoutMs = 10_000): Promise<WireSession> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    const s = new WireSession(socket);
    socket.write(encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0, timeOut: timeoutMs, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false }));
    await s.until(() => !s.handshaking, 'ConnectResponse');
    if (s.session.timeOut <= 0) throw new Error('session refused');
    return s;
  }

  private onData(chunk: Buffer): void {
    for (const f of this.decoder.push(chunk)) {
      const r = new JuteReader(f);
      if (this.handshaking) {
        this.session = readConnectResponse(r);
        this.handshaking = false;
        continue;
      }
      const h = readReplyHeader(r);
      const frame: Frame = { ...h, body: f.subarray(16) };
      if (h.xid === Xid.notification) {
        const e = readWatcherEvent(r);
        frame.event = `${e.type}:${e.path}`;
      }
      this.frames.push(frame);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits until `done()` holds; fails after WAIT_MS, or once the connection is closed without it. */
  async until(done: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The reply with this xid, once it has arrived. */
  async reply(xid: number): Promise<Frame> {
    await this.until(() => this.frames.some((f) => f.xid === xid), `reply to xid ${xid}`);
    return this.frames.find((f) => f.xid === xid)!;
  }

  /** Waits for the server to close the connection, up to `ms`; true if it did. */
  async closedWithin(ms: number): Promise<boolean> {
    try {
      await this.until(() => this.closed, 'close', ms);
    } catch {
      // still open, or closed meanwhile
    }
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
