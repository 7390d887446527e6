/**
 * A replicated Apache ZooKeeper 3.8 ensemble (QuorumPeerMain) of member processes on
 * loopback, for comparisons with a pulsekeeper ensemble: members can be killed and
 * restarted with their data, and every process started here is ended on close() or,
 * failing that, when the parent process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { fourLetter, javaCommand } from './zookeeper.js';

export interface ZooKeeperEnsembleOptions {
  /** Voting members (default 3). */
  size?: number;
  /** ZooKeeper's shipped defaults unless given: tickTime 2000, initLimit 10, syncLimit 5. */
  tickTime?: number;
  initLimit?: number;
  syncLimit?: number;
  /** fsync the transaction log before acknowledging (default yes, as ZooKeeper's default). */
  forceSync?: boolean;
  /** More zoo.cfg lines for every member (key -> value), snapCount for instance. */
  cfg?: Record<string, string | number | boolean>;
  /** Extra JVM flags for every member (heap size, say; default -Xmx512m). */
  jvmArgs?: string[];
  /** 'test' (default) starts fast with a small JIT; 'server' runs as in production, for benchmarks. */
  tuning?: 'test' | 'server';
  /** Directory to hold the members' data and keep after close (default: a temporary one, removed on close). */
  dir?: string;
  /** How long start() waits for a quorum (default 60 s). */
  startTimeoutMs?: number;
}

export interface ZooKeeperMember {
  id: number;
  clientPort: number;
  quorumPort: number;
  electionPort: number;
  dataDir: string;
  process: ChildProcess | undefined;
  /** The tail of the member's stderr, for error messages. */
  log: string;
}

/** Every member process alive, ended if the parent exits or is interrupted without closing its ensembles. */
const alive = new Set<ChildProcess>();
let hooksInstalled = false;
export function endWithParent(child: ChildProcess): void {
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = () => {
    for (const c of alive) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

const SERVING = new Set(['leader', 'follower', 'observer']);

export class ZooKeeperEnsemble {
  readonly members = new Map<number, ZooKeeperMember>();

  private constructor(
    readonly dir: string,
    private readonly opts: ZooKeeperEnsembleOptions,
  ) {}

  /** Starts every member and waits until one leads and the others follow it. */
  static async start(opts: ZooKeeperEnsembleOptions = {}): Promise<ZooKeeperEnsemble> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'zk-ensemble-'));
    const e = new ZooKeeperEnsemble(dir, opts);
    const size = opts.size ?? 3;
    for (let id = 1; id <= size; id++) {
      const dataDir = join(dir, `m${id}`);
      mkdirSync(join(dataDir, 'data'), { recursive: true });
      writeFileSync(join(dataDir, 'data', 'myid'), `${id}\n`);
      e.members.set(id, { id, clientPort: await freePort(), quorumPort: await freePort(), electionPort: await freePort(), dataDir, process: undefined, log: '' });
    }
    for (const m of e.members.values()) e.writeConfig(m);
    try {
      for (const id of e.members.keys()) e.spawnMember(id);
      await e.waitForLeader(opts.startTimeoutMs ?? 60_000);
    } catch (err) {
      await e.close();
      throw err;
    }
    return e;
  }

  private writeConfig(m: ZooKeeperMember): void {
    const o = this.opts;
    const lines = [
      `tickTime=${o.tickTime ?? 2000}`,
      `initLimit=${o.initLimit ?? 10}`,
      `syncLimit=${o.syncLimit ?? 5}`,
      `dataDir=${join(m.dataDir, 'data')}`,
      `clientPort=${m.clientPort}`,
      'clientPortAddress=127.0.0.1',
      'maxClientCnxns=0',
      'admin.enableServer=false',
      '4lw.commands.whitelist=*',
      `forceSync=${o.forceSync === false ? 'no' : 'yes'}`,
    ];
    for (const [k, v] of Object.entries(o.cfg ?? {})) lines.push(`${k}=${v}`);
    for (const s of this.members.values()) lines.push(`server.${s.id}=127.0.0.1:${s.quorumPort}:${s.electionPort}`);
    writeFileSync(join(m.dataDir, 'zoo.cfg'), lines.join('\n') + '\n');
  }

  get connectionString(): string {
    return [...this.members.values()].map((m) => `127.0.0.1:${m.clientPort}`).join(',');
  }

  member(id: number): ZooKeeperMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  isRunning(id: number): boolean {
    const p = this.member(id).process;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Starts a member's process (with whatever data it has) without waiting for it. */
  spawnMember(id: number): ChildProcess {
    const m = this.member(id);
    if (this.isRunning(id)) throw new Error(`member ${id} is running`);
    const jvm = ['-Dzookeeper.admin.enableServer=false', ...(this.opts.jvmArgs ?? ['-Xmx512m'])];
    const { cmd, args } = javaCommand('org.apache.zookeeper.server.quorum.QuorumPeerMain', [join(m.dataDir, 'zoo.cfg')], jvm, this.opts.tuning);
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    endWithParent(child);
    m.process = child;
    m.log = '';
    child.stderr!.on('data', (c: Buffer) => {
      m.log = (m.log + c.toString()).slice(-20_000);
    });
    return child;
  }

  /** Starts (or restarts) a member and waits until it serves as leader or follower. */
  async startMember(id: number, timeoutMs = 60_000): Promise<void> {
    this.spawnMember(id);
    await this.waitServing(id, timeoutMs);
  }

  async waitServing(id: number, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.member(id).process;
      if (!this.isRunning(id)) throw new Error(`ZooKeeper member ${id} exited (${p?.exitCode ?? p?.signalCode}): ${this.member(id).log.slice(-4000)}`);
      const mode = await this.mode(id);
      if (mode && SERVING.has(mode)) return mode;
      if (Date.now() > deadline) throw new Error(`ZooKeeper member ${id} not serving within ${timeoutMs} ms (${mode}): ${this.member(id).log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The member's srvr Mode (leader, follower, ...), 'not serving', or undefined when it does not answer. */
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

  /** Waits until exactly one running member leads and every other running one follows; returns its id. */
  async waitForLeader(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ids = [...this.members.keys()].filter((id) => this.isRunning(id));
      const modes = await Promise.all(ids.map((id) => this.mode(id)));
      const leaders = ids.filter((_, i) => modes[i] === 'leader');
      if (leaders.length === 1 && modes.every((m) => m !== undefined && SERVING.has(m))) return leaders[0];
      if (ids.length === 0 || Date.now() > deadline) {
        throw new Error(`ZooKeeper: no single leader within ${timeoutMs} ms: ${ids.map((id, i) => `${id}=${modes[i]}`).join(' ')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends a signal to a member; for SIGKILL and SIGTERM waits until the process is gone. */
  async signal(id: number, sig: NodeJS.Signals): Promise<void> {
    const p = this.member(id).process;
    if (!p || !this.isRunning(id)) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(sig);
    if (sig === 'SIGKILL' || sig === 'SIGTERM') await gone;
  }

  kill(id: number): Promise<void> {
    return this.signal(id, 'SIGKILL');
  }

  /** Ends every member (SIGKILL: they keep nothing in memory worth a clean stop) and removes a temporary directory. */
  async close(): Promise<void> {
    await Promise.all([...this.members.keys()].map((id) => this.kill(id)));
    if (!this.opts.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
