/**
 * `npm run bench`: the same workloads against pulsekeeper and Apache ZooKeeper 3.8
 * in one run, side by side, written to BENCHMARKS.md.
 *
 *   npm run bench -- [--quick] [--workloads create,get,...] [--ops N] [--hold N] [--no-write]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { CreateMode, OpCode } from '../src/protocol/opcodes.js';
import { createFrame, drive, frame, LoadSession, percentiles, type Result } from './load.js';
import { cpuSeconds, MAX_CLIENT_CNXNS, rssBytes, startApacheZooKeeper, startPulsekeeper, type BenchServer } from './servers.js';

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
const DATA = Buffer.alloc(100, 'x');
const ALL = ['create', 'set', 'get', 'mixed', 'ephemeral', 'hold'];
const workloads = values.workloads ? values.workloads.split(',') : ALL;

interface Row {
  workload: string;
  server: string;
  result: Result;
  serverCpu: number;
  extra?: string;
}

async function openSessions(port: number, n: number, timeoutMs = 30_000): Promise<LoadSession[]> {
  const out: LoadSession[] = [];
  for (let i = 0; i < n; i += 500) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => LoadSession.open(port, timeoutMs)))));
  }
  return out;
}

async function setup(sessions: LoadSession[], frames: Buffer[]): Promise<void> {
  let i = 0;
  await drive(sessions.slice(0, 1), () => frames[i++], frames.length, 64, 120);
}

async function throughput(server: BenchServer, workload: string): Promise<Row> {
  const sessions = await openSessions(server.port, SESSIONS);
  await setup(sessions, [createFrame('/b', Buffer.alloc(0)), ...sessions.map((_, k) => createFrame(`/b/s${k}`, DATA))]);
  const set = sessions.map((_, k) => frame({ type: OpCode.setData, path: `/b/s${k}`, data: DATA, version: -1 }));
  const get = sessions.map((_, k) => frame({ type: OpCode.getData, path: `/b/s${k}`, watch: false }));
  const make: Record<string, (s: number, i: number) => Buffer> = {
    create: (s, i) => createFrame(`/b/c${s}_${i}`, DATA),
    set: (s) => set[s],
    get: (s) => get[s],
    mixed: (s, i) => (i % 10 === 9 ? set[s] : get[s]),
    // A create and the delete of the same ephemeral, alternately: both count as operations.
    ephemeral: (s, i) =>
      i % 2 === 0 ? createFrame(`/b/e${s}_${i >> 1}`, DATA, CreateMode.EPHEMERAL) : frame({ type: OpCode.delete, path: `/b/e${s}_${i >> 1}`, version: -1 }),
  };
  const cpu0 = cpuSeconds(server.pid);
  const result = await drive(sessions, make[workload], OPS, WINDOW, MAX_SECONDS);
  const serverCpu = cpuSeconds(server.pid) - cpu0;
  sessions.forEach((s) => s.close());
  return { workload, server: server.name, result, serverCpu };
}

/** N sessions each pinging once a second; ping round trips and memory per session. */
async function hold(server: BenchServer): Promise<Row> {
  const rss0 = rssBytes(server.pid);
  const sessions = await openSessions(server.port, HOLD, 30_000);
  const lat = new Float64Array(HOLD * (HOLD_SECONDS + 2));
  let n = 0;
  let errors = 0;
  const ping = frame({ type: OpCode.ping });
  for (const s of sessions) {
    s.setHandler((latency, err) => {
      if (n < lat.length) lat[n++] = latency;
      if (err !== 0) errors++;
    });
  }
  const cpu0 = cpuSeconds(server.pid);
  const start = performance.now();
  // One timer every 10 ms pings the next hundredth of the sessions: each session once a second,
  // spread evenly, without a timer per session loading the load generator.
  const SLICES = 100;
  let slice = 0;
  const timer = setInterval(() => {
    for (let k = slice; k < sessions.length; k += SLICES) sessions[k].send(ping);
    slice = (slice + 1) % SLICES;
  }, 1000 / SLICES);
  await new Promise((r) => setTimeout(r, HOLD_SECONDS * 1000));
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 500));
  const seconds = (performance.now() - start) / 1000;
  const serverCpu = cpuSeconds(server.pid) - cpu0;
  const rss1 = rssBytes(server.pid);
  const open = sessions.filter((s) => !s.socket.destroyed).length;
  sessions.forEach((s) => s.close());
  const perSession = Math.round((rss1 - rss0) / HOLD);
  return {
    workload: `hold-${HOLD}-sessions`,
    server: server.name,
    result: { ops: n, errors, seconds, opsPerSec: n / seconds, ...percentiles(lat, n) },
    serverCpu,
    extra: `${open}/${HOLD} sessions held; RSS ${(rss1 / 2 ** 20).toFixed(0)} MiB, ${perSession} B/session`,
  };
}

async function main(): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  const rows: Row[] = [];
  for (const workload of workloads) {
    for (const start of [startPulsekeeper, startApacheZooKeeper]) {
      const server = await start();
      try {
        const row = workload === 'hold' ? await hold(server) : await throughput(server, workload);
        rows.push(row);
        const r = row.result;
        console.log(
          `${row.workload.padEnd(22)} ${row.server.padEnd(12)} ${r.opsPerSec.toFixed(0).padStart(8)} ops/s  p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} p999 ${r.p999.toFixed(2)} ms  errors ${r.errors}  server cpu ${row.serverCpu.toFixed(1)} s ${row.extra ?? ''}`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  if (!values['no-write']) writeReport(rows);
}

function writeReport(rows: Row[]): void {
  const args = process.argv.slice(2).join(' ');
  const lines = [
    '<!-- server-bench:begin -->',
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
    '| workload | server | ops/s | p50 | p99 | p999 | server CPU s | ratio | notes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of rows) {
    const other = rows.find((r) => r.workload === row.workload && r.server !== row.server);
    // Held sessions are compared by ping latency (zk p99 / pk p99), the rest by throughput (pk / zk).
    const hold = row.workload.startsWith('hold-');
    const ratio =
      row.server === 'pulsekeeper' && other
        ? hold
          ? `p99 ${(other.result.p99 / row.result.p99).toFixed(2)}x lower`
          : (row.result.opsPerSec / other.result.opsPerSec).toFixed(2)
        : '';
    const r = row.result;
    lines.push(
      `| ${row.workload} | ${row.server} | ${r.opsPerSec.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.p999.toFixed(2)} | ${row.serverCpu.toFixed(1)} | ${ratio} | ${[r.errors ? `${r.errors} errors` : '', row.extra ?? ''].filter(Boolean).join('; ')} |`,
    );
  }
  lines.push('<!-- server-bench:end -->');
  const file = 'BENCHMARKS.md';
  const section = lines.join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nEach section is written by the command it names; numbers are from one run on this project\'s 2-core machines.\n';
  const re = /<!-- server-bench:begin -->[\s\S]*<!-- server-bench:end -->/;
  text = re.test(text) ? text.replace(re, section) : text.trimEnd() + '\n\n' + section + '\n';
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
