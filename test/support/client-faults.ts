/** Waiting and fault helpers shared by the client, recipe and shell tests. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { PulseClient, type ClientOptions } from '../../src/client/index.js';
import type { LeaderElection } from '../../src/recipes/index.js';
import type { MemberConfig } from './client-member.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Added to the upper bound of a timing: a shared, busy 2-core machine can stall a
 * process or a JVM for seconds, while the bugs worth catching are off by whole
 * session timeouts.
 */
export const TIMING_SLACK_MS = 5000;

/** Asserts that `ms` (how long `what` took) lies in [min, max]. */
export function assertBetween(ms: number, min: number, max: number, what: string): void {
  assert.ok(ms >= min && ms <= max, `${what} after ${ms.toFixed(1)} ms, expected ${min.toFixed(1)} to ${max.toFixed(1)} ms`);
}

/** Records, across candidates, each change of leadership (with its performance.now() time) and how many led at once. */
export function leadershipLog(elections: LeaderElection[]) {
  const leaders = new Set<string>();
  const log = { max: 0, events: [] as string[], times: [] as number[] };
  const record = (event: string) => {
    log.events.push(event);
    log.times.push(performance.now());
  };
  for (const e of elections) {
    e.on('elected', () => {
      leaders.add(e.id);
      log.max = Math.max(log.max, leaders.size);
      record(`elected:${e.id}`);
    });
    e.on('notLeader', () => {
      leaders.delete(e.id);
      record(`notLeader:${e.id}`);
    });
  }
  return log;
}

/** Polls until `cond` holds; fails after `ms` naming what it waited for (computed then, when a function). */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string | (() => string) = 'condition'): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(20);
  }
}

/**
 * Expires a client's session at once, as ZooKeeper's own tests do: another
 * connection attaches to the session with its id and password and closes it.
 * The client hears of it when it next reaches the server. Pass the test server's
 * client options so that on an ensemble the twin attaches where the client is.
 */
export async function expireSession(connectionString: string, client: PulseClient, opts: ClientOptions = {}): Promise<void> {
  const twin = await PulseClient.connect(connectionString, {
    ...opts,
    session: { id: client.sessionId, password: client.sessionPassword },
    sessionTimeoutMs: client.sessionTimeoutMs,
    renewExpiredSession: false,
  });
  await twin.close();
}

/**
 * A TCP proxy on loopback that can partition the network, as when a machine drops off
 * it: after partition() nothing passes either way, not even a close, and new
 * connections are accepted and never answered. (TcpProxy.silence() still passes
 * closes, so a client hears at once when the server expires its session and closes
 * the connection; behind a partition only its own heartbeat timing tells it.)
 */
export class PartitionProxy {
  private readonly sockets = new Set<Socket>();
  private partitioned = false;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<PartitionProxy> {
    let proxy!: PartitionProxy;
    const track = (sock: Socket) => {
      proxy.sockets.add(sock);
      sock.on('error', () => {}).on('close', () => proxy.sockets.delete(sock));
    };
    const server = createServer((client) => {
      track(client);
      if (proxy.partitioned) return;
      const upstream = connect({ host: targetHost, port: targetPort });
      track(upstream);
      client.on('data', (c) => proxy.partitioned || upstream.write(c));
      upstream.on('data', (c) => proxy.partitioned || client.write(c));
      client.on('close', () => proxy.partitioned || upstream.destroy());
      upstream.on('close', () => proxy.partitioned || client.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxy = new PartitionProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get connectionString(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** From now on nothing passes, for good. */
  partition(): void {
    this.partitioned = true;
  }

  async close(): Promise<void> {
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A member process (test/support/client-member.ts) and what it reported so far. */
export class MemberProcess {
  readonly events: { event: string; [k: string]: unknown }[] = [];
  private stderr = '';
  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.events.push(JSON.parse(line)));
    child.stderr!.on('data', (c) => {
      if (this.stderr.length < 10_000) this.stderr += c;
    });
  }

  static spawn(config: MemberConfig): MemberProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/client-member.ts', JSON.stringify(config)], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new MemberProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first event of a kind, waiting for it up to ms. */
  async next(event: string, ms = 20_000): Promise<{ event: string; [k: string]: unknown }> {
    await until(() => this.events.some((e) => e.event === event) || this.child.exitCode !== null, ms, `member event ${event}`);
    const found = this.events.find((e) => e.event === event);
    if (!found) throw new Error(`member exited (${this.child.exitCode}) before ${event}: ${this.stderr}`);
    return found;
  }

  send(command: string): void {
    this.child.stdin!.write(command + '\n');
  }

  /** SIGKILL, by pid; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }
}
