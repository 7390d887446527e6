/**
 * The network shell around the SWIM core: a UDP socket for probes and gossip, a
 * TCP listener on the same port for push-pull and fallback probes, a timer that
 * calls the core when it asks to be called. Everything the protocol decides is in
 * the core; this file only moves bytes and time.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { FrameDecoder } from '../protocol/frame.js';
import { silentLogger, type Logger } from '../util/log.js';
import { SwimNode } from './core/swim-node.js';
import { PULSEKEEPER_DEFAULTS, type Message, type Output, type SwimConfig } from './core/types.js';
import type { Member, MembershipEventType, MembershipListener, MembershipView } from './events.js';
import type { Keyring } from './keyring.js';
import { decodePacket, encodePacket } from './packet.js';
import { MAX_TCP_PACKET, MAX_UDP_PAYLOAD } from './wire.js';

export interface GossipOptions {
  /** host:port to listen on (UDP and TCP); the address others reach this member at. */
  bind: string;
  /** Member name; defaults to the bind address. */
  id?: string;
  seeds?: string[];
  keyring?: Keyring;
  meta?: Uint8Array;
  config?: Partial<SwimConfig>;
  logger?: Logger;
}

export interface GossipStats {
  packetsIn: number;
  packetsOut: number;
  droppedParse: number;
  droppedAuth: number;
}

function splitAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(i + 1)) };
}

export class GossipMembership implements MembershipView {
  readonly stats: GossipStats = { packetsIn: 0, packetsOut: 0, droppedParse: 0, droppedAuth: 0 };
  private readonly listeners = new Map<string, Set<MembershipListener>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly node: SwimNode,
    readonly address: string,
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    private readonly keyring: Keyring | undefined,
    private readonly log: Logger,
  ) {}

  /** Binds UDP and TCP to the same port; with port 0, tries again when TCP finds the UDP port taken. */
  private static async bind(host: string, port: number): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => resolve());
      });
      const bound = udp.address().port;
      const tcp = createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(bound, host, () => resolve());
        });
        return { udp, tcp, port: bound };
      } catch (e) {
        udp.close();
        if (port !== 0 || attempt >= 20 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  static async start(opts: GossipOptions): Promise<GossipMembership> {
    const { host, port } = splitAddress(opts.bind);
    const { udp, tcp, port: boundPort } = await GossipMembership.bind(host, port);
    const address = `${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
    const config = { ...PULSEKEEPER_DEFAULTS, ...opts.config };
    // Seconds since the epoch as the starting incarnation: a restarted member comes back above its old one.
    const node = new SwimNode(config, { id: opts.id ?? address, address, meta: opts.meta, incarnation: Math.floor(Date.now() / 1000) }, Math.random);
    const g = new GossipMembership(node, address, udp, tcp, opts.keyring, opts.logger ?? silentLogger);
    udp.on('message', (packet, rinfo) => g.onPacket(packet, `${rinfo.family === 'IPv6' ? `[${rinfo.address}]` : rinfo.address}:${rinfo.port}`));
    udp.on('error', (e) => g.log.warn('membership udp error', { error: e.message }));
    tcp.on('connection', (sock) => {
      const frames = new FrameDecoder(MAX_TCP_PACKET);
      sock.on('data', (chunk) => {
        try {
          for (const f of frames.push(chunk)) g.onPacket(f, undefined);
        } catch {
          g.stats.droppedParse++;
          sock.destroy();
        }
      });
      sock.on('error', () => {});
      sock.setTimeout(10_000, () => sock.destroy());
    });
    g.apply(node.start(performance.now(), (opts.seeds ?? []).filter((s) => s !== address)));
    return g;
  }

  private onPacket(packet: Buffer, udpFrom: string | undefined): void {
    if (this.closed) return;
    this.stats.packetsIn++;
    const decoded = decodePacket(packet, this.keyring);
    if (decoded === 'parse') {
      this.stats.droppedParse++;
      return;
    }
    if (decoded === 'auth') {
      this.stats.droppedAuth++;
      return;
    }
    // Replies go to the address the sender advertises (a TCP peer's port is ephemeral).
    const from = decoded.sender || udpFrom || '';
    for (const msg of decoded.messages) this.apply(this.node.receive(performance.now(), from, msg));
  }

  private apply(out: Output): void {
    if (this.closed) return;
    // Messages to the same member leave in one UDP packet when they fit.
    const udp = new Map<string, Message[]>();
    for (const s of out.send) {
      if (s.transport === 'tcp') this.sendTcp(s.to, [s.msg]);
      else {
        let list = udp.get(s.to);
        if (!list) udp.set(s.to, (list = []));
        list.push(s.msg);
      }
    }
    for (const [to, msgs] of udp) this.sendUdp(to, msgs);
    for (const ev of out.events) {
      for (const l of this.listeners.get(ev.type) ?? []) l(ev);
      for (const l of this.listeners.get('change') ?? []) l(ev);
    }
    this.schedule();
  }

  private sendUdp(to: string, msgs: Message[]): void {
    const packet = encodePacket(this.address, msgs, this.keyring);
    if (packet.length > MAX_UDP_PAYLOAD && msgs.length > 1) {
      for (const m of msgs) this.sendUdp(to, [m]);
      return;
    }
    if (packet.length > MAX_UDP_PAYLOAD) {
      // One message too large for a datagram: it goes over TCP instead.
      this.sendTcp(to, msgs);
      return;
    }
    const { host, port } = splitAddress(to);
    this.stats.packetsOut++;
    this.udp.send(packet, port, host, () => {});
  }

  private sendTcp(to: string, msgs: Message[]): void {
    const packet = encodePacket(this.address, msgs, this.keyring);
    const frame = Buffer.alloc(4 + packet.length);
    frame.writeInt32BE(packet.length);
    packet.copy(frame, 4);
    const { host, port } = splitAddress(to);
    this.stats.packetsOut++;
    const sock = connect({ host, port });
    sock.on('error', () => {});
    sock.setTimeout(5_000, () => sock.destroy());
    sock.end(frame);
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const at = this.node.nextTimer();
    if (!Number.isFinite(at)) return;
    this.timer = setTimeout(() => this.apply(this.node.tick(performance.now())), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  members(): Member[] {
    return this.node.liveMembers();
  }

  on(type: MembershipEventType | 'change', listener: MembershipListener): this {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return this;
  }

  off(type: MembershipEventType | 'change', listener: MembershipListener): this {
    this.listeners.get(type)?.delete(listener);
    return this;
  }

  updateMeta(meta: Uint8Array): void {
    this.apply(this.node.updateMeta(performance.now(), meta));
  }

  /** Tells the others this member is leaving, gives the news a moment to spread, then closes. */
  async leave(graceMs = 500): Promise<void> {
    this.apply(this.node.leave(performance.now()));
    await new Promise((r) => setTimeout(r, graceMs));
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await new Promise<void>((r) => this.udp.close(() => r()));
    await new Promise<void>((r) => this.tcp.close(() => r()));
  }
}
