/**
 * `npm run bench:recovery`: restart time of one member of a 3-member ensemble holding
 * 1 million znodes, pulsekeeper against Apache ZooKeeper 3.8; written to BENCHMARKS.md.
 *
 *   npm run bench:recovery -- [--znodes 1000000] [--trials 3] [--systems pulsekeeper,zookeeper] [--no-write]
 *
 * The state is built by creating the znodes through all members (1,000 parents of up to
 * 1,000 children each, 100-byte values); both take snapshots every snapCount (default
 * 100,000) transactions as they go, so a restart loads the newest snapshot and replays the
 * log after it. Then a follower is killed with SIGKILL and started again; the restart time
 * runs from the process start until srvr shows it serving and a read of the last znode
 * created succeeds on it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ErrorCode } from '../src/protocol/errors.js';
import { OpCode } from '../src/protocol/opcodes.js';
import { build, STARTERS, whileAllRunning, type BenchEnsemble, type SystemName } from './ensembles.js';
import { createFrame, frame, LoadSession } from './load.js';
import { fourLetter } from '../test/support/zookeeper.js';
import { rssBytes } from './servers.js';
import { quantile, writeSection, runContext } from './workloads.js';

const { values } = parseArgs({
  options: {
    znodes: { type: 'string', default: '1000000' },
    trials: { type: 'string', default: '3' },
    systems: { type: 'string', default: 'pulsekeeper,zookeeper' },
    'no-write': { type: 'boolean', default: false },
  },
});
const ZNODES = Number(values.znodes);
const TRIALS = Number(values.trials);
const CHILDREN = 1000;
const PARENTS = Math.ceil(ZNODES / CHILDREN);
const DATA = Buffer.alloc(100, 'x');
if (!(ZNODES >= 1 && ZNODES <= 10_000_000)) throw new Error('--znodes must be 1 to 10,000,000');

const pathOf = (n: number) => `/r/p${Math.floor(n / CHILDREN)}/n${n % CHILDREN}`;

interface Restart {
  servingMs: number;
  readMs: number;
  rssMiB: number;
}

interface SystemResult {
  system: SystemName;
  buildSeconds: number;
  buildErrors: number;
  /** The leader's epoch (ZooKeeper) or term (pulsekeeper) after the build: each election while building adds one. */
  epoch: number;
  diskMiB: number;
  restarts: Restart[];
  /** pulsekeeper's own account of loading its snapshot, from its log. */
  snapshotLoadMs: number[];
}

/**
 * Creates the znodes make(from) .. make(to - 1) in order through one session at a time, with
 * `window` in flight: when the connection ends (a member closes its clients in an election) the
 * unanswered creates go again through a new session on the next running member, and NODEEXISTS
 * then means the earlier attempt had succeeded.
 */
async function createRange(e: BenchEnsemble, make: (n: number) => Buffer, from: number, to: number, window: number, slot: number, deadline: number): Promise<number> {
  let next = from;
  let retry: number[] = [];
  let errors = 0;
  let attempt = 0;
  while (next < to || retry.length > 0) {
    if (performance.now() > deadline) throw new Error('building the state took too long');
    const ids = e.ids.filter((id) => e.isRunning(id));
    let s: LoadSession;
    try {
      s = await LoadSession.open(e.port(ids[(slot + attempt++) % ids.length]), 30_000);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const inFlight: number[] = [];
    await new Promise<void>((resolve) => {
      const pump = () => {
        s.socket.cork();
        while (inFlight.length < window && (retry.length > 0 || next < to)) {
          const n = retry.length > 0 ? retry.shift()! : next++;
          inFlight.push(n);
          s.send(make(n));
        }
        s.socket.uncork();
        if (inFlight.length === 0) resolve();
      };
      s.setHandler((_, err) => {
        inFlight.shift();
        if (err !== 0 && err !== ErrorCode.NODEEXISTS) errors++;
        pump();
      });
      s.socket.once('close', () => resolve());
      pump();
    });
    s.close();
    retry = inFlight.concat(retry);
  }
  return errors;
}

async function buildState(e: BenchEnsemble): Promise<{ seconds: number; errors: number }> {
  const started = performance.now();
  const deadline = started + 1800_000;
  const parents = (j: number) => (j === 0 ? createFrame('/r', Buffer.alloc(0)) : createFrame(`/r/p${j - 1}`, Buffer.alloc(0)));
  let errors = await createRange(e, parents, 0, PARENTS + 1, 64, 0, deadline);
  const SLOTS = 60;
  const per = Math.ceil(ZNODES / SLOTS);
  const counts = await Promise.all(
    Array.from({ length: SLOTS }, (_, k) => createRange(e, (n) => createFrame(pathOf(n), DATA), k * per, Math.min(ZNODES, (k + 1) * per), 32, k, deadline)),
  );
  errors += counts.reduce((a, b) => a + b, 0);
  return { seconds: (performance.now() - started) / 1000, errors };
}

/** Reads the last znode created until the member answers it. */
async function readUntilServed(port: number, deadline: number): Promise<void> {
  const get = frame({ type: OpCode.getData, path: pathOf(ZNODES - 1), watch: false });
  while (performance.now() < deadline) {
    try {
      const s = await LoadSession.open(port, 30_000);
      const err = await new Promise<number>((resolve) => {
        s.setHandler((_, e) => resolve(e));
        s.socket.once('close', () => resolve(-1));
        s.send(get);
      });
      s.close();
      if (err === 0) return;
    } catch {
      // not accepting sessions yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('restarted member did not serve the read in time');
}

async function restartFollower(e: BenchEnsemble): Promise<Restart> {
  const leader = await e.waitForLeader(120_000);
  const follower = e.ids.find((id) => id !== leader)!;
  await e.kill(follower);
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = performance.now();
  e.spawn(follower);
  await e.waitServing(follower, 600_000);
  const servingMs = performance.now() - t0;
  await readUntilServed(e.port(follower), t0 + 600_000);
  const readMs = performance.now() - t0;
  return { servingMs, readMs, rssMiB: rssBytes(e.pid(follower)!) / 2 ** 20 };
}

/** The zxid's epoch at the leader, from srvr: ZooKeeper's epoch, pulsekeeper's term. */
async function leaderEpoch(e: BenchEnsemble): Promise<number> {
  const leader = await e.waitForLeader(120_000);
  const text = await fourLetter(e.port(leader), 'srvr');
  const zxid = /Zxid: (0x[0-9a-f]+)/i.exec(text)?.[1];
  return zxid ? Number(BigInt(zxid) >> 32n) : NaN;
}

function diskMiB(dir: string): number {
  return Number(execFileSync('du', ['-sk', dir]).toString().split('\t')[0]) / 1024;
}

async function runSystem(system: SystemName): Promise<SystemResult> {
  // forceSync off while building only makes the build faster: what lands on disk is the same.
  const dir = execFileSync('mktemp', ['-d', '/tmp/recovery-bench-XXXXXX']).toString().trim();
  const e = await STARTERS[system]({ forceSync: false, dir, jvmArgs: ['-Xms1g', '-Xmx4g'] });
  try {
    const built = await whileAllRunning(e, buildState(e));
    const epoch = await leaderEpoch(e);
    console.log(`${system}: ${ZNODES} znodes in ${built.seconds.toFixed(0)} s (${built.errors} errors), epoch ${epoch} after`);
    // Let snapshots that the last writes started finish.
    await new Promise((r) => setTimeout(r, 15_000));
    const restarts: Restart[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const r = await restartFollower(e);
      restarts.push(r);
      console.log(`${system} restart ${i + 1}/${TRIALS}: serving after ${r.servingMs.toFixed(0)} ms, read after ${r.readMs.toFixed(0)} ms, RSS ${r.rssMiB.toFixed(0)} MiB`);
    }
    const snapshotLoadMs: number[] = [];
    if (system === 'pulsekeeper') {
      for (const id of e.ids) {
        for (const line of readFileSync(e.logFile(id)!, 'utf8').split('\n')) {
          if (line.includes('"snapshot loaded"')) snapshotLoadMs.push(JSON.parse(line).ms);
        }
      }
    }
    return { system, buildSeconds: built.seconds, buildErrors: built.errors, epoch, diskMiB: diskMiB(join(dir, 'm1')), restarts, snapshotLoadMs };
  } finally {
    await e.close();
    execFileSync('rm', ['-rf', dir]);
  }
}

async function main(): Promise<void> {
  build();
  const results: SystemResult[] = [];
  for (const system of values.systems!.split(',') as SystemName[]) results.push(await runSystem(system));
  const f = (v: number) => v.toFixed(0);
  const rows = results.map((r) => {
    const serving = r.restarts.map((x) => x.servingMs);
    const read = r.restarts.map((x) => x.readMs);
    return `| ${r.system} | ${f(r.buildSeconds)} | ${r.epoch - 1} | ${f(r.diskMiB)} | ${r.restarts.length} | ${f(quantile(serving, 0.5))} | ${f(quantile(read, 0.5))} | ${read.map(f).join(', ')} | ${f(quantile(r.restarts.map((x) => x.rssMiB), 0.5))} |`;
  });
  console.log(rows.join('\n'));
  if (values['no-write']) return;
  const pk = results.find((r) => r.system === 'pulsekeeper');
  const args = process.argv.slice(2).join(' ');
  writeSection('recovery-bench', [
    `## Recovery: restarting a member that holds ${ZNODES.toLocaleString('en')} znodes`,
    '',
    `Command: \`npm run bench:recovery${args ? ' -- ' + args : ''}\` (${runContext()}).`,
    `A three-member ensemble of each on 127.0.0.1 gets ${ZNODES.toLocaleString('en')} znodes created through all members (${PARENTS} parents of ${CHILDREN} children,`,
    '100-byte values; forceSync=no while building, which changes nothing of what is on disk). Both take snapshots every snapCount',
    "transactions (default 100,000) on their own, so a restart loads the newest snapshot and replays the log after it. ZooKeeper's members",
    'run with -Xmx4g. Then, idle, a follower is killed with SIGKILL and started again: "serving" is from the process start until srvr',
    'shows it as a follower (ZooKeeper: loaded and synced with the leader); "read" until a new session on it reads the last znode created.',
    "Each restart of a member is timed separately; disk is one member's data directory (snapshots and logs). Elections while",
    "building: the leader's epoch (ZooKeeper) or term (pulsekeeper) after the build, less one; the build's sessions move to another",
    'member and resend unanswered creates when a member closes their connection.',
    '',
    '| system | build s | elections while building | disk MiB | restarts | serving ms (median) | read ms (median) | read ms (each) | member RSS MiB after |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|',
    ...rows,
    ...(pk && pk.snapshotLoadMs.length ? ['', `pulsekeeper's log: loading the snapshot took ${pk.snapshotLoadMs.join(', ')} ms of those restarts.`] : []),
  ]);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
