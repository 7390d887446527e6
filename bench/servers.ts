/** Starts the two servers a benchmark compares, as separate processes on loopback. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/support/ports.js';
import { fourLetter, startZooKeeper } from '../test/support/zookeeper.js';

export interface BenchServer {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Both get the same per-IP connection limit (unlimited) and in-memory durability settings. */
export const MAX_CLIENT_CNXNS = 0;

export async function startPulsekeeper(): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pk-bench-'));
  const port = await freePort();
  writeFileSync(join(dir, 'zoo.cfg'), `clientPort=${port}\ndataDir=${join(dir, 'data')}\nmaxClientCnxns=${MAX_CLIENT_CNXNS}\n4lw.commands.whitelist=*\n`);
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'start', '--config', join(dir, 'zoo.cfg')], { stdio: ['ignore', 'ignore', 'ignore'] });
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
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startApacheZooKeeper(): Promise<BenchServer> {
  const zk = await startZooKeeper({ forceSync: false, maxClientCnxns: MAX_CLIENT_CNXNS, jvmArgs: ['-Xms2g', '-Xmx4g'], tuning: 'server' });
  return { name: 'zookeeper', port: zk.port, pid: zk.pid, stop: () => zk.stop() };
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
