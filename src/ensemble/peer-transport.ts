/**
 * TCP between ensemble members. Each member keeps one outgoing connection to every
 * other member and sends on it; what it receives comes in on the connections the
 * others opened to it, each introduced by a hello naming its sender. Frames queued in
 * one event-loop turn leave in one write per peer.
 *
 * Consensus tolerates lost messages, so a peer that is down or too slow to drain its
 * queue simply misses frames (they are dropped and counted); the core resends what
 * matters. Snapshot streams are the exception: they wait for the socket to drain.
 */
import * as net from 'node:net';
import { FrameDecoder, FrameError } from '../protocol/frame.js';
import { DecodeError, JuteWriter } from '../protocol/jute.js';
import type { Logger } from '../util/log.js';
import { decodePeerFrame, PEER_PROTOCOL_VERSION, writePeerFrame, type PeerFrame } from './peer-codec.js';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface PeerTransportOptions {
  myid: number;
  /** Where this member listens for the others (its peer port). */
  listen: PeerAddress;
  logger: Logger;
  onFrame(from: number, frame: PeerFrame): void;
  /** An outgoing connection failed or closed: the core should stop assuming the peer gets what is sent. */
  onUnreachable(id: number): void;
  /** Largest frame accepted from a peer. */
  maxFrameBytes?: number;
  /** Bytes waiting on one peer's socket beyond which further frames to it are dropped. */
  maxQueuedBytes?: number;
}

interface Outgoing {
  id: number;
  address: PeerAddress;
  socket: net.Socket | undefined;
  connected: boolean;
  writer: JuteWriter;
  retryTimer: NodeJS.Timeout | undefined;
  backoffMs: number;
  /** Snapshot streams waiting for this socket to drain. */
  drainWaiters: (() => void)[];
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

export class PeerTransport {
  private readonly out = new Map<number, Outgoing>();
  private readonly incoming = new Set<net.Socket>();
  private server: net.Server | undefined;
  private flushScheduled = false;
  private closed = false;
  private readonly maxFrameBytes: number;
  private readonly maxQueuedBytes: number;
  /** Frames dropped because a peer was unreachable or too slow, by peer id. */
  readonly dropped = new Map<number, number>();
  /** Frames from peers that failed to parse (the connection is closed). */
  malformed = 0;

  constructor(private readonly opts: PeerTransportOptions) {
    this.maxFrameBytes = opts.maxFrameBytes ?? 64 * 1024 * 1024;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
  }

  async listen(): Promise<PeerAddress> {
    const server = net.createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.listen.host, port: this.opts.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as net.AddressInfo;
    return { host: this.opts.listen.host, port: a.port };
  }

  /** The members to keep connections to (everyone but this member); others are dropped. */
  setPeers(peers: Map<number, PeerAddress>): void {
    for (const [id, o] of this.out) {
      const want = peers.get(id);
      if (!want || want.host !== o.address.host || want.port !== o.address.port) this.dropPeer(id);
    }
    for (const [id, address] of peers) {
      if (id === this.opts.myid || this.out.has(id)) continue;
      const o: Outgoing = { id, address, socket: undefined, connected: false, writer: new JuteWriter(4096), retryTimer: undefined, backoffMs: MIN_BACKOFF_MS, drainWaiters: [] };
      this.out.set(id, o);
      this.connect(o);
    }
  }

  isConnected(id: number): boolean {
    return this.out.get(id)?.connected ?? false;
  }

  /** Queues a frame for a peer; false (and counted as dropped) if the peer is unreachable or backed up. */
  send(to: number, frame: PeerFrame): boolean {
    const o = this.out.get(to);
    if (!o || !o.connected || o.socket!.writableLength + o.writer.offset > this.maxQueuedBytes) {
      this.dropped.set(to, (this.dropped.get(to) ?? 0) + 1);
      return false;
    }
    writePeerFrame(o.writer, frame);
    this.scheduleFlush();
    return true;
  }

  /**
   * Sends a frame and resolves once the socket has room again: for bulk streams
   * (snapshots) that must not be dropped nor flood memory. Rejects if the peer goes away.
   */
  async sendAndDrain(to: number, frame: PeerFrame): Promise<void> {
    const o = this.out.get(to);
    if (!o || !o.connected) throw new Error(`peer ${to} is not connected`);
    writePeerFrame(o.writer, frame);
    this.flushOne(o);
    if (!o.socket || o.socket.writableNeedDrain === false) return;
    await new Promise<void>((resolve, reject) => {
      const socket = o.socket!;
      const done = () => {
        socket.off('close', fail);
        resolve();
      };
      const fail = () => reject(new Error(`peer ${to} went away`));
      socket.once('close', fail);
      o.drainWaiters.push(done);
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const o of this.out.values()) this.flushOne(o);
    });
  }

  private flushOne(o: Outgoing): void {
    if (o.writer.offset === 0 || !o.connected) return;
    o.socket!.write(o.writer.take());
  }

  private connect(o: Outgoing): void {
    if (this.closed || this.out.get(o.id) !== o) return;
    const socket = net.connect({ host: o.address.host, port: o.address.port, noDelay: true });
    o.socket = socket;
    socket.on('connect', () => {
      o.connected = true;
      o.backoffMs = MIN_BACKOFF_MS;
      // Frames queued while disconnected are stale; the hello goes first.
      o.writer.reset();
      writePeerFrame(o.writer, { kind: 'hello', version: PEER_PROTOCOL_VERSION, from: this.opts.myid, to: o.id });
      this.flushOne(o);
    });
    socket.on('drain', () => {
      const waiters = o.drainWaiters.splice(0);
      for (const w of waiters) w();
    });
    // Peers send nothing back on this connection; anything read is ignored.
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      const wasConnected = o.connected;
      o.connected = false;
      o.socket = undefined;
      o.writer.reset();
      o.drainWaiters.length = 0;
      if (this.closed || this.out.get(o.id) !== o) return;
      if (wasConnected) this.opts.logger.info('peer connection lost', { peer: o.id });
      this.opts.onUnreachable(o.id);
      o.retryTimer = setTimeout(() => this.connect(o), o.backoffMs);
      o.retryTimer.unref();
      o.backoffMs = Math.min(MAX_BACKOFF_MS, o.backoffMs * 2);
    });
  }

  private dropPeer(id: number): void {
    const o = this.out.get(id);
    if (!o) return;
    this.out.delete(id);
    clearTimeout(o.retryTimer);
    o.socket?.destroy();
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.incoming.add(socket);
    const decoder = new FrameDecoder(this.maxFrameBytes);
    let from = 0;
    const fail = (reason: string) => {
      this.malformed++;
      this.opts.logger.warn('closing peer connection', { remote: `${socket.remoteAddress}:${socket.remotePort}`, peer: from || undefined, reason });
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        return fail(e instanceof FrameError ? e.message : String(e));
      }
      for (const body of frames) {
        let f: PeerFrame;
        try {
          f = decodePeerFrame(body);
        } catch (e) {
          return fail(e instanceof DecodeError ? `malformed frame: ${e.message}` : String(e));
        }
        if (from === 0) {
          if (f.kind !== 'hello') return fail(`expected hello, got ${f.kind}`);
          if (f.version !== PEER_PROTOCOL_VERSION) return fail(`peer protocol version ${f.version}, this member speaks ${PEER_PROTOCOL_VERSION}`);
          if (f.to !== this.opts.myid) return fail(`peer ${f.from} meant to reach member ${f.to}, this is ${this.opts.myid}`);
          if (!(f.from > 0) || f.from === this.opts.myid) return fail(`bad sender id ${f.from}`);
          from = f.from;
          continue;
        }
        if (f.kind === 'hello') return fail('second hello');
        if (f.kind === 'raft' && f.message.from !== from) return fail(`message claims to be from ${f.message.from} on ${from}'s connection`);
        this.opts.onFrame(from, f);
        if (socket.destroyed) return;
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.incoming.delete(socket));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.out.keys()]) this.dropPeer(id);
    for (const s of this.incoming) s.destroy();
    this.incoming.clear();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
