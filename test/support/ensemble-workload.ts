/**
 * Workloads for fault tests of an ensemble: a client that keeps one session across
 * members (reconnecting with session id and password, re-setting its watches), writers
 * that record every acknowledged create, and a register workload recorded as a history
 * for the linearizability checker.
 *
 * Every request ends one of three ways, and the recorders keep them apart:
 * - a reply: the outcome is known (an error reply means nothing happened);
 * - NotSent: no member took the connection, the request never left;
 * - OutcomeUnknown: the connection dropped (or the reply did not come in time) after the
 *   request was sent; it may have happened, now or later, or never.
 */
import { OpCode } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import type { DataResponse, RequestBody, StatResponse } from '../../src/protocol/records.js';
import { sleep } from './client-faults.js';
import { checkLinearizable, registerModel, type CheckResult, type Operation, type RegisterInput, type RegisterOutput } from './linearizability.js';
import type { Rng } from './random.js';
import { RawClient, type Notification, type Reply } from './raw-client.js';
import { TestEnsemble, type EnsembleOptions } from './ensemble.js';

export class OutcomeUnknown extends Error {}
export class NotSent extends Error {}
export class SessionExpired extends Error {}
/** The server answered with an error code: the request had no effect. */
export class Refused extends Error {
  constructor(readonly code: number) {
    super(`error ${code}`);
  }
}

export const OPEN_ACL = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

export interface EnsembleClientOptions {
  /** The members' client ports. */
  ports: number[];
  /** Index in `ports` of the member tried first. */
  prefer?: number;
  /** Session timeout asked for. */
  timeoutMs?: number;
  /** A reply not in by then: the connection is dropped and the outcome is unknown. */
  requestTimeoutMs?: number;
  /** How long to go on trying members before a request counts as not sent. */
  reconnectWithinMs?: number;
  /** Keep the session alive with pings while idle (and reconnect when the connection drops). */
  heartbeat?: boolean;
}

/** The watches a ZooKeeper client would re-set on reconnection. */
export interface WatchSet {
  data: Set<string>;
  exist: Set<string>;
  child: Set<string>;
  persistent: Set<string>;
  persistentRecursive: Set<string>;
}

/**
 * One session across the ensemble, over raw connections. A dropped connection is not
 * retried for the request it carried (its outcome is unknown); the next request
 * reconnects, to the member after the one that failed, with the session's id, password
 * and the last zxid seen, and re-sets the session's watches as of that zxid.
 */
export class EnsembleClient {
  sessionId = 0n;
  password: Buffer = Buffer.alloc(16);
  negotiatedTimeoutMs = 0;
  lastZxid = 0;
  /** Index in ports of the member connected to (or tried next). */
  private memberIndex: number;
  /** Connections made, the first one included. */
  connections = 0;
  readonly watches: WatchSet = { data: new Set(), exist: new Set(), child: new Set(), persistent: new Set(), persistentRecursive: new Set() };
  private conn: RawClient | undefined;
  private connecting: Promise<RawClient> | undefined;
  private readonly pastEvents: Notification[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly opts: Required<EnsembleClientOptions>;

  constructor(opts: EnsembleClientOptions) {
    this.opts = { prefer: 0, timeoutMs: 10_000, requestTimeoutMs: 15_000, reconnectWithinMs: 30_000, heartbeat: true, ...opts };
    this.memberIndex = this.opts.prefer % this.opts.ports.length;
  }

  /** Opens the session (on the preferred member, or the next that takes it). */
  static async open(opts: EnsembleClientOptions): Promise<EnsembleClient> {
    const c = new EnsembleClient(opts);
    await c.connect();
    return c;
  }

  /** The client port of the member connected to (or tried next). */
  get port(): number {
    return this.opts.ports[this.memberIndex];
  }

  /** Notifications received on every connection of the session, in order. */
  get events(): Notification[] {
    return [...this.pastEvents, ...(this.conn?.events ?? [])];
  }

  /** The current connection, or a new one: on the current member first, then the others in turn. */
  connect(): Promise<RawClient> {
    if (this.closed) return Promise.reject(new NotSent('client closed'));
    if (this.conn && !this.conn.closed) return Promise.resolve(this.conn);
    this.connecting ??= this.reconnect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async reconnect(): Promise<RawClient> {
    const deadline = performance.now() + this.opts.reconnectWithinMs;
    const n = this.opts.ports.length;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new NotSent('client closed');
      const port = this.opts.ports[this.memberIndex];
      const c = await connectWithin(port, {
        timeout: this.opts.timeoutMs,
        sessionId: this.sessionId,
        passwd: this.password,
        lastZxidSeen: this.lastZxid,
      }, 5000).catch(() => undefined);
      if (c && this.sessionId !== 0n && c.session.sessionId === 0n) {
        await c.destroy();
        throw new SessionExpired(`session 0x${this.sessionId.toString(16)} expired`);
      }
      if (c) {
        this.sessionId = c.session.sessionId;
        this.password = c.session.passwd;
        this.negotiatedTimeoutMs = c.session.timeOut;
        c.lastZxid = this.lastZxid;
        this.track(c);
        this.connections++;
        this.conn = c;
        if (this.opts.heartbeat && !this.heartbeatTimer) this.startHeartbeat();
        if (this.hasWatches()) {
          // Not awaited: the reply comes in order before any later request's.
          c.request({
            type: OpCode.setWatches2,
            relativeZxid: this.lastZxid,
            dataWatches: [...this.watches.data],
            existWatches: [...this.watches.exist],
            childWatches: [...this.watches.child],
            persistentWatches: [...this.watches.persistent],
            persistentRecursiveWatches: [...this.watches.persistentRecursive],
          }).catch(() => {});
        }
        return c;
      }
      this.memberIndex = (this.memberIndex + 1) % n;
      if (performance.now() > deadline) throw new NotSent(`no member took the session within ${this.opts.reconnectWithinMs} ms`);
      await sleep((attempt + 1) % n === 0 ? 200 : 20);
    }
  }

  private hasWatches(): boolean {
    return Object.values(this.watches).some((s: Set<string>) => s.size > 0);
  }

  /** Follows a connection: the zxid it saw, the one-shot watches its notifications used up, and its end. */
  private track(c: RawClient): void {
    let seen = 0;
    c.socket.on('data', () => {
      this.lastZxid = Math.max(this.lastZxid, c.lastZxid);
      for (; seen < c.events.length; seen++) {
        const ev = c.events[seen];
        if (ev.type === EVENT.NodeChildrenChanged || ev.type === EVENT.NodeDeleted) this.watches.child.delete(ev.path);
        if (ev.type !== EVENT.NodeChildrenChanged) {
          this.watches.data.delete(ev.path);
          this.watches.exist.delete(ev.path);
        }
      }
    });
    void c.whenClosed().then(() => {
      this.pastEvents.push(...c.events);
      if (this.conn === c) {
        this.conn = undefined;
        // The next attempt starts with the member after the one that dropped us.
        this.memberIndex = (this.memberIndex + 1) % this.opts.ports.length;
      }
    });
  }

  /**
   * Sends requests pipelined on one connection and waits for all replies. Throws NotSent if
   * no member took the session, OutcomeUnknown if the connection dropped before every reply.
   */
  async pipeline(bodies: RequestBody[], onSend?: () => void): Promise<Reply[]> {
    const c = await this.connect();
    onSend?.();
    const replies = bodies.map((b) => c.request(b));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void c.destroy();
        reject(new OutcomeUnknown(`no reply within ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
    });
    try {
      const got = await Promise.race([Promise.all(replies), timeout]);
      this.lastZxid = Math.max(this.lastZxid, c.lastZxid);
      bodies.forEach((b, i) => this.noteWatch(b, got[i]));
      return got;
    } catch (e) {
      if (e instanceof OutcomeUnknown) throw e;
      throw new OutcomeUnknown(`connection to port ${this.port} lost: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      for (const r of replies) r.catch(() => {});
    }
  }

  async request(body: RequestBody, onSend?: () => void): Promise<Reply> {
    return (await this.pipeline([body], onSend))[0];
  }

  private noteWatch(body: RequestBody, reply: Reply): void {
    if (!('watch' in body) || !body.watch) {
      if (body.type === OpCode.addWatch && reply.err === 0) (body.mode === 0 ? this.watches.persistent : this.watches.persistentRecursive).add(body.path);
      return;
    }
    if (body.type === OpCode.exists) (reply.err === 0 ? this.watches.data : this.watches.exist).add(body.path);
    else if (body.type === OpCode.getData && reply.err === 0) this.watches.data.add(body.path);
    else if ((body.type === OpCode.getChildren || body.type === OpCode.getChildren2) && reply.err === 0) this.watches.child.add(body.path);
  }

  private startHeartbeat(): void {
    const every = Math.max(100, Math.floor((this.negotiatedTimeoutMs || this.opts.timeoutMs) / 3));
    this.heartbeatTimer = setInterval(() => {
      // A ping that gets no answer drops the connection, as a client's read timeout does.
      this.request({ type: OpCode.ping }).catch(() => {});
    }, every);
  }

  /** Waits until at least n notifications have arrived over the session's connections. */
  async waitForEvents(n: number, ms: number): Promise<Notification[]> {
    const deadline = performance.now() + ms;
    while (this.events.length < n && performance.now() < deadline) await sleep(20);
    return this.events;
  }

  /** Ends the session with closeSession (a member that does not answer in time gets the connection dropped instead). */
  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    const c = this.conn;
    this.closed = true;
    if (!c) return;
    const timer = setTimeout(() => void c.destroy(), 5000);
    await c.close();
    clearTimeout(timer);
  }

  /** Vanishes without closing the session (a client that crashed): its session expires on the servers. */
  async crash(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    this.closed = true;
    await this.conn?.destroy();
  }
}

const EVENT = { NodeDeleted: 2, NodeChildrenChanged: 4 } as const;

/**
 * RawClient.connect with a deadline: a member that is stopped (SIGSTOP) accepts the TCP
 * connection in the kernel but never answers. The late connection, if any, is dropped.
 */
export async function connectWithin(port: number, opts: Parameters<typeof RawClient.connect>[1], ms: number): Promise<RawClient> {
  const attempt = RawClient.connect(port, opts);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ConnectResponse from port ${port} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } catch (e) {
    attempt.then((c) => c.destroy(), () => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- acknowledged creates

/** What the writers did: names whose create was acknowledged, or whose outcome is unknown. */
export interface WriteRecord {
  acked: Set<string>;
  unknown: Set<string>;
  /** Creates answered with an error (they did not happen), by error code. */
  refused: Map<number, number>;
  /** Creates never sent (no member took the session in time). */
  notSent: number;
}

export function emptyWriteRecord(): WriteRecord {
  return { acked: new Set(), unknown: new Set(), refused: new Map(), notSent: 0 };
}

/**
 * Compares what the writers were told with what a member has: every acknowledged name must
 * be there, and nothing may be there that was not attempted (acknowledged or unknown).
 */
export function compareWrites(record: WriteRecord, present: Iterable<string>): { lost: string[]; phantom: string[] } {
  const have = new Set(present);
  const lost = [...record.acked].filter((n) => !have.has(n));
  const phantom = [...have].filter((n) => !record.acked.has(n) && !record.unknown.has(n));
  return { lost, phantom };
}

export interface CreateLoadOptions {
  ports: number[];
  /** Parent znode (it must exist). */
  parent: string;
  /** One client each, spread over the members in turn. */
  writers: number;
  /** Creates in flight per writer. */
  depth?: number;
  /** Most creates per writer. */
  maxPerWriter?: number;
  timeoutMs?: number;
  /** Prefix of the created names, to tell loads apart. */
  tag?: string;
}

/**
 * Writers creating uniquely named children (`<tag>w<writer>-<n>`) through several members,
 * recording every outcome, until stopped or done. Each writer keeps `depth` creates in flight.
 */
export class CreateLoad {
  readonly record = emptyWriteRecord();
  private stopping = false;
  private readonly clients: EnsembleClient[] = [];
  private readonly done: Promise<void>[];
  /** Unexpected failures of the load itself (not outcomes of requests). */
  readonly errors: Error[] = [];

  constructor(private readonly opts: CreateLoadOptions) {
    this.done = Array.from({ length: opts.writers }, (_, w) => this.writer(w).catch((e: Error) => void this.errors.push(e)));
  }

  get acked(): number {
    return this.record.acked.size;
  }

  private async writer(w: number): Promise<void> {
    const { ports, parent, depth = 4, maxPerWriter = 5000, timeoutMs = 10_000, tag = '' } = this.opts;
    // Shared by the writer's `depth` loops; a new one after the session expired.
    let client = this.newClient(w, ports, timeoutMs);
    let n = 0;
    const one = async (): Promise<void> => {
      while (!this.stopping && n < maxPerWriter) {
        const name = `${tag}w${w}-${n++}`;
        try {
          const r = await client.request({ type: OpCode.create, path: `${parent}/${name}`, data: Buffer.from(name), acl: OPEN_ACL, flags: 0 });
          if (r.err === 0) this.record.acked.add(name);
          else this.record.refused.set(r.err, (this.record.refused.get(r.err) ?? 0) + 1);
        } catch (e) {
          if (e instanceof OutcomeUnknown) this.record.unknown.add(name);
          else if (e instanceof NotSent) this.record.notSent++;
          else if (e instanceof SessionExpired) client = this.newClient(w, ports, timeoutMs);
          else throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: depth }, one));
  }

  private newClient(w: number, ports: number[], timeoutMs: number): EnsembleClient {
    const c = new EnsembleClient({ ports, prefer: w, timeoutMs });
    this.clients.push(c);
    return c;
  }

  /** Stops sending, waits for the creates in flight, closes the sessions. */
  async stop(): Promise<WriteRecord> {
    this.stopping = true;
    await Promise.all(this.done);
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
    if (this.errors.length) throw this.errors[0];
    return this.record;
  }
}

/** Waits until the load has `n` more acknowledged creates than it had when called. */
export async function moreAcked(load: CreateLoad, n: number, ms: number, what: string): Promise<void> {
  const target = load.acked + n;
  const deadline = performance.now() + ms;
  while (load.acked < target) {
    if (load.errors.length) throw load.errors[0];
    if (performance.now() > deadline) throw new Error(`${what}: ${load.acked - (target - n)} of ${n} more creates acknowledged within ${ms} ms`);
    await sleep(20);
  }
}

/**
 * A member's view, read through a fresh session on it alone after a sync: the children of
 * `parent` (so as of everything the ensemble had committed when the sync was answered).
 */
export async function childrenOn(port: number, parent: string, ms = 30_000): Promise<string[]> {
  const deadline = performance.now() + ms;
  for (;;) {
    const client = new EnsembleClient({ ports: [port], heartbeat: false, reconnectWithinMs: 2000, requestTimeoutMs: 10_000 });
    try {
      const [, r] = await client.pipeline([
        { type: OpCode.sync, path: parent },
        { type: OpCode.getChildren, path: parent, watch: false },
      ]);
      if (r.err !== 0) throw new Error(`getChildren ${parent} on port ${port}: error ${r.err}`);
      return (r.response as { children: string[] }).children;
    } catch (e) {
      if (!(e instanceof NotSent || e instanceof OutcomeUnknown) || performance.now() > deadline) throw e;
      await sleep(100);
    } finally {
      await client.close().catch(() => {});
    }
  }
}

/** Creates a znode through any member (retrying while the ensemble settles); NODEEXISTS counts as done. */
export async function ensureNode(ports: number[], path: string, data = ''): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const client = new EnsembleClient({ ports, heartbeat: false });
    try {
      const r = await client.request({ type: OpCode.create, path, data: Buffer.from(data), acl: OPEN_ACL, flags: 0 });
      if (r.err === 0 || r.err === ErrorCode.NODEEXISTS) return;
      throw new Error(`create ${path}: error ${r.err}`);
    } catch (e) {
      if (!(e instanceof NotSent || e instanceof OutcomeUnknown) || performance.now() > deadline) throw e;
      await sleep(100);
    } finally {
      await client.close().catch(() => {});
    }
  }
}

// ---------------------------------------------------------------- registers

/**
 * A register per key. Each operation calls `sent()` just before its request leaves (the call
 * time of the history); it throws NotSent, OutcomeUnknown or Refused as EnsembleClient does.
 */
export interface RegisterStore {
  read(key: string, sent: () => void): Promise<RegisterOutput>;
  write(key: string, value: string, sent: () => void): Promise<RegisterOutput>;
  cas(key: string, expectedVersion: number, value: string, sent: () => void): Promise<RegisterOutput>;
}

/** Registers on znodes: read = sync + getData on one connection, write = setData version -1, cas = setData with a version. */
export class ZnodeRegisters implements RegisterStore {
  constructor(readonly client: EnsembleClient) {}

  async read(key: string, sent: () => void): Promise<RegisterOutput> {
    const [s, g] = await this.client.pipeline([{ type: OpCode.sync, path: key }, { type: OpCode.getData, path: key, watch: false }], sent);
    if (s.err !== 0) throw new Refused(s.err);
    if (g.err !== 0) throw new Refused(g.err);
    const r = g.response as DataResponse;
    return { kind: 'read', value: r.data?.toString() ?? '', version: r.stat.version };
  }

  write(key: string, value: string, sent: () => void): Promise<RegisterOutput> {
    return this.set(key, value, -1, sent);
  }

  cas(key: string, expectedVersion: number, value: string, sent: () => void): Promise<RegisterOutput> {
    return this.set(key, value, expectedVersion, sent);
  }

  private async set(key: string, value: string, version: number, sent: () => void): Promise<RegisterOutput> {
    const r = await this.client.request({ type: OpCode.setData, path: key, data: Buffer.from(value), version }, sent);
    if (r.err === ErrorCode.BADVERSION && version >= 0) return { kind: 'badversion' };
    if (r.err !== 0) throw new Refused(r.err);
    return { kind: 'ok', version: (r.response as StatResponse).stat.version };
  }
}

export type RegisterOperation = Operation<RegisterInput, RegisterOutput>;

/** Records register operations as a history: known outcomes, unknown ones (no return), and what never happened (left out). */
export class RegisterHistory {
  readonly operations: RegisterOperation[] = [];
  readonly counts = { ok: 0, unknown: 0, notSent: 0, refused: new Map<number, number>() };
  private readonly start = performance.now();

  async run(client: number | string, key: string, input: RegisterInput, exec: (sent: () => void) => Promise<RegisterOutput>): Promise<RegisterOutput | undefined> {
    let call = -1;
    const sent = () => (call = performance.now() - this.start);
    try {
      const output = await exec(sent);
      this.operations.push({ client, key, input, call, return: performance.now() - this.start, output });
      this.counts.ok++;
      return output;
    } catch (e) {
      if (e instanceof OutcomeUnknown) {
        this.counts.unknown++;
        // A read that never returned tells nothing: only writes may have taken effect.
        if (input.kind !== 'read') this.operations.push({ client, key, input, call });
      } else if (e instanceof NotSent) this.counts.notSent++;
      else if (e instanceof Refused) this.counts.refused.set(e.code, (this.counts.refused.get(e.code) ?? 0) + 1);
      else throw e;
      return undefined;
    }
  }

  check(initialValue: string, timeLimitMs = 60_000): CheckResult {
    return checkLinearizable(this.operations, registerModel(initialValue), { timeLimitMs });
  }
}

export interface RegisterClientOptions {
  id: number;
  keys: string[];
  rng: Rng;
  history: RegisterHistory;
  /** A new store after the session expired (or for the first time). */
  store: () => Promise<RegisterStore>;
  stop: () => boolean;
  maxOps: number;
}

/**
 * One client of the register workload: reads, writes and compare-and-sets on random keys,
 * each write with a value no other operation writes; a cas expects the version this client
 * last saw of the key, so that many succeed.
 */
export async function runRegisterClient(o: RegisterClientOptions): Promise<void> {
  const seen = new Map<string, number>();
  let store: RegisterStore | undefined;
  for (let n = 0; n < o.maxOps && !o.stop(); n++) {
    const key = o.rng.pick(o.keys);
    const value = `c${o.id}-${n}`;
    const kind = o.rng.weighted([[4, 'read'], [3, 'write'], [3, 'cas']] as const);
    const input: RegisterInput = kind === 'read' ? { kind } : kind === 'write' ? { kind, value } : { kind, value, expectedVersion: seen.get(key) ?? 0 };
    try {
      store ??= await o.store();
      const s = store;
      const out = await o.history.run(o.id, key, input, (sent) =>
        input.kind === 'read' ? s.read(key, sent) : input.kind === 'write' ? s.write(key, value, sent) : s.cas(key, input.expectedVersion, value, sent),
      );
      if (out?.kind === 'read') seen.set(key, out.version);
      else if (out?.kind === 'ok' && out.version !== undefined) seen.set(key, out.version);
    } catch (e) {
      if (!(e instanceof SessionExpired || e instanceof NotSent)) throw e;
      store = undefined;
      await sleep(50);
    }
  }
}

// ---------------------------------------------------------------- running an ensemble in a test

/** Starts an ensemble, runs `body`, prints the members' logs if it fails, and always stops the members. */
export async function withEnsemble<T>(opts: EnsembleOptions, body: (e: TestEnsemble) => Promise<T>): Promise<T> {
  const e = await TestEnsemble.start({ keepLogs: true, ...opts });
  try {
    return await body(e);
  } catch (err) {
    console.error(`member logs (tail):\n${e.logs()}`);
    throw err;
  } finally {
    await e.close();
  }
}

/** The client ports of the given members (all by default), in id order. */
export function clientPorts(e: TestEnsemble, ids = [...e.members.keys()]): number[] {
  return ids.map((id) => e.member(id).clientPort);
}

/** Waits until a member's srvr Mode is one of `modes` (undefined: not answering); returns it. */
export async function waitForMode(e: TestEnsemble, id: number, modes: (string | undefined)[], ms = 30_000): Promise<string | undefined> {
  const deadline = performance.now() + ms;
  for (;;) {
    const m = await e.mode(id);
    if (modes.includes(m)) return m;
    if (performance.now() > deadline) throw new Error(`member ${id} is ${m}, not ${modes.join(' or ')}, after ${ms} ms`);
    await sleep(50);
  }
}

/** Reads `parent`'s children on every running member and checks each against the record. */
export async function assertWritesOnEveryMember(e: TestEnsemble, parent: string, record: WriteRecord): Promise<Map<number, string[]>> {
  const seen = new Map<number, string[]>();
  for (const id of e.members.keys()) {
    if (!e.isRunning(id)) continue;
    const children = await childrenOn(e.member(id).clientPort, parent);
    const { lost, phantom } = compareWrites(record, children);
    if (lost.length || phantom.length) {
      throw new Error(
        `member ${id}: ${lost.length} acknowledged creates missing (${lost.slice(0, 10).join(' ')}), ` +
          `${phantom.length} never attempted present (${phantom.slice(0, 10).join(' ')}); ${children.length} children, ` +
          `${record.acked.size} acknowledged, ${record.unknown.size} unknown`,
      );
    }
    seen.set(id, [...children].sort());
  }
  const [first, ...rest] = [...seen.entries()];
  for (const [id, children] of rest) {
    if (children.join('\n') !== first[1].join('\n')) throw new Error(`members ${first[0]} and ${id} differ: ${first[1].length} and ${children.length} children`);
  }
  return seen;
}

export function describeRecord(r: WriteRecord): string {
  const refused = [...r.refused].map(([code, n]) => `${n} x error ${code}`).join(', ');
  return `${r.acked.size} creates acknowledged, ${r.unknown.size} unknown, ${r.notSent} not sent${refused ? `, refused: ${refused}` : ''}`;
}

/** One record of several (their names must not overlap). */
export function mergeRecords(...records: WriteRecord[]): WriteRecord {
  const out = emptyWriteRecord();
  for (const r of records) {
    for (const n of r.acked) out.acked.add(n);
    for (const n of r.unknown) out.unknown.add(n);
    for (const [code, n] of r.refused) out.refused.set(code, (out.refused.get(code) ?? 0) + n);
    out.notSent += r.notSent;
  }
  return out;
}

/**
 * Sends `count` creates at once on one client (`<parent>/<tag>-<i>`), recording each outcome;
 * `done` resolves when all are decided, and closes the client.
 */
export function createBatch(client: EnsembleClient, parent: string, tag: string, count: number): { record: WriteRecord; done: Promise<void> } {
  const record = emptyWriteRecord();
  const done = Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const name = `${tag}-${i}`;
      try {
        const r = await client.request({ type: OpCode.create, path: `${parent}/${name}`, data: Buffer.from(name), acl: OPEN_ACL, flags: 0 });
        if (r.err === 0) record.acked.add(name);
        else record.refused.set(r.err, (record.refused.get(r.err) ?? 0) + 1);
      } catch (e) {
        if (e instanceof OutcomeUnknown) record.unknown.add(name);
        else if (e instanceof NotSent) record.notSent++;
        else throw e;
      }
    }),
  ).then(() => client.close().catch(() => {}));
  return { record, done };
}
