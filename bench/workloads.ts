/**
 * The benchmark workloads, shared by the single-server and the ensemble runs: each
 * drives a target (one server, or every member of an ensemble with the sessions
 * spread over them) and returns one row of the report.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { CreateMode, OpCode } from '../src/protocol/opcodes.js';
import { createFrame, drive, frame, LoadSession, percentiles, type Result } from './load.js';
import { cpuSeconds, rssBytes } from './servers.js';

/** What a workload runs against: the client ports of its members and the processes that serve them. */
export interface LoadTarget {
  name: string;
  ports: number[];
  pids(): number[];
}

export interface Row {
  workload: string;
  server: string;
  result: Result;
  serverCpu: number;
  extra?: string;
}

export interface ThroughputOptions {
  ops: number;
  sessions: number;
  window: number;
  maxSeconds: number;
}

export interface HoldOptions {
  sessions: number;
  seconds: number;
}

/** The machine is shared: how busy it was when this run began goes into the report. */
const loadAtStart = loadavg()[0];

/** Date, machine and how busy it was at the start, for a report's command line. */
export function runContext(): string {
  return `${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, Node ${process.version}, 1-minute load average ${loadAtStart.toFixed(1)} at the start`;
}

const DATA = Buffer.alloc(100, 'x');

export function totalCpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

/** n sessions, the k-th on ports[k % ports.length], opened 500 at a time. */
export async function openSessions(ports: number[], n: number, timeoutMs = 30_000): Promise<LoadSession[]> {
  const out: LoadSession[] = [];
  for (let i = 0; i < n; i += 500) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => LoadSession.open(ports[(i + j) % ports.length], timeoutMs)))));
  }
  return out;
}

/** Runs the setup frames on the first session, then a sync on every session so each member has seen them. */
async function setup(sessions: LoadSession[], frames: Buffer[]): Promise<void> {
  let i = 0;
  await drive(sessions.slice(0, 1), () => frames[i++], frames.length, 64, 120);
  const sync = frame({ type: OpCode.sync, path: '/b' });
  await drive(sessions, () => sync, sessions.length, 1, 60);
}

export async function throughput(target: LoadTarget, workload: string, o: ThroughputOptions): Promise<Row> {
  const sessions = await openSessions(target.ports, o.sessions);
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
  if (!make[workload]) throw new Error(`unknown workload "${workload}"`);
  const pids = target.pids();
  const cpu0 = totalCpuSeconds(pids);
  const result = await drive(sessions, make[workload], o.ops, o.window, o.maxSeconds);
  const serverCpu = totalCpuSeconds(pids) - cpu0;
  sessions.forEach((s) => s.close());
  return { workload, server: target.name, result, serverCpu };
}

/** N sessions each pinging once a second; ping round trips and memory per session. */
export async function hold(target: LoadTarget, o: HoldOptions): Promise<Row> {
  const pids = target.pids();
  const rss = () => pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  const rss0 = rss();
  const sessions = await openSessions(target.ports, o.sessions, 30_000);
  const lat = new Float64Array(o.sessions * (o.seconds + 2));
  let n = 0;
  let errors = 0;
  const ping = frame({ type: OpCode.ping });
  for (const s of sessions) {
    s.setHandler((latency, err) => {
      if (n < lat.length) lat[n++] = latency;
      if (err !== 0) errors++;
    });
  }
  const cpu0 = totalCpuSeconds(pids);
  const start = performance.now();
  // One timer every 10 ms pings the next hundredth of the sessions: each session once a second,
  // spread evenly, without a timer per session loading the load generator.
  const SLICES = 100;
  let slice = 0;
  const timer = setInterval(() => {
    for (let k = slice; k < sessions.length; k += SLICES) sessions[k].send(ping);
    slice = (slice + 1) % SLICES;
  }, 1000 / SLICES);
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 500));
  const seconds = (performance.now() - start) / 1000;
  const serverCpu = totalCpuSeconds(pids) - cpu0;
  const rss1 = rss();
  const open = sessions.filter((s) => !s.socket.destroyed).length;
  sessions.forEach((s) => s.close());
  const perSession = Math.round((rss1 - rss0) / o.sessions);
  return {
    workload: `hold-${o.sessions}-sessions`,
    server: target.name,
    result: { ops: n, errors, seconds, opsPerSec: n / seconds, ...percentiles(lat, n) },
    serverCpu,
    extra: `${open}/${o.sessions} sessions held; RSS ${(rss1 / 2 ** 20).toFixed(0)} MiB, ${perSession} B/session`,
  };
}

export function rowLine(row: Row): string {
  const r = row.result;
  return `${row.workload.padEnd(22)} ${row.server.padEnd(12)} ${r.opsPerSec.toFixed(0).padStart(8)} ops/s  p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} p999 ${r.p999.toFixed(2)} ms  errors ${r.errors}  server cpu ${row.serverCpu.toFixed(1)} s ${row.extra ?? ''}`;
}

/** The report table: pulsekeeper's rows carry the ratio to the other server's row of the same workload. */
export function rowsTable(rows: Row[]): string[] {
  const lines = ['| workload | server | ops/s | p50 | p99 | p999 | server CPU s | ratio | notes |', '|---|---|---:|---:|---:|---:|---:|---:|---|'];
  for (const row of rows) {
    const other = rows.find((r) => r.workload === row.workload && r.server !== row.server);
    // Held sessions are compared by ping latency (zk p99 / pk p99), the rest by throughput (pk / zk).
    const held = row.workload.startsWith('hold-');
    const ratio =
      row.server === 'pulsekeeper' && other
        ? held
          ? other.result.p99 >= row.result.p99
            ? `p99 ${(other.result.p99 / row.result.p99).toFixed(2)}x lower`
            : `p99 ${(row.result.p99 / other.result.p99).toFixed(2)}x higher`
          : (row.result.opsPerSec / other.result.opsPerSec).toFixed(2)
        : '';
    const r = row.result;
    lines.push(
      `| ${row.workload} | ${row.server} | ${r.opsPerSec.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.p999.toFixed(2)} | ${row.serverCpu.toFixed(1)} | ${ratio} | ${[r.errors ? `${r.errors} errors` : '', row.extra ?? ''].filter(Boolean).join('; ')} |`,
    );
  }
  return lines;
}

/** Replaces (or appends) the section between `<!-- name:begin -->` and `<!-- name:end -->` of BENCHMARKS.md. */
export function writeSection(name: string, body: string[], file = 'BENCHMARKS.md'): void {
  const section = [`<!-- ${name}:begin -->`, ...body, `<!-- ${name}:end -->`].join('\n');
  let text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : "# Benchmarks\n\nEach section is written by the command it names; numbers are from one run on this project's 2-core machines.\n";
  const re = new RegExp(`<!-- ${name}:begin -->[\\s\\S]*<!-- ${name}:end -->`);
  // A function replacement keeps any `$` in the section literal.
  text = re.test(text) ? text.replace(re, () => section) : text.trimEnd() + '\n\n' + section + '\n';
  writeFileSync(file, text);
  console.log(`wrote ${file} (${name})`);
}

/** p-th quantile of a list of numbers (nearest rank, as the load generator's percentiles). */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
