/**
 * `npm run bench`: the same workloads against pulsekeeper and Apache ZooKeeper 3.8
 * in one run, side by side, written to BENCHMARKS.md.
 *
 *   npm run bench -- [--quick] [--workloads create,get,...] [--ops N] [--hold N] [--no-write]
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { MAX_CLIENT_CNXNS, startApacheZooKeeper, startPulsekeeper, type BenchServer } from './servers.js';
import { hold as holdSessions, rowLine, rowsTable, throughput as runThroughput, writeSection, type LoadTarget, type Row } from './workloads.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    workloads: { type: 'string' },
    ops: { type: 'string' },
    sessions: { type: 'string' },
    window: { type: 'string' },
    hold: { type: 'string' },
    'hold-seconds': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const quick = values.quick!;
const OPS = Number(values.ops ?? (quick ? 20_000 : 200_000));
const SESSIONS = Number(values.sessions ?? 32);
const WINDOW = Number(values.window ?? 16);
const HOLD = Number(values.hold ?? (quick ? 2_000 : 19_000));
const HOLD_SECONDS = Number(values['hold-seconds'] ?? (quick ? 10 : 30));
const MAX_SECONDS = quick ? 30 : 120;
const ALL = ['create', 'set', 'get', 'mixed', 'ephemeral', 'hold'];
const workloads = values.workloads ? values.workloads.split(',') : ALL;

function target(server: BenchServer): LoadTarget {
  return { name: server.name, ports: [server.port], pids: () => [server.pid] };
}

async function main(): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  const rows: Row[] = [];
  for (const workload of workloads) {
    for (const start of [startPulsekeeper, startApacheZooKeeper]) {
      const server = await start();
      try {
        const row =
          workload === 'hold'
            ? await holdSessions(target(server), { sessions: HOLD, seconds: HOLD_SECONDS })
            : await runThroughput(target(server), workload, { ops: OPS, sessions: SESSIONS, window: WINDOW, maxSeconds: MAX_SECONDS });
        rows.push(row);
        console.log(rowLine(row));
      } finally {
        await server.stop();
      }
    }
  }
  if (!values['no-write']) writeReport(rows);
}

function writeReport(rows: Row[]): void {
  const args = process.argv.slice(2).join(' ');
  writeSection('server-bench', [
    '## Single server: pulsekeeper vs Apache ZooKeeper 3.8',
    '',
    `Command: \`npm run bench${args ? ' -- ' + args : ''}\` (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, Node ${process.version}).`,
    `Both servers on 127.0.0.1 as separate processes, per-IP connection limit ${MAX_CLIENT_CNXNS || 'unlimited'} for both; ZooKeeper with forceSync=no`,
    `since pulsekeeper's commit is still in memory. Throughput workloads: ${SESSIONS} sessions, ${WINDOW} requests in flight each, ${OPS} operations, 100-byte values;`,
    'the load generator is one Node process on the same 2 cores. Latencies in milliseconds.',
    '',
    'hold-N-sessions: N sessions each pinging once a second; latencies are ping round trips; B/session is the',
    "server's RSS growth over N, before any garbage collection.",
    '',
    ...rowsTable(rows),
  ]);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
