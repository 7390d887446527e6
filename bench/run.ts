/**
 * `npm run bench`: the same workloads against pulsekeeper and Apache ZooKeeper 3.8
 * in one run, side by side, written to BENCHMARKS.md.
 *
 *   npm run bench -- [--quick] [--workloads create,get,...] [--ops N] [--hold N] [--no-write]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { holdSessions } from './hold.js';
import { MAX_CLIENT_CNXNS, startApacheZooKeeper, startPulsekeeper, type BenchServer } from './servers.js';
import { rowLine, rowsTable, runContext, throughput as runThroughput, writeSection, type LoadTarget, type Row } from './workloads.js';

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
const HOLD_WARM = Math.min(2_000, Math.floor(HOLD / 2));
const HOLD_READINGS = quick ? 2 : 5;
/** Writes before each memory reading: more than pulsekeeper's in-memory log keeps with snapCount=1000 (1,000 + 10,000). */
const HOLD_FILL = 12_000;
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
    const hold = workload === 'hold';
    // For hold, pulsekeeper snapshots every 1,000 transactions, so its in-memory log (the last
    // snapCount + 10,000 transactions) holds the same at every memory reading.
    const starts = [() => startPulsekeeper(hold ? { config: ['snapCount=1000'] } : {}), startApacheZooKeeper];
    for (const start of starts) {
      const server = await start();
      try {
        const row = hold
          ? await holdSessions(server, { sessions: HOLD, warm: HOLD_WARM, readings: HOLD_READINGS, fill: HOLD_FILL, seconds: HOLD_SECONDS })
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
    `Command: \`npm run bench${args ? ' -- ' + args : ''}\` (${runContext()}).`,
    `Both servers on 127.0.0.1 as separate processes, per-IP connection limit ${MAX_CLIENT_CNXNS || 'unlimited'} for both, neither fsyncs`,
    "(ZooKeeper forceSync=no, pulsekeeper `start` with forceSync=no; pulsekeeper's client transport is the epoll addon).",
    `Throughput workloads: ${SESSIONS} sessions, ${WINDOW} requests in flight each, ${OPS} operations, 100-byte values; the load generator`,
    'is one Node process on the same 2 cores. Latencies in milliseconds.',
    '',
    `hold-N-sessions: N sessions, each pinging once a second from the moment it is open (${HOLD_SECONDS} s measured once all are open);`,
    'latencies are ping round trips, including the load generator\'s own delay (its event-loop delay is in the notes). Sessions held:',
    'open and answered in the last 2 s. B/session is the least-squares slope of the server\'s resident memory over',
    `${HOLD_READINGS} readings from ${HOLD_WARM} to N sessions, each after full, compacting garbage collections and ${HOLD_FILL} small writes (so`,
    'a log kept in memory holds the same at every reading), with the young generation made resident; pulsekeeper also gives',
    "the slope of its live JS heap. ZooKeeper's readings follow `jcmd GC.run`; a JVM keeps the heap it has grown, so its",
    'figure is what its RSS did, not its live data. See "Memory per session" below for the method and its limits.',
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
