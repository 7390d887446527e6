/**
 * A TCP proxy for fault injection on loopback: forwards to a target and can cut
 * every connection at once, black-hole traffic (a silent network) both ways or
 * one way for a while, or refuse new connections (a host that is down).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private toServer = true;
  private toClient = true;
  private refusing = false;
  /** Connections accepted and forwarded so far. */
  accepted = 0;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = createServer((client) => {
      if (proxy.refusing) {
        client.destroy();
        return;
      }
      proxy.accepted++;
      const upstream = connect({ host: targetHost, port: targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      proxy.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        proxy.pairs.delete(pair);
      };
      client.on('data', (c) => proxy.toServer && upstream.write(c));
      upstream.on('data', (c) => proxy.toClient && client.write(c));
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get connectionString(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Drops every connection now (the server sees its client vanish). */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Silently discards traffic (both ways, or only towards the server or the client) until heal(). */
  silence(direction: 'both' | 'toServer' | 'toClient' = 'both'): void {
    if (direction !== 'toClient') this.toServer = false;
    if (direction !== 'toServer') this.toClient = false;
  }

  /** Closes new connections at once until accept() (established ones are left alone). */
  refuse(): void {
    this.refusing = true;
  }

  accept(): void {
    this.refusing = false;
  }

  heal(): void {
    this.toServer = this.toClient = true;
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
