/**
 * `npm run bench:soak`: no false failover. Full load against a 3-member pulsekeeper
 * ensemble (defaults, forceSync on) for a fixed time while every member's mntr is read
 * once a second; any change of pk_term or of the leader is a leader change, and under
 * load without faults there must be none. Written to BENCHMARKS.md.
 *
 *   npm run bench:soak -- [--minutes 10] [--sessions 48] [--window 16] [--write-percent 50] [--no-write]
 *
 * --minutes 0.5 is a short variant for trying things.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { build, startPulsekeeperEnsemble, type BenchEnsemble } from './ensembles.js';
import { SteadyLoad } from './steady-load.js';
import { totalCpuSeconds, writeSection, runContext } from './workloads.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    sessions: { type: 'string', default: '48' },
    window: { type: 'string', default: '16' },
    'write-percent': { type: 'string', default: '50' },
    'no-write': { type: 'boolean', default: false },
  },
});
const MINUTES = Number(values.minutes);
const SESSIONS = Number(values.sessions);
const WINDOW = Number(values.window);
const WRITE_PERCENT = Number(values['write-percent']);
if (!(MINUTES > 0 && MINUTES <= 24 * 60)) throw new Error('--minutes must be more than 0 and at most a day');

interface Watch {
  samples: number;
  /** mntr reads that got no answer within 5 s. */
  unanswered: number;
  termChanges: number;
  leaderChanges: number;
  firstTerm: number | undefined;
  lastTerm: number | undefined;
  /** Largest heartbeat age the leader reported for a follower, ms. */
  maxHeartbeatAgeMs: number;
  /** Largest follower lag in entries the leader reported. */
  maxLag: number;
  /** Members not in leader or follower mode when read. */
  notServing: number;
  /** Largest share of a one-second sample that a member's main thread spent ready to run but waiting for a CPU. */
  maxRunQueueWait: number;
  /** Mean of that share over all samples and members. */
  meanRunQueueWait: number;
}

/** Nanoseconds the process's main thread has waited on a run queue (/proc/PID/schedstat), or undefined once it is gone. */
function runQueueWaitNs(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Reads each member's mntr once a second until stopped, counting term and leader changes. */
function watch(e: BenchEnsemble, until: () => boolean): Promise<Watch> {
  const w: Watch = {
    samples: 0,
    unanswered: 0,
    termChanges: 0,
    leaderChanges: 0,
    firstTerm: undefined,
    lastTerm: undefined,
    maxHeartbeatAgeMs: 0,
    maxLag: 0,
    notServing: 0,
    maxRunQueueWait: 0,
    meanRunQueueWait: 0,
  };
  const lastTerm = new Map<number, number>();
  const lastLeader = new Map<number, string>();
  const lastWait = new Map<number, { ns: number; at: number }>();
  let waitSum = 0;
  let waitSamples = 0;
  return (async () => {
    while (!until()) {
      const next = performance.now() + 1000;
      for (const id of e.ids) {
        const pid = e.pid(id);
        const ns = pid === undefined ? undefined : runQueueWaitNs(pid);
        if (ns === undefined) continue;
        const now = performance.now();
        const before = lastWait.get(id);
        if (before) {
          const share = (ns - before.ns) / 1e6 / (now - before.at);
          w.maxRunQueueWait = Math.max(w.maxRunQueueWait, share);
          waitSum += share;
          w.meanRunQueueWait = waitSum / ++waitSamples;
        }
        lastWait.set(id, { ns, at: now });
      }
      await Promise.all(
        e.ids.map(async (id) => {
          let m: Record<string, string>;
          try {
            m = await e.mntr(id);
          } catch {
            w.unanswered++;
            return;
          }
          w.samples++;
          const term = Number(m.pk_term);
          const before = lastTerm.get(id);
          if (before !== undefined && term !== before) {
            w.termChanges++;
            console.log(`member ${id}: term ${before} -> ${term}`);
          }
          lastTerm.set(id, term);
          w.firstTerm ??= term;
          w.lastTerm = Math.max(w.lastTerm ?? 0, term);
          const leaderBefore = lastLeader.get(id);
          if (leaderBefore !== undefined && m.pk_leader !== leaderBefore) {
            w.leaderChanges++;
            console.log(`member ${id}: leader ${leaderBefore} -> ${m.pk_leader}`);
          }
          lastLeader.set(id, m.pk_leader);
          if (m.zk_server_state !== 'leader' && m.zk_server_state !== 'follower') w.notServing++;
          for (const [k, v] of Object.entries(m)) {
            if (/^pk_peer_\d+_heartbeat_age_ms$/.test(k)) w.maxHeartbeatAgeMs = Math.max(w.maxHeartbeatAgeMs, Number(v));
            if (/^pk_peer_\d+_lag$/.test(k) && m.zk_server_state === 'leader') w.maxLag = Math.max(w.maxLag, Number(v));
          }
        }),
      );
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
    return w;
  })();
}

/** The member's logged role changes after it first took its part ("time member N: from -> to"). */
function roleChangesOf(e: BenchEnsemble, id: number): string[] {
  const file = e.logFile(id);
  if (!file) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"role changed"'))
    .map((l) => JSON.parse(l) as { time: string; from: string; to: string })
    // The first is the member taking its part at the start; a report lists at most 50.
    .slice(1, 51)
    .map((c) => `${c.time.slice(11, 23)} member ${id}: ${c.from} -> ${c.to}`);
}

async function main(): Promise<void> {
  build();
  const e = await startPulsekeeperEnsemble({ forceSync: true });
  try {
    const load = new SteadyLoad(e, { sessions: SESSIONS, window: WINDOW, writePercent: WRITE_PERCENT });
    await load.start();
    const pids = e.pids();
    const cpu0 = totalCpuSeconds(pids);
    const end = performance.now() + MINUTES * 60_000;
    const watching = watch(e, () => performance.now() >= end);
    let lastOps = 0;
    const progress = setInterval(() => {
      console.log(`${((performance.now() - (end - MINUTES * 60_000)) / 1000).toFixed(0)} s: ${((load.ops - lastOps) / 10).toFixed(0)} ops/s`);
      lastOps = load.ops;
    }, 10_000);
    const w = await watching;
    clearInterval(progress);
    const r = await load.stop();
    const cpu = totalCpuSeconds(pids) - cpu0;
    const roleChanges = e.ids.flatMap((id) => roleChangesOf(e, id));
    console.log(JSON.stringify({ load: r, watch: w, serverCpuSeconds: cpu }));
    for (const c of roleChanges) console.log(c);
    if (values['no-write']) return;
    const args = process.argv.slice(2).join(' ');
    const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
    const verdict = w.termChanges === 0 && w.leaderChanges === 0 ? 'none (passed)' : `${w.termChanges} term changes, ${w.leaderChanges} leader changes (FAILED)`;
    writeSection('soak-bench', [
      '## No false failover: a three-member pulsekeeper ensemble under full load',
      '',
      `Command: \`npm run bench:soak${args ? ' -- ' + args : ''}\` (${runContext()}).`,
      `Three members on 127.0.0.1 with the defaults (heartbeatIntervalMs 50, electionTimeoutMs 300, forceSync=yes) for ${MINUTES} minutes under`,
      `a closed-loop load: ${SESSIONS} sessions spread over the members, ${WINDOW} requests in flight each, ${WRITE_PERCENT}% setData and the rest getData,`,
      "on the same 2 cores. Every member's mntr is read once a second; a change of pk_term or pk_leader at any member is a leader change.",
      '',
      '| minutes | load ops/s | p50 ms | p99 ms | p999 ms | errors | server CPU s | mntr reads | unanswered | term changes | leader changes | max heartbeat age ms | max follower lag | run-queue wait mean / max | verdict |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
      `| ${MINUTES} | ${r.opsPerSec.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.p999.toFixed(1)} | ${r.errors} | ${cpu.toFixed(0)} | ${w.samples} | ${w.unanswered} | ${w.termChanges} | ${w.leaderChanges} | ${w.maxHeartbeatAgeMs} | ${w.maxLag} | ${pct(w.meanRunQueueWait)} / ${pct(w.maxRunQueueWait)} | ${verdict} |`,
      '',
      'Term and leader changes count every change any member showed between two samples. Max heartbeat age is the largest time since',
      'the leader last heard from a follower that the leader reported in a sample (pk_peer_N_heartbeat_age_ms); a follower stands for',
      "election after electionTimeoutMs without hearing from the leader. Run-queue wait is the share of each second a member's main",
      'thread was ready to run but waited for a CPU (/proc/PID/schedstat): how starved of CPU the members were.',
      ...(roleChanges.length ? ['', 'Role changes the members logged (UTC):', '', ...roleChanges.map((c) => `- ${c}`)] : []),
    ]);
  } finally {
    await e.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
