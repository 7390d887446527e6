/**
 * `npm run bench:ensemble`: throughput and latency of a 3-member pulsekeeper ensemble
 * and a 3-member Apache ZooKeeper 3.8 ensemble, forceSync on for both, sessions spread
 * over all members, the single-server benchmark's workloads; written to BENCHMARKS.md.
 *
 *   npm run bench:ensemble -- [--quick] [--workloads create,set,get,mixed,ephemeral,hold]
 *     [--ops N] [--sessions N] [--window N] [--hold N] [--hold-seconds S] [--cpu-prof DIR] [--no-write]
 *
 * --cpu-prof DIR writes a V8 CPU profile of each pulsekeeper member per workload into DIR.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build, STARTERS, whileAllRunning, type SystemName } from './ensembles.js';
import { hold, rowLine, rowsTable, throughput, writeSection, type Row, runContext } from './workloads.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    workloads: { type: 'string' },
    systems: { type: 'string', default: 'pulsekeeper,zookeeper' },
    ops: { type: 'string' },
    sessions: { type: 'string' },
    window: { type: 'string' },
    hold: { type: 'string' },
    'hold-seconds': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const quick = values.quick!;
const OPS = Number(values.ops ?? (quick ? 20_000 : 100_000));
const SESSIONS = Number(values.sessions ?? 32);
const WINDOW = Number(values.window ?? 16);
const HOLD = Number(values.hold ?? (quick ? 1_500 : 15_000));
const HOLD_SECONDS = Number(values['hold-seconds'] ?? (quick ? 10 : 30));
const MAX_SECONDS = quick ? 30 : 90;
const workloads = values.workloads ? values.workloads.split(',') : ['create', 'set', 'get', 'mixed', 'ephemeral', 'hold'];
const systems = values.systems!.split(',') as SystemName[];

async function main(): Promise<void> {
  build();
  const rows: Row[] = [];
  for (const workload of workloads) {
    for (const system of systems) {
      const cpuProfDir = system === 'pulsekeeper' && values['cpu-prof'] ? resolve(values['cpu-prof'], workload) : undefined;
      if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
      // A fresh ensemble per workload: every run starts from the same empty tree and log.
      const ensemble = await STARTERS[system]({ forceSync: true, cpuProfDir });
      try {
        const row = await whileAllRunning(
          ensemble,
          workload === 'hold'
            ? hold(ensemble, { sessions: HOLD, seconds: HOLD_SECONDS })
            : throughput(ensemble, workload, { ops: OPS, sessions: SESSIONS, window: WINDOW, maxSeconds: MAX_SECONDS }),
        );
        rows.push(row);
        console.log(rowLine(row));
      } finally {
        await ensemble.close();
      }
      if (cpuProfDir) console.log(`cpu profiles of ${workload} in ${join(cpuProfDir)}`);
    }
  }
  if (!values['no-write']) writeReport(rows);
}

function writeReport(rows: Row[]): void {
  const args = process.argv.slice(2).join(' ');
  writeSection('ensemble-bench', [
    '## Three-member ensembles: pulsekeeper vs Apache ZooKeeper 3.8',
    '',
    `Command: \`npm run bench:ensemble${args ? ' -- ' + args : ''}\` (${runContext()}).`,
    'Three member processes of each on 127.0.0.1 (6 processes plus the load generator on the same 2 cores), forceSync=yes for both',
    '(every acknowledged write is fsynced on a quorum, data on the local ext4 disk), ZooKeeper with its shipped timing defaults and',
    "the server JIT, pulsekeeper with its defaults. A fresh ensemble per workload. The single-server benchmark's workloads:",
    `${SESSIONS} sessions spread evenly over the three members, ${WINDOW} requests in flight each, ${OPS} operations (or ${MAX_SECONDS} s), 100-byte values.`,
    'Server CPU is the sum over the three members. Latencies in milliseconds; ratio is pulsekeeper ops/s over ZooKeeper ops/s.',
    '',
    `hold-N-sessions: N sessions spread over the members, each pinging once a second for ${HOLD_SECONDS} s; latencies are ping round trips;`,
    "RSS is the members' total, B/session its growth over N.",
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
