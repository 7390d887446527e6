/**
 * A TCP proxy for fault injection on loopback: forwards to a target and can cut
 * every connection at once or black-hole traffic (a silent network) for a while.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private blackhole = false;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = createServer((client) => {
      const upstream = connect({ host: targetHost, port: targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      proxy.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        proxy.pairs.delete(pair);
      };
      client.on('data', (c) => proxy.blackhole || upstream.write(c));
      upstream.on('data', (c) => proxy.blackhole || client.write(c));
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

  /** Silently discards traffic both ways until heal(). */
  silence(): void {
    this.blackhole = true;
  }

  heal(): void {
    this.blackhole = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
