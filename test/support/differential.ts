/**
 * Runs generated operation sequences against two servers in lockstep and reports
 * the first difference. Results are normalised so that only what a client can
 * rely on is compared: zxids by their order of appearance, times by whether
 * ctime equals mtime, session ids by which session they are.
 */
import { OpCode } from '../../src/protocol/opcodes.js';
import { errorName } from '../../src/protocol/errors.js';
import type { RequestBody, Stat } from '../../src/protocol/records.js';
import { generate, SESSIONS, type Step } from './generator.js';
import { RawClient, type Reply } from './raw-client.js';

const TIMEOUT = 30_000;

export class Target {
  clients: RawClient[] = [];
  /** Every session id this target handed out, in order (ephemeralOwner -> index). */
  sessionIds: bigint[] = [];
  private zxids = new Map<number, number>();
  private seen: number[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
  ) {}

  async open(): Promise<void> {
    for (let i = 0; i < SESSIONS; i++) this.clients.push(await this.newSession());
    this.seen = this.clients.map(() => 0);
  }

  async newSession(): Promise<RawClient> {
    const c = await RawClient.connect(this.port, { timeout: TIMEOUT });
    this.sessionIds.push(c.session.sessionId);
    return c;
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
      for (const [k, v] of Object.entries(o)) {
        // ZooKeeper keeps these in hash sets: their order means nothing.
        if (k === 'children' || k === 'ephemerals') out[k] = [...(v as string[])].sort();
        else if (k === 'clientInfo') out[k] = (v as { authScheme: string; user: string }[]).map((c) => `${c.authScheme}:${c.user}`).sort();
        else out[k] = this.normalise(v);
      }
      return out;
    }
    return value;
  }

  reply(r: Reply): unknown {
    return { err: errorName(r.err), response: this.normalise(r.response), bodyBytes: r.bodyBytes };
  }

  /**
   * Sends every session a sync and returns the notifications that arrived before its
   * reply. A sync is ordered after every committed write (a ping is not, in
   * ZooKeeper), so the events of all writes so far are in.
   */
  async drainEvents(): Promise<unknown[]> {
    await Promise.all(this.clients.map((c) => c.request({ type: OpCode.sync, path: '/' }).catch(() => undefined)));
    return this.clients.map((c, i) => {
      const fresh = c.events.slice(this.seen[i]);
      this.seen[i] = c.events.length;
      return fresh.map((e) => `${e.type}:${e.state}:${e.path}`);
    });
  }

  async run(step: Step): Promise<unknown> {
    const i = step.session;
    if (step.kind === 'request') {
      const r = await this.clients[i].request(step.body);
      return { reply: this.reply(r), events: await this.drainEvents() };
    }
    const old = this.clients[i];
    if (step.kind === 'renew') {
      await old.close();
      this.clients[i] = await this.newSession();
      this.seen[i] = 0;
      // ZooKeeper deletes a closed session's ephemerals in hash-set order: only the set of events counts.
      const events = (await this.drainEvents()) as string[][];
      return { renewed: true, events: events.map((e) => [...e].sort()) };
    }
    const rel = old.lastZxid;
    await old.destroy();
    const c = await RawClient.connect(this.port, {
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
    await Promise.all(this.clients.map((c) => c.close().catch(() => undefined)));
  }
}

export interface Difference {
  seed: number;
  index: number;
  step: Step;
  a: unknown;
  b: unknown;
}

function describe(step: Step): string {
  return JSON.stringify(step, (_k, v) =>
    typeof v === 'bigint' ? v.toString() : v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString() : v,
  ).replace(/"type":(-?\d+)/, (_m, t) => `"type":"${opLabel(Number(t))}"`);
}

function opLabel(t: number): string {
  return Object.entries(OpCode).find(([, v]) => v === t)?.[0] ?? String(t);
}

/** Runs one seed against two fresh targets; returns the first difference or the op count. */
export async function runSeed(
  seed: number,
  count: number,
  makeTargets: () => Promise<[Target, Target]>,
): Promise<{ ops: number; difference?: Difference; text?: string }> {
  const [a, b] = await makeTargets();
  await a.open();
  await b.open();
  let index = 0;
  try {
    for (const step of generate(seed, count)) {
      const ra = await a.run(step).catch((e: Error) => ({ failed: e.message }));
      const rb = await b.run(step).catch((e: Error) => ({ failed: e.message }));
      const ja = JSON.stringify(ra);
      const jb = JSON.stringify(rb);
      if (ja !== jb) {
        const text =
          `seed ${seed} differs at step ${index}: ${describe(step)}\n` + `  ${a.name}: ${ja}\n` + `  ${b.name}: ${jb}\n` + `replay: DIFF_SEED=${seed}`;
        return { ops: index + 1, difference: { seed, index, step, a: ra, b: rb }, text };
      }
      index++;
    }
    return { ops: index };
  } finally {
    await a.close();
    await b.close();
  }
}
