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
import { utf8Length } from './core/size.js';
import { PULSEKEEPER_DEFAULTS, type Message, type Output, type SwimConfig, type Transport } from './core/types.js';
import type { Member, MembershipEventType, MembershipGroup, MembershipListener } from './events.js';
import type { Keyring } from './keyring.js';
import { decodePacket, encodePacket } from './packet.js';
import { MAX_META_BYTES, MAX_NAME_BYTES, MAX_TCP_PACKET, MAX_UDP_PAYLOAD } from './wire.js';

/** Inbound TCP connections (push-pull, fallback probes) served at once; each may buffer up to MAX_TCP_PACKET. */
const MAX_TCP_CONNECTIONS = 64;

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
  /** Packets that did not parse, including TCP streams with a bad frame. */
  droppedParse: number;
  /** Packets that failed authentication (or were clear where a key is required, or sealed where none is). */
  droppedAuth: number;
  /** Messages not sent because the address they were for is not host:port (it came from another member). */
  droppedAddress: number;
}

/** host:port (IPv6 in brackets), or undefined if it is not one; port 0 only where minPort allows it (binding). */
function splitAddress(addr: string, minPort = 1): { host: string; port: number } | undefined {
  const i = addr.lastIndexOf(':');
  if (i <= 0) return undefined;
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(i + 1));
  if (!host || !/^\d+$/.test(addr.slice(i + 1)) || port < minPort || port > 65535) return undefined;
  return { host, port };
}

export class GossipMembership implements MembershipGroup {
  readonly stats: GossipStats = { packetsIn: 0, packetsOut: 0, droppedParse: 0, droppedAuth: 0, droppedAddress: 0 };
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
    const bind = splitAddress(opts.bind, 0);
    if (!bind) throw new Error(`bind wants HOST:PORT, not ${opts.bind}`);
    const { host, port } = bind;
    for (const name of [opts.id ?? '', opts.bind, ...(opts.seeds ?? [])]) {
      if (utf8Length(name) > MAX_NAME_BYTES - 6) throw new Error(`member ids and addresses are at most ${MAX_NAME_BYTES - 6} bytes: ${name.slice(0, 40)}...`);
    }
    for (const seed of opts.seeds ?? []) if (!splitAddress(seed)) throw new Error(`a seed is HOST:PORT, not ${seed}`);
    checkMeta(opts.meta);
    const { udp, tcp, port: boundPort } = await GossipMembership.bind(host, port);
    const address = `${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
    const id = opts.id ?? address;
    const config = { ...PULSEKEEPER_DEFAULTS, ...opts.config };
    // Seconds since the epoch as the starting incarnation: a restarted member comes back above its old one.
    const node = new SwimNode(config, { id, address, meta: opts.meta, incarnation: Math.floor(Date.now() / 1000) }, Math.random);
    const g = new GossipMembership(node, address, udp, tcp, opts.keyring, opts.logger ?? silentLogger);
    udp.on('message', (packet, rinfo) => g.onPacket(packet, `${rinfo.family === 'IPv6' ? `[${rinfo.address}]` : rinfo.address}:${rinfo.port}`, 'udp'));
    udp.on('error', (e) => g.log.warn('membership udp error', { error: e.message }));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    tcp.on('connection', (sock) => {
      const frames = new FrameDecoder(MAX_TCP_PACKET);
      sock.on('data', (chunk) => {
        try {
          for (const f of frames.push(chunk)) g.onPacket(f, undefined, 'tcp');
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

  private onPacket(packet: Buffer, udpFrom: string | undefined, transport: Transport): void {
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
    try {
      for (const msg of decoded.messages) this.apply(this.node.receive(performance.now(), from, msg, transport));
    } catch (e) {
      // Whatever a packet holds, it must not take the member down.
      this.stats.droppedParse++;
      this.log.warn('membership packet not handled', { from, error: e instanceof Error ? e.message : String(e) });
    }
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
    // A packet holds at most 255 messages; more than fit one datagram go one by one.
    const packet = msgs.length <= 255 ? encodePacket(this.address, msgs, this.keyring) : undefined;
    if ((!packet || packet.length > MAX_UDP_PAYLOAD) && msgs.length > 1) {
      for (const m of msgs) this.sendUdp(to, [m]);
      return;
    }
    if (!packet || packet.length > MAX_UDP_PAYLOAD) {
      // One message too large for a datagram: it goes over TCP instead.
      this.sendTcp(to, msgs);
      return;
    }
    const dest = splitAddress(to);
    if (!dest) {
      this.stats.droppedAddress++;
      return;
    }
    this.stats.packetsOut++;
    this.udp.send(packet, dest.port, dest.host, () => {});
  }

  private sendTcp(to: string, msgs: Message[]): void {
    const dest = splitAddress(to);
    if (!dest) {
      this.stats.droppedAddress++;
      return;
    }
    const packet = encodePacket(this.address, msgs, this.keyring);
    const frame = Buffer.alloc(4 + packet.length);
    frame.writeInt32BE(packet.length);
    packet.copy(frame, 4);
    this.stats.packetsOut++;
    const sock = connect(dest);
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

  /** Publishes new metadata (others see `updated`). */
  async update(meta: Uint8Array): Promise<void> {
    checkMeta(meta);
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

function checkMeta(meta: Uint8Array | undefined): void {
  if (meta && meta.length > MAX_META_BYTES) throw new Error(`member metadata is at most ${MAX_META_BYTES} bytes, not ${meta.length}`);
}
