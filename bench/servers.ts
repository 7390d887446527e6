/** Starts the two servers a benchmark compares, as separate processes on loopback. */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/support/ports.js';
import { fourLetter, startZooKeeper } from '../test/support/zookeeper.js';

export interface BenchServer {
  name: string;
  port: number;
  pid: number;
  /** Resident memory (and JS heap, for pulsekeeper) after full garbage collections. */
  memoryAfterGc(): Promise<{ rss: number; heapUsed?: number }>;
  stop(): Promise<void>;
}

/** Both get the same per-IP connection limit (unlimited) and the same durability settings (no fsync). */
export const MAX_CLIENT_CNXNS = 0;

export interface PulsekeeperOptions {
  /** More zoo.cfg lines. */
  config?: string[];
  /** Flags for node (V8's heap sizes, say). */
  nodeFlags?: string[];
}

export async function startPulsekeeper(opts: PulsekeeperOptions = {}): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pk-bench-'));
  const port = await freePort();
  const memoryFile = join(dir, 'memory.json');
  const cfg = [`clientPort=${port}`, `dataDir=${join(dir, 'data')}`, `maxClientCnxns=${MAX_CLIENT_CNXNS}`, 'forceSync=no', '4lw.commands.whitelist=*', ...(opts.config ?? [])];
  writeFileSync(join(dir, 'zoo.cfg'), cfg.join('\n') + '\n');
  // `pulsekeeper start`, with a hook that lets the benchmark ask for a garbage collection.
  const gcHook = new URL('./gc-on-signal.mjs', import.meta.url).pathname;
  const args = [...(opts.nodeFlags ?? []), '--expose-gc', '--import', gcHook, 'dist/src/cli/main.js', 'start', '--config', join(dir, 'zoo.cfg')];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, PULSEKEEPER_BENCH_MEMORY: memoryFile },
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fourLetter(port, 'ruok')) === 'imok') break;
    } catch {
      // not yet listening
    }
    if (Date.now() > deadline) throw new Error('pulsekeeper did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    name: 'pulsekeeper',
    port,
    pid: child.pid!,
    async memoryAfterGc() {
      rmSync(memoryFile, { force: true });
      child.kill('SIGUSR2');
      for (const deadline = Date.now() + 60_000; !existsSync(memoryFile); ) {
        if (Date.now() > deadline) throw new Error('pulsekeeper did not report its memory');
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 50));
      // Read by the process itself right after the collection, before traffic touches more pages.
      const report = JSON.parse(readFileSync(memoryFile, 'utf8')) as { rss: number; heapUsed: number };
      return { rss: report.rss, heapUsed: report.heapUsed };
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startApacheZooKeeper(): Promise<BenchServer> {
  const zk = await startZooKeeper({ forceSync: false, maxClientCnxns: MAX_CLIENT_CNXNS, jvmArgs: ['-Xms2g', '-Xmx4g'], tuning: 'server' });
  return {
    name: 'zookeeper',
    port: zk.port,
    pid: zk.pid,
    async memoryAfterGc() {
      execFileSync('jcmd', [String(zk.pid), 'GC.run'], { stdio: 'ignore' });
      return { rss: rssBytes(zk.pid) };
    },
    stop: () => zk.stop(),
  };
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
