/**
 * A pulsekeeper ensemble of real member processes on loopback, for tests that kill,
 * pause, restart and partition members. Every link between two members goes through
 * its own proxy (member i reaches member j at a port only i uses), so a test can cut
 * or silence any direction of any link: partitions, asymmetric ones included.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { fourLetter } from './zookeeper.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** One direction of one link: from one member to another, which it can cut or silence. */
class LinkProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  /** 'open' forwards; 'silent' swallows bytes (a network that lost its packets); 'refuse' closes new and existing connections. */
  mode: 'open' | 'silent' | 'refuse' = 'open';

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<LinkProxy> {
    const port = await freePort();
    let proxy!: LinkProxy;
    const server = createServer((client) => {
      if (proxy.mode === 'refuse') return void client.destroy();
      const upstream = connect({ host: '127.0.0.1', port: targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      proxy.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        proxy.pairs.delete(pair);
      };
      client.on('data', (c) => proxy.mode === 'open' && upstream.write(c));
      upstream.on('data', (c) => proxy.mode === 'open' && client.write(c));
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    proxy = new LinkProxy(server, port);
    return proxy;
  }

  set(mode: LinkProxy['mode']): void {
    // Bytes swallowed while silent leave a hole in the middle of a stream, which no real TCP
    // connection has (it retransmits or breaks): reopening starts from fresh connections.
    const dropConnections = mode === 'refuse' || (mode === 'open' && this.mode === 'silent');
    this.mode = mode;
    if (dropConnections) {
      for (const [a, b] of this.pairs) {
        a.destroy();
        b.destroy();
      }
      this.pairs.clear();
    }
  }

  async close(): Promise<void> {
    this.set('refuse');
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface EnsembleOptions {
  /** Voting members. */
  size: number;
  /** Non-voting members (observers), numbered after the voters. */
  observers?: number;
  /**
   * Members numbered after those, not started and not in anyone else's config: for reconfig
   * to add. Their own config lists the ensemble; the others reach them directly (no proxy).
   */
  spares?: number;
  tickTime?: number;
  /** More zoo.cfg lines for every member (key -> value). */
  cfg?: Record<string, string | number | boolean>;
  /** Keep member logs (stderr) in memory for failing tests to print. */
  keepLogs?: boolean;
  /** One server configured without server.N lines, as a single server is run (size 1, nothing else). */
  standalone?: boolean;
}

export interface Member {
  id: number;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  observer: boolean;
  spare: boolean;
  process: ChildProcess | undefined;
  log: string;
}

export class TestEnsemble {
  readonly members = new Map<number, Member>();
  /** links.get(`${from}->${to}`) */
  private readonly links = new Map<string, LinkProxy>();
  private constructor(
    readonly dir: string,
    private readonly opts: EnsembleOptions,
  ) {}

  static async start(opts: EnsembleOptions): Promise<TestEnsemble> {
    if (opts.standalone && (opts.size !== 1 || opts.observers || opts.spares)) throw new Error('a standalone server is one member alone');
    const e = new TestEnsemble(mkdtempSync(join(tmpdir(), 'pk-ensemble-')), opts);
    const started = opts.size + (opts.observers ?? 0);
    const total = started + (opts.spares ?? 0);
    for (let id = 1; id <= total; id++) {
      const dataDir = join(e.dir, `m${id}`);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'myid'), `${id}\n`);
      e.members.set(id, {
        id,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dataDir,
        observer: id > opts.size && id <= started,
        spare: id > started,
        process: undefined,
        log: '',
      });
    }
    for (const a of e.members.values()) {
      for (const b of e.members.values()) {
        if (a.id !== b.id && !b.spare) e.links.set(`${a.id}->${b.id}`, await LinkProxy.start(b.peerPort));
      }
    }
    for (const m of e.members.values()) e.writeConfig(m);
    const starts = await Promise.allSettled([...e.members.values()].filter((m) => !m.spare).map((m) => e.startMember(m.id)));
    const failed = starts.find((r) => r.status === 'rejected');
    if (failed) {
      // The members that did start would outlive the test.
      await e.close();
      throw failed.reason;
    }
    return e;
  }

  /** Member i's zoo.cfg: itself at its real peer port, every other member behind the proxy of the link i -> j. */
  private writeConfig(m: Member): void {
    const lines = [
      `tickTime=${this.opts.tickTime ?? 2000}`,
      `dataDir=${m.dataDir}`,
      'clientPortAddress=127.0.0.1',
      `clientPort=${m.clientPort}`,
      '4lw.commands.whitelist=*',
      'maxClientCnxns=0',
    ];
    for (const [k, v] of Object.entries(this.opts.cfg ?? {})) lines.push(`${k}=${v}`);
    for (const o of this.opts.standalone ? [] : this.members.values()) {
      if (o.spare && o.id !== m.id) continue;
      const peerPort = o.id === m.id ? o.peerPort : this.links.get(`${m.id}->${o.id}`)!.port;
      lines.push(`server.${o.id}=127.0.0.1:${peerPort}:0:${o.observer ? 'observer' : 'participant'};127.0.0.1:${o.clientPort}`);
    }
    writeFileSync(join(m.dataDir, 'zoo.cfg'), lines.join('\n') + '\n');
  }

  get connectionString(): string {
    return [...this.members.values()].filter((m) => !m.spare).map((m) => `127.0.0.1:${m.clientPort}`).join(',');
  }

  /** The server.N value that adds a spare member by reconfig. */
  spec(id: number, role: 'participant' | 'observer' = 'participant'): string {
    const m = this.member(id);
    return `server.${id}=127.0.0.1:${m.peerPort}:0:${role};127.0.0.1:${m.clientPort}`;
  }

  member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Starts (or restarts) a member process (with more environment variables, if given) and waits until it answers ruok. */
  async startMember(id: number, env: Record<string, string> = {}): Promise<void> {
    const m = this.member(id);
    if (m.process && m.process.exitCode === null && m.process.signalCode === null) throw new Error(`member ${id} is running`);
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'start', '--config', join(m.dataDir, 'zoo.cfg')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PULSEKEEPER_LOG_LEVEL: process.env.PULSEKEEPER_LOG_LEVEL ?? 'info', ...env },
    });
    m.process = child;
    child.stderr!.on('data', (c: Buffer) => {
      if (this.opts.keepLogs !== false && m.log.length < 2_000_000) m.log += c.toString();
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`member ${id} exited at start (${child.exitCode ?? child.signalCode}):\n${m.log.slice(-4000)}`);
      try {
        // The member's own answer, not another process's that took the port meanwhile.
        if ((await fourLetter(m.clientPort, 'conf')).includes(`dataDir=${m.dataDir}\n`)) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`member ${id} did not start within 30 s:\n${m.log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  isRunning(id: number): boolean {
    const p = this.member(id).process;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Sends a signal to a member's process; for SIGKILL and SIGTERM waits until it is gone. */
  async signal(id: number, sig: NodeJS.Signals): Promise<void> {
    const p = this.member(id).process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(sig);
    if (sig === 'SIGKILL' || sig === 'SIGTERM') await gone;
  }

  kill(id: number): Promise<void> {
    return this.signal(id, 'SIGKILL');
  }

  /** The member's `srvr` Mode line (leader, follower, observer, standalone, ...), or undefined if it does not answer. */
  async mode(id: number): Promise<string | undefined> {
    if (!this.isRunning(id)) return undefined;
    try {
      const text = await fourLetter(this.member(id).clientPort, 'srvr');
      return /Mode: (\S+)/.exec(text)?.[1] ?? 'not serving';
    } catch {
      return undefined;
    }
  }

  async mntr(id: number): Promise<Record<string, string>> {
    const text = await fourLetter(this.member(id).clientPort, 'mntr');
    return Object.fromEntries(text.trim().split('\n').map((l) => l.split('\t') as [string, string]));
  }

  /** Waits until exactly one running member leads and every other running one follows or observes it; returns its id. */
  async waitForLeader(timeoutMs = 30_000, among?: number[]): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ids = (among ?? [...this.members.keys()]).filter((id) => this.isRunning(id));
      const modes = await Promise.all(ids.map((id) => this.mode(id)));
      const leaders = ids.filter((_, i) => modes[i] === 'leader');
      if (leaders.length === 1 && modes.every((m) => m === 'leader' || m === 'follower' || m === 'observer')) return leaders[0];
      if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms: ${ids.map((id, i) => `${id}=${modes[i]}`).join(' ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sets both directions of every link between the two groups. */
  partition(a: number[], b: number[], mode: 'silent' | 'refuse' = 'refuse'): void {
    for (const x of a) for (const y of b) {
      this.link(x, y).set(mode);
      this.link(y, x).set(mode);
    }
  }

  /** One direction of one link. */
  link(from: number, to: number): LinkProxy {
    const l = this.links.get(`${from}->${to}`);
    if (!l) throw new Error(`no link ${from}->${to}`);
    return l;
  }

  heal(): void {
    for (const l of this.links.values()) l.set('open');
  }

  logs(): string {
    return [...this.members.values()].map((m) => `---- member ${m.id} ----\n${m.log.slice(-6000)}`).join('\n');
  }

  async close(): Promise<void> {
    // SIGKILL ends stopped (SIGSTOPped) members too.
    await Promise.all([...this.members.keys()].map((id) => this.kill(id)));
    await Promise.all([...this.links.values()].map((l) => l.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
