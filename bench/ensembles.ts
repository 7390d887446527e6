/**
 * Three-member ensembles of pulsekeeper and of Apache ZooKeeper 3.8 behind one interface,
 * for the ensemble benchmarks. Members talk to each other directly on loopback (no link
 * proxies), pulsekeeper runs from the compiled dist/, and every process is ended on close().
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/support/ports.js';
import { fourLetter } from '../test/support/zookeeper.js';
import { endWithParent, ZooKeeperEnsemble } from '../test/support/zookeeper-ensemble.js';
import type { LoadTarget } from './workloads.js';

export interface BenchEnsemble extends LoadTarget {
  name: 'pulsekeeper' | 'zookeeper';
  ids: number[];
  port(id: number): number;
  /** The member's log file, where it writes one (pulsekeeper). */
  logFile(id: number): string | undefined;
  /** The member's process id while it runs. */
  pid(id: number): number | undefined;
  isRunning(id: number): boolean;
  /** srvr's Mode, 'not serving', or undefined when the member does not answer. */
  mode(id: number): Promise<string | undefined>;
  mntr(id: number): Promise<Record<string, string>>;
  waitForLeader(timeoutMs?: number): Promise<number>;
  kill(id: number): Promise<void>;
  /** Starts a stopped member's process with its data, without waiting. */
  spawn(id: number): void;
  /** Waits until the member serves as leader or follower. */
  waitServing(id: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface EnsembleOptions {
  forceSync: boolean;
  /** More zoo.cfg lines for every member. */
  cfg?: Record<string, string | number>;
  /** Directory for the members' data, kept after close (default: a temporary one, removed). */
  dir?: string;
  /** pulsekeeper: writes a V8 CPU profile of every member process here (node --cpu-prof). */
  cpuProfDir?: string;
  /** ZooKeeper: JVM flags of every member. */
  jvmArgs?: string[];
  /** pulsekeeper: Node flags of every member (--max-old-space-size, say). */
  nodeArgs?: string[];
}

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const SERVING = new Set(['leader', 'follower', 'observer']);

/** Compiles the project into dist/, as `npm run bench` does, so members start without a TypeScript loader. */
export function build(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}

interface PkMember {
  id: number;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  process: ChildProcess | undefined;
}

class PulsekeeperEnsemble implements BenchEnsemble {
  readonly name = 'pulsekeeper';
  private readonly members = new Map<number, PkMember>();

  private constructor(
    private readonly dir: string,
    private readonly opts: EnsembleOptions,
  ) {}

  static async start(size: number, opts: EnsembleOptions): Promise<PulsekeeperEnsemble> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'pk-ens-bench-'));
    const e = new PulsekeeperEnsemble(dir, opts);
    for (let id = 1; id <= size; id++) {
      const dataDir = join(dir, `m${id}`);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'myid'), `${id}\n`);
      e.members.set(id, { id, clientPort: await freePort(), peerPort: await freePort(), dataDir, process: undefined });
    }
    for (const m of e.members.values()) {
      const lines = [
        'tickTime=2000',
        `dataDir=${m.dataDir}`,
        'clientPortAddress=127.0.0.1',
        `clientPort=${m.clientPort}`,
        '4lw.commands.whitelist=*',
        'maxClientCnxns=0',
        `forceSync=${opts.forceSync ? 'yes' : 'no'}`,
        ...Object.entries(opts.cfg ?? {}).map(([k, v]) => `${k}=${v}`),
        ...[...e.members.values()].map((o) => `server.${o.id}=127.0.0.1:${o.peerPort}:0:participant;127.0.0.1:${o.clientPort}`),
      ];
      writeFileSync(join(m.dataDir, 'zoo.cfg'), lines.join('\n') + '\n');
    }
    try {
      for (const id of e.ids) e.spawn(id);
      await Promise.all(e.ids.map((id) => e.waitServing(id, 60_000)));
      await e.waitForLeader();
    } catch (err) {
      await e.close();
      throw err;
    }
    return e;
  }

  get ids(): number[] {
    return [...this.members.keys()];
  }

  get ports(): number[] {
    return this.ids.map((id) => this.port(id));
  }

  port(id: number): number {
    return this.member(id).clientPort;
  }

  private member(id: number): PkMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  logFile(id: number): string {
    return join(this.member(id).dataDir, 'member.log');
  }

  pid(id: number): number | undefined {
    return this.isRunning(id) ? this.member(id).process!.pid : undefined;
  }

  pids(): number[] {
    return this.ids.filter((id) => this.isRunning(id)).map((id) => this.member(id).process!.pid!);
  }

  isRunning(id: number): boolean {
    const p = this.member(id).process;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  spawn(id: number): void {
    const m = this.member(id);
    if (this.isRunning(id)) throw new Error(`member ${id} is running`);
    const prof = this.opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${this.opts.cpuProfDir}`] : [];
    // The member's log goes straight to a file: nothing of it passes through this process.
    const log = openSync(this.logFile(id), 'a');
    m.process = spawn(process.execPath, [...(this.opts.nodeArgs ?? []), ...prof, join(ROOT, 'dist/src/cli/main.js'), 'start', '--config', join(m.dataDir, 'zoo.cfg')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', log],
      env: { ...process.env, PULSEKEEPER_LOG_LEVEL: process.env.PULSEKEEPER_LOG_LEVEL ?? 'info' },
    });
    closeSync(log);
    endWithParent(m.process);
  }

  async waitServing(id: number, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (!this.isRunning(id)) throw new Error(`pulsekeeper member ${id} exited; see ${this.logFile(id)}`);
      const mode = await this.mode(id);
      if (mode && SERVING.has(mode)) return;
      if (performance.now() > deadline) throw new Error(`pulsekeeper member ${id} not serving within ${timeoutMs} ms (${mode})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async mode(id: number): Promise<string | undefined> {
    if (!this.isRunning(id)) return undefined;
    try {
      const text = await fourLetter(this.port(id), 'srvr');
      return /Mode: (\S+)/.exec(text)?.[1] ?? 'not serving';
    } catch {
      return undefined;
    }
  }

  async mntr(id: number): Promise<Record<string, string>> {
    const text = await fourLetter(this.port(id), 'mntr');
    return Object.fromEntries(text.trim().split('\n').map((l) => l.split('\t') as [string, string]));
  }

  async waitForLeader(timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ids = this.ids.filter((id) => this.isRunning(id));
      const modes = await Promise.all(ids.map((id) => this.mode(id)));
      const leaders = ids.filter((_, i) => modes[i] === 'leader');
      if (leaders.length === 1 && modes.every((m) => m !== undefined && SERVING.has(m))) return leaders[0];
      if (ids.length === 0 || performance.now() > deadline) throw new Error(`pulsekeeper: no single leader: ${ids.map((id, i) => `${id}=${modes[i]}`).join(' ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(id: number): Promise<void> {
    await this.signal(id, 'SIGKILL');
  }

  private async signal(id: number, sig: NodeJS.Signals): Promise<void> {
    const p = this.member(id).process;
    if (!p || !this.isRunning(id)) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(sig);
    await gone;
  }

  async close(): Promise<void> {
    // SIGTERM lets a profiled member write its profile; SIGKILL after a while in case it hangs.
    const sig = this.opts.cpuProfDir ? 'SIGTERM' : 'SIGKILL';
    await Promise.all(
      this.ids.map(async (id) => {
        const timer = setTimeout(() => this.member(id).process?.kill('SIGKILL'), 15_000);
        await this.signal(id, sig);
        clearTimeout(timer);
      }),
    );
    if (!this.opts.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** ZooKeeper's ensemble from the test support, seen through the benchmark interface. */
function zookeeperTarget(zk: ZooKeeperEnsemble): BenchEnsemble {
  return {
    name: 'zookeeper',
    ids: [...zk.members.keys()],
    get ports() {
      return [...zk.members.values()].map((m) => m.clientPort);
    },
    port: (id) => zk.member(id).clientPort,
    logFile: () => undefined,
    pid: (id) => (zk.isRunning(id) ? zk.member(id).process!.pid : undefined),
    pids: () => [...zk.members.values()].filter((m) => zk.isRunning(m.id)).map((m) => m.process!.pid!),
    isRunning: (id) => zk.isRunning(id),
    mode: (id) => zk.mode(id),
    mntr: (id) => zk.mntr(id),
    waitForLeader: (timeoutMs) => zk.waitForLeader(timeoutMs),
    kill: (id) => zk.kill(id),
    spawn: (id) => void zk.spawnMember(id),
    waitServing: async (id, timeoutMs) => void (await zk.waitServing(id, timeoutMs)),
    close: () => zk.close(),
  };
}

export async function startPulsekeeperEnsemble(opts: EnsembleOptions): Promise<BenchEnsemble> {
  return PulsekeeperEnsemble.start(3, opts);
}

/** ZooKeeper's shipped timing defaults (tickTime 2000, initLimit 10, syncLimit 5), server JIT. */
export async function startZooKeeperEnsemble(opts: EnsembleOptions): Promise<BenchEnsemble> {
  const zk = await ZooKeeperEnsemble.start({
    size: 3,
    forceSync: opts.forceSync,
    cfg: opts.cfg,
    dir: opts.dir,
    tuning: 'server',
    jvmArgs: opts.jvmArgs ?? ['-Xms512m', '-Xmx2g'],
  });
  return zookeeperTarget(zk);
}

/** Runs `work`, failing as soon as any member of the ensemble has exited (a load would wait for its replies forever). */
export async function whileAllRunning<T>(e: BenchEnsemble, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const died = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const gone = e.ids.filter((id) => !e.isRunning(id));
      if (gone.length > 0) reject(new Error(`${e.name} member ${gone.join(', ')} exited during the run`));
    }, 500);
  });
  try {
    return await Promise.race([work, died]);
  } finally {
    clearInterval(timer);
  }
}

export const STARTERS = { pulsekeeper: startPulsekeeperEnsemble, zookeeper: startZooKeeperEnsemble } as const;
export type SystemName = keyof typeof STARTERS;
