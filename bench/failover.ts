/**
 * `npm run bench:failover`: SIGKILL the leader of a 3-member ensemble under load and
 * measure the time from the kill until a write is acknowledged again, for pulsekeeper
 * with its defaults and Apache ZooKeeper 3.8 with its shipped defaults; written to BENCHMARKS.md.
 *
 *   npm run bench:failover -- [--trials 20] [--systems pulsekeeper,zookeeper]
 *     [--sessions 24] [--window 4] [--write-percent 50] [--quick] [--no-write]
 *
 * Each trial: wait for a leader and settle under load; one write probe on each surviving
 * member writes continuously (one write at a time, reconnecting and reattaching its session
 * as needed); SIGKILL the leader; the failover time ends at the first write that was sent
 * after the kill and is acknowledged with a zxid of a newer epoch (ZooKeeper's epoch, pulsekeeper's
 * term), at whichever probe comes first. Then the killed member is restarted and rejoins.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { FrameDecoder } from '../src/protocol/frame.js';
import { JuteReader } from '../src/protocol/jute.js';
import { OpCode, Xid } from '../src/protocol/opcodes.js';
import { encodeConnectRequest, readConnectResponse, readReplyHeader } from '../src/protocol/records.js';
import { build, STARTERS, type BenchEnsemble, type SystemName } from './ensembles.js';
import { createFrame, frame, LoadSession } from './load.js';
import { SteadyLoad, type SteadyLoadReport } from './steady-load.js';
import { quantile, writeSection, runContext } from './workloads.js';

const { values } = parseArgs({
  options: {
    trials: { type: 'string' },
    systems: { type: 'string', default: 'pulsekeeper,zookeeper' },
    sessions: { type: 'string', default: '24' },
    window: { type: 'string', default: '4' },
    'write-percent': { type: 'string', default: '50' },
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
  },
});
const TRIALS = Number(values.trials ?? (values.quick ? 3 : 20));
const SESSIONS = Number(values.sessions);
const WINDOW = Number(values.window);
const WRITE_PERCENT = Number(values['write-percent']);
/** A trial that sees no write within this long counts as failed. */
const TRIAL_TIMEOUT_MS = 60_000;
/** Load runs this long before each kill. */
const SETTLE_MS = 2_000;
/** Pause between a probe's failed attempt and the next: the resolution of the measurement. */
const RETRY_MS = 5;
const PROBE_SESSION_TIMEOUT_MS = 15_000;

const epochOf = (zxid: number) => Math.floor(zxid / 2 ** 32);

/**
 * A client that writes one setData after another to one member, reconnecting with the same
 * session (or a new one if it expired) whenever the connection ends; it reports every
 * acknowledged write with its send time and zxid.
 */
class WriteProbe {
  private socket: Socket | undefined;
  private decoder = new FrameDecoder(1024 * 1024);
  private sessionId = 0n;
  private passwd: Buffer = Buffer.alloc(16);
  private lastZxid = 0;
  private connecting = false;
  private sentAt = 0;
  private stopped = false;
  private readonly write: Buffer;
  reconnects = 0;

  constructor(
    private readonly port: number,
    path: string,
    private readonly onAck: (sentAt: number, zxid: number) => void,
  ) {
    this.write = frame({ type: OpCode.setData, path, data: Buffer.from('probe'), version: -1 });
  }

  start(): void {
    this.open();
  }

  private open(): void {
    if (this.stopped) return;
    const socket = connect({ host: '127.0.0.1', port: this.port, noDelay: true });
    this.socket = socket;
    this.decoder = new FrameDecoder(1024 * 1024);
    this.connecting = true;
    socket.on('connect', () =>
      socket.write(
        encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: this.lastZxid, timeOut: PROBE_SESSION_TIMEOUT_MS, sessionId: this.sessionId, passwd: this.passwd, readOnly: false }),
      ),
    );
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket !== socket || this.stopped) return;
      this.reconnects++;
      setTimeout(() => this.open(), RETRY_MS);
    });
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    for (const f of this.decoder.push(chunk)) {
      const r = new JuteReader(f);
      if (this.connecting) {
        const res = readConnectResponse(r);
        this.connecting = false;
        if (res.timeOut <= 0) {
          // The session expired: the next connection asks for a new one.
          this.sessionId = 0n;
          this.passwd = Buffer.alloc(16);
          this.socket?.destroy();
          continue;
        }
        this.sessionId = res.sessionId;
        this.passwd = res.passwd;
        this.send();
        continue;
      }
      const h = readReplyHeader(r);
      if (h.xid === Xid.notification || h.xid === Xid.ping) continue;
      if (h.zxid > this.lastZxid) this.lastZxid = h.zxid;
      if (h.err === 0) {
        this.onAck(this.sentAt, h.zxid);
        this.send();
      } else {
        setTimeout(() => this.send(), RETRY_MS);
      }
    }
  }

  private send(): void {
    if (this.stopped || !this.socket || this.socket.destroyed || this.connecting) return;
    this.sentAt = performance.now();
    this.socket.write(this.write);
  }

  stop(): void {
    this.stopped = true;
    this.socket?.destroy();
  }
}

interface Trial {
  ms: number | undefined;
  killed: number;
  newLeader: number | undefined;
  probeReconnects: number;
}

interface SystemResult {
  system: SystemName;
  trials: Trial[];
  load: SteadyLoadReport;
  settings: string;
}

async function createProbeNodes(e: BenchEnsemble): Promise<void> {
  const s = await LoadSession.open(e.port(e.ids[0]), 30_000);
  const frames = [createFrame('/probe', Buffer.alloc(0)), ...e.ids.map((id) => createFrame(`/probe/m${id}`, Buffer.alloc(0)))];
  await new Promise<void>((resolve) => {
    let n = 0;
    s.setHandler(() => {
      if (++n === frames.length) resolve();
    });
    for (const f of frames) s.send(f);
  });
  s.close();
}

async function trial(e: BenchEnsemble): Promise<Trial> {
  const leader = await e.waitForLeader(60_000);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const survivors = e.ids.filter((id) => id !== leader);
  let epoch0 = 0;
  let killedAt = Infinity;
  let firstAck: number | undefined;
  let resolveAck!: () => void;
  const acked = new Promise<void>((r) => (resolveAck = r));
  const probes = survivors.map(
    (id) =>
      new WriteProbe(e.port(id), `/probe/m${id}`, (sentAt, zxid) => {
        // The epoch is fixed at the kill: a write sent just before it may still be acknowledged in the new epoch
        // (a member proposes its writes again after a leader change), and it must not count either way.
        if (killedAt === Infinity) {
          epoch0 = Math.max(epoch0, epochOf(zxid));
        } else if (sentAt >= killedAt && epochOf(zxid) > epoch0 && firstAck === undefined) {
          firstAck = performance.now();
          resolveAck();
        }
      }),
  );
  probes.forEach((p) => p.start());
  // Let the probes see the current epoch before the kill.
  const seenDeadline = performance.now() + 30_000;
  while (epoch0 === 0 && performance.now() < seenDeadline) await new Promise((r) => setTimeout(r, 20));
  if (epoch0 === 0) throw new Error('the probes saw no acknowledged write before the kill');
  killedAt = performance.now();
  await e.kill(leader);
  const timeout = new Promise<void>((r) => setTimeout(r, TRIAL_TIMEOUT_MS).unref());
  await Promise.race([acked, timeout]);
  const ms = firstAck === undefined ? undefined : firstAck - killedAt;
  probes.forEach((p) => p.stop());
  let newLeader: number | undefined;
  try {
    newLeader = await e.waitForLeader(60_000);
  } catch {
    newLeader = undefined;
  }
  // Bring the killed member back so the next trial starts from a full ensemble.
  e.spawn(leader);
  await e.waitServing(leader, 120_000);
  return { ms, killed: leader, newLeader, probeReconnects: probes.reduce((n, p) => n + p.reconnects, 0) };
}

async function runSystem(system: SystemName): Promise<SystemResult> {
  const e = await STARTERS[system]({ forceSync: true });
  try {
    await createProbeNodes(e);
    const load = new SteadyLoad(e, { sessions: SESSIONS, window: WINDOW, writePercent: WRITE_PERCENT });
    await load.start();
    const trials: Trial[] = [];
    let report: SteadyLoadReport;
    try {
      for (let i = 0; i < TRIALS; i++) {
        const t = await trial(e);
        trials.push(t);
        console.log(`${system} trial ${i + 1}/${TRIALS}: killed leader ${t.killed}, ${t.ms === undefined ? 'no write within 60 s' : `${t.ms.toFixed(0)} ms`} (new leader ${t.newLeader}, probe reconnects ${t.probeReconnects})`);
      }
    } finally {
      report = await load.stop();
    }
    const settings = system === 'pulsekeeper' ? 'defaults: heartbeatIntervalMs 50, electionTimeoutMs 300' : 'shipped defaults: tickTime 2000, initLimit 10, syncLimit 5';
    return { system, trials, load: report, settings };
  } finally {
    await e.close();
  }
}

function summary(r: SystemResult): string {
  const ok = r.trials.map((t) => t.ms).filter((ms): ms is number => ms !== undefined);
  const f = (v: number) => (Number.isNaN(v) ? '–' : v.toFixed(0));
  const failed = r.trials.length - ok.length;
  return `| ${r.system} | ${r.settings} | ${r.trials.length} | ${f(quantile(ok, 0.5))} | ${f(quantile(ok, 0.99))} | ${f(Math.min(...ok))} | ${f(Math.max(...ok))} | ${failed} | ${r.load.opsPerSec.toFixed(0)} | ${r.load.reconnects} |`;
}

async function main(): Promise<void> {
  build();
  const results: SystemResult[] = [];
  for (const system of values.systems!.split(',') as SystemName[]) {
    const r = await runSystem(system);
    results.push(r);
    console.log(summary(r));
  }
  if (values['no-write']) return;
  const args = process.argv.slice(2).join(' ');
  writeSection('failover-bench', [
    '## Failover: SIGKILL the leader of a three-member ensemble under load',
    '',
    `Command: \`npm run bench:failover${args ? ' -- ' + args : ''}\` (${runContext()}).`,
    'Three members of each on 127.0.0.1, forceSync=yes. During every trial a background load runs: ' +
      `${SESSIONS} sessions spread over the members, ${WINDOW} requests in flight each, ${WRITE_PERCENT}% setData and the rest getData;`,
    'a session whose connection ends opens a new one on another running member. After 2 s of load the leader is killed with',
    'SIGKILL. One write probe per surviving member writes one setData after another, reconnecting (and reattaching its session)',
    `${RETRY_MS} ms after any failure. Failover time: from the kill to the first acknowledged write that was sent after the kill and carries`,
    "a zxid of a newer epoch (ZooKeeper's epoch, pulsekeeper's term), at whichever probe is first. The killed member is then",
    'restarted and rejoins before the next trial. p99 of 20 trials is their maximum. Load ops/s is the mean over the whole run,',
    'elections and restarts included.',
    '',
    '| system | settings | trials | median ms | p99 ms | min ms | max ms | no write in 60 s | load ops/s | load reconnects |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(summary),
    '',
    'Every trial (ms):',
    '',
    ...results.map((r) => `- ${r.system}: ${r.trials.map((t) => (t.ms === undefined ? 'none' : t.ms.toFixed(0))).join(', ')}`),
  ]);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
