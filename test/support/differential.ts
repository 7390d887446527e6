/**
 * Runs generated operation sequences against several servers in lockstep and reports
 * the first difference of each from the first (the reference). Results are
 * normalised so that only what a client can rely on is compared: zxids by their
 * order of appearance, times by whether ctime equals mtime, session ids by which
 * session they are.
 *
 * A target with several client ports (an ensemble) spreads its sessions over its
 * members, and a reconnecting session moves on to the next member. Every step ends
 * with a sync on every session and on every member, so the next step's reads, on
 * whichever member, follow all writes made so far (ZooKeeper promises no more to
 * sessions on different servers).
 */
import { OpCode } from '../../src/protocol/opcodes.js';
import { ErrorCode, errorName } from '../../src/protocol/errors.js';
import type { RequestBody, Stat } from '../../src/protocol/records.js';
import { generate, SESSIONS, type Step } from './generator.js';
import { RawClient, type Reply } from './raw-client.js';

const TIMEOUT = 30_000;
const CONFIG_NODE = '/zookeeper/config';

export interface TargetOptions {
  /**
   * The server is an ensemble member compared with a standalone reference. An
   * ensemble's leader writes the membership into /zookeeper/config (a setData of
   * version -1, as ZooKeeper's ensembles do), where a standalone ZooKeeper leaves the
   * node empty and unwritten: only that node's data and the Stat fields the write sets
   * (mzxid, mtime, version, dataLength) are shown as the unwritten node's, and the
   * write's zxid is kept out of the zxid ranks.
   */
  ensembleConfig?: boolean;
}

export class Target {
  clients: RawClient[] = [];
  /** Every session id this target handed out, in order (ephemeralOwner -> index). */
  sessionIds: bigint[] = [];
  private zxids = new Map<number, number>();
  private seen: number[] = [];
  /** Index into ports of each session's member. */
  private memberOf: number[] = [];
  /** One session per member that only syncs, so a member no session is on is caught up too. */
  private syncers: RawClient[] = [];
  /** Bytes of /zookeeper/config data in the reply being normalised. */
  private configBytes = 0;

  constructor(
    readonly name: string,
    readonly ports: number[],
    private readonly opts: TargetOptions = {},
  ) {
    if (ports.length === 0) throw new Error(`${name}: no client port`);
  }

  async open(): Promise<void> {
    for (let i = 0; i < SESSIONS; i++) {
      this.memberOf.push(i % this.ports.length);
      this.clients.push(await this.newSession(i));
    }
    this.seen = this.clients.map(() => 0);
    if (this.ports.length > 1) this.syncers = await Promise.all(this.ports.map((port) => RawClient.connect(port, { timeout: TIMEOUT })));
    // No step's watch may hear of the membership being written: every member has applied the write first.
    if (this.opts.ensembleConfig) await Promise.all((this.syncers.length > 0 ? this.syncers : this.clients.slice(0, 1)).map((c) => this.waitForConfig(c)));
  }

  private async waitForConfig(c: RawClient): Promise<void> {
    const deadline = performance.now() + 30_000;
    for (;;) {
      await c.request({ type: OpCode.sync, path: '/' });
      const r = await c.request({ type: OpCode.getData, path: CONFIG_NODE, watch: false });
      const stat = (r.response as { stat?: Stat } | undefined)?.stat;
      if (stat && this.isWrittenConfig(stat)) return;
      if (performance.now() > deadline) throw new Error(`${this.name}: /zookeeper/config was not written within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async newSession(i: number): Promise<RawClient> {
    const c = await RawClient.connect(this.ports[this.memberOf[i]], { timeout: TIMEOUT });
    this.sessionIds.push(c.session.sessionId);
    return c;
  }

  /** Only a node the server made itself has czxid 0, and of those only the written /zookeeper/config has version -1. */
  private isWrittenConfig(s: Stat): boolean {
    return this.opts.ensembleConfig === true && s.czxid === 0 && s.version === -1;
  }

  zxid(z: number): number | string {
    if (z <= 0) return z;
    let n = this.zxids.get(z);
    if (n === undefined) {
      // Rank among all zxids seen so far, so equal order means equal value.
      n = this.zxids.size + 1;
      this.zxids.set(z, n);
    }
    return n;
  }

  stat(s: Stat): Record<string, unknown> {
    if (this.isWrittenConfig(s)) s = { ...s, mzxid: 0, mtime: s.ctime, version: 0, dataLength: 0 };
    const owner = s.ephemeralOwner;
    const idx = this.sessionIds.indexOf(owner);
    return {
      czxid: this.zxid(s.czxid),
      mzxid: this.zxid(s.mzxid),
      pzxid: this.zxid(s.pzxid),
      mtimeIsCtime: s.mtime === s.ctime,
      version: s.version,
      cversion: s.cversion,
      aversion: s.aversion,
      ephemeralOwner: idx >= 0 ? `session${idx}` : owner === 0n ? 0 : '0x' + BigInt.asUintN(64, owner).toString(16),
      dataLength: s.dataLength,
      numChildren: s.numChildren,
    };
  }

  normalise(value: unknown): unknown {
    if (value === null || value === undefined) return value;
    if (Buffer.isBuffer(value)) return value.toString('utf8');
    if (Array.isArray(value)) return value.map((v) => this.normalise(v));
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'object') {
      const o = value as Record<string, unknown>;
      if ('czxid' in o && 'pzxid' in o) return this.stat(o as unknown as Stat);
      const out: Record<string, unknown> = {};
      const writtenConfig = Buffer.isBuffer(o.data) && o.stat !== undefined && this.isWrittenConfig(o.stat as Stat);
      for (const [k, v] of Object.entries(o)) {
        // ZooKeeper keeps these in hash sets: their order means nothing.
        if (k === 'children' || k === 'ephemerals') out[k] = [...(v as string[])].sort();
        else if (k === 'data' && writtenConfig) {
          this.configBytes += (v as Buffer).length;
          out[k] = '';
        }
        else if (k === 'clientInfo') out[k] = (v as { authScheme: string; user: string }[]).map((c) => `${c.authScheme}:${c.user}`).sort();
        else out[k] = this.normalise(v);
      }
      return out;
    }
    return value;
  }

  reply(r: Reply): unknown {
    this.configBytes = 0;
    const response = this.normalise(r.response);
    return { err: errorName(r.err), response, bodyBytes: r.bodyBytes - this.configBytes };
  }

  /**
   * Sends every session a sync and returns the notifications that arrived before its
   * reply. A sync is ordered after every committed write (a ping is not, in
   * ZooKeeper), so the events of all writes so far are in. Each session's events are
   * listed apart: their order within a session is defined, not across sessions, which
   * on an ensemble hear of a write when their own members apply it.
   */
  async drainEvents(): Promise<unknown[]> {
    await Promise.all([...this.clients, ...this.syncers].map((c) => c.request({ type: OpCode.sync, path: '/' }).catch(() => undefined)));
    return this.clients.map((c, i) => {
      const fresh = c.events.slice(this.seen[i]);
      this.seen[i] = c.events.length;
      return fresh.map((e) => `${e.type}:${e.state}:${e.path}`);
    });
  }

  /**
   * ZooKeeper answers checkWatches from its server's watch table, where a watch of any
   * connection on the path counts (containsWatcher). On an ensemble the answer then
   * depends on which sessions share the member; a standalone reference has them all on
   * one server, so its answer is OK when any member says OK. The sessions that only
   * sync, one per member, hold no watches of their own: they ask each member.
   */
  private async checkOnEveryMember(body: RequestBody): Promise<Reply | undefined> {
    const replies = await Promise.all(this.syncers.map((c) => c.request(body)));
    return replies.find((r) => r.err === ErrorCode.OK);
  }

  async run(step: Step): Promise<unknown> {
    const i = step.session;
    if (step.kind === 'request') {
      let r = await this.clients[i].request(step.body);
      if (step.body.type === OpCode.checkWatches && r.err === ErrorCode.NOWATCHER) r = (await this.checkOnEveryMember(step.body)) ?? r;
      return { reply: this.reply(r), events: await this.drainEvents() };
    }
    const old = this.clients[i];
    if (step.kind === 'renew') {
      await old.close();
      this.clients[i] = await this.newSession(i);
      this.seen[i] = 0;
      // ZooKeeper deletes a closed session's ephemerals in hash-set order: only the set of events counts.
      const events = (await this.drainEvents()) as string[][];
      return { renewed: true, events: events.map((e) => [...e].sort()) };
    }
    const rel = old.lastZxid;
    await old.destroy();
    // As a client whose server failed: on to the next member, which the last step's sync brought up to date.
    this.memberOf[i] = (this.memberOf[i] + 1) % this.ports.length;
    const c = await RawClient.connect(this.ports[this.memberOf[i]], {
      timeout: TIMEOUT,
      sessionId: old.session.sessionId,
      passwd: old.session.passwd,
      lastZxidSeen: rel,
    });
    c.lastZxid = rel;
    this.clients[i] = c;
    this.seen[i] = 0;
    const r = await c.request({ ...(step.setWatches as Extract<RequestBody, { type: 101 | 105 }>), relativeZxid: rel });
    return { reconnected: c.session.timeOut > 0, reply: this.reply(r), events: await this.drainEvents() };
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients, ...this.syncers].map((c) => c.close().catch(() => undefined)));
  }
}

export interface Difference {
  seed: number;
  index: number;
  step: Step;
  /** The target that answered differently from the reference. */
  target: string;
  expected: unknown;
  actual: unknown;
  text: string;
}

function describe(step: Step): string {
  return JSON.stringify(step, (_k, v) =>
    typeof v === 'bigint' ? v.toString() : v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString() : v,
  ).replace(/"type":(-?\d+)/, (_m, t) => `"type":"${opLabel(Number(t))}"`);
}

function opLabel(t: number): string {
  return Object.entries(OpCode).find(([, v]) => v === t)?.[0] ?? String(t);
}

/**
 * Runs one seed against fresh targets, the first being the reference, all taking each
 * step at once. A target that answers a step differently is left out from there on
 * (its state may have drifted); returns the steps run and each target's first difference.
 */
export async function runSeed(seed: number, count: number, makeTargets: () => Promise<Target[]>): Promise<{ ops: number; differences: Difference[] }> {
  const [reference, ...others] = await makeTargets();
  const differences: Difference[] = [];
  let index = 0;
  try {
    await Promise.all([reference, ...others].map((t) => t.open()));
    let agreeing = others;
    for (const step of generate(seed, count)) {
      const results = await Promise.all([reference, ...agreeing].map((t) => t.run(step).catch((e: Error) => ({ failed: e.message }))));
      const expected = JSON.stringify(results[0]);
      const still: Target[] = [];
      agreeing.forEach((t, k) => {
        const actual = JSON.stringify(results[k + 1]);
        if (actual === expected) return void still.push(t);
        const text =
          `seed ${seed} differs at step ${index}: ${describe(step)}\n` +
          `  ${reference.name}: ${expected}\n` +
          `  ${t.name}: ${actual}\n` +
          `replay: DIFF_SEED=${seed}`;
        differences.push({ seed, index, step, target: t.name, expected: results[0], actual: results[k + 1], text });
      });
      agreeing = still;
      index++;
      if (agreeing.length === 0) break;
    }
    return { ops: index, differences };
  } finally {
    await Promise.all([reference, ...others].map((t) => t.close()));
  }
}
