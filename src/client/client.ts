/**
 * A typed, promise-based ZooKeeper client for pulsekeeper and Apache ZooKeeper.
 *
 * Heartbeats: a ping when idle for a third of the negotiated timeout; the
 * connection is declared lost when nothing is heard for two thirds of it. The
 * client then reconnects to the next host (hosts are tried in random order),
 * reattaching the session by id and password, re-sending auth and re-registering
 * watches with setWatches. Requests in flight when a connection drops fail with
 * ConnectionLossError (nothing is retried behind the caller's back); requests
 * made while suspended wait for a connection up to requestTimeoutMs.
 *
 * States: connecting -> connected; on loss suspended; then reconnected (same
 * session) or expired (session gone: ephemerals lost, rebuild); closed by close().
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { ErrorCode } from '../protocol/errors.js';
import { FrameDecoder } from '../protocol/frame.js';
import { JuteReader } from '../protocol/jute.js';
import { AddWatchMode, CreateMode, EventType, isTTLMode, OpCode, Xid } from '../protocol/opcodes.js';
import {
  decodeResponseBody,
  encodeConnectRequest,
  encodeRequest,
  readConnectResponse,
  readReplyHeader,
  readWatcherEvent,
  type ACL,
  type ClientInfo,
  type MultiOp,
  type MultiResult,
  type RequestBody,
  type ResponseBody,
  type Stat,
} from '../protocol/records.js';
import { ConnectionLossError, errorFor, SessionExpiredError, ZooKeeperError } from './errors.js';

export type ConnectionState = 'connecting' | 'connected' | 'suspended' | 'reconnected' | 'expired' | 'closed';

export interface WatchEvent {
  type: 'created' | 'deleted' | 'dataChanged' | 'childrenChanged';
  path: string;
}
export type WatchListener = (event: WatchEvent) => void;

export interface ClientOptions {
  /** Requested session timeout; the server clamps it into its bounds. */
  sessionTimeoutMs?: number;
  /** How long a request made while disconnected waits for a connection. */
  requestTimeoutMs?: number;
  /** Identities to authenticate with, re-sent after every reconnect. */
  auth?: { scheme: string; auth: Buffer }[];
  /** Requests outstanding at once (further ones fail at once). */
  maxOutstanding?: number;
  random?: () => number;
}

export const OPEN_ACL_UNSAFE: ACL[] = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

export type Mode = 'persistent' | 'ephemeral' | 'persistent-sequential' | 'ephemeral-sequential' | 'container' | 'persistent-ttl' | 'persistent-sequential-ttl';
const MODES: Record<Mode, number> = {
  persistent: CreateMode.PERSISTENT,
  ephemeral: CreateMode.EPHEMERAL,
  'persistent-sequential': CreateMode.PERSISTENT_SEQUENTIAL,
  'ephemeral-sequential': CreateMode.EPHEMERAL_SEQUENTIAL,
  container: CreateMode.CONTAINER,
  'persistent-ttl': CreateMode.PERSISTENT_WITH_TTL,
  'persistent-sequential-ttl': CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
};

export interface CreateOptions {
  mode?: Mode;
  acl?: ACL[];
  /** For the TTL modes. */
  ttlMs?: number;
}

/** An operation of a transaction. */
export type TxOp =
  | { op: 'create'; path: string; data?: Buffer; mode?: Mode; acl?: ACL[] }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'setData'; path: string; data: Buffer; version?: number }
  | { op: 'check'; path: string; version: number };

const EVENT_NAMES: Record<number, WatchEvent['type']> = {
  [EventType.NodeCreated]: 'created',
  [EventType.NodeDeleted]: 'deleted',
  [EventType.NodeDataChanged]: 'dataChanged',
  [EventType.NodeChildrenChanged]: 'childrenChanged',
};

interface Pending {
  xid: number;
  type: number;
  path?: string;
  resolve: (r: { response?: ResponseBody; zxid: number }) => void;
  reject: (e: Error) => void;
  /** Allowed to fail with a code instead of rejecting (exists answers NONODE with null). */
  tolerate?: number;
}

interface Waiting {
  body: RequestBody;
  path?: string;
  tolerate?: number;
  resolve: Pending['resolve'];
  reject: Pending['reject'];
  deadline: NodeJS.Timeout;
}

export function parseConnectionString(s: string): { hosts: string[]; chroot: string } {
  const slash = s.indexOf('/');
  const chroot = slash >= 0 ? s.slice(slash).replace(/\/$/, '') : '';
  const hosts = (slash >= 0 ? s.slice(0, slash) : s).split(',').map((h) => h.trim()).filter(Boolean);
  if (hosts.length === 0) throw new Error(`no hosts in connection string "${s}"`);
  return { hosts, chroot: chroot === '/' ? '' : chroot };
}

export class PulseClient extends EventEmitter {
  private readonly hosts: string[];
  private readonly chroot: string;
  private hostIndex = 0;
  private socket: Socket | undefined;
  private decoder = new FrameDecoder(16 * 1024 * 1024);
  private readonly pending: Pending[] = [];
  private readonly waiting: Waiting[] = [];
  private xid = 1;
  private _state: ConnectionState = 'connecting';
  private handshaking = false;
  sessionId = 0n;
  private passwd: Buffer = Buffer.alloc(16);
  /** The negotiated session timeout. */
  sessionTimeoutMs: number;
  private lastZxid = 0;
  private lastHeard = 0;
  private lastSent = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly dataWatches = new Map<string, Set<WatchListener>>();
  private readonly existWatches = new Map<string, Set<WatchListener>>();
  private readonly childWatches = new Map<string, Set<WatchListener>>();
  private readonly persistent = new Map<string, Set<WatchListener>>();
  private readonly recursive = new Map<string, Set<WatchListener>>();
  private readonly opts: Required<Omit<ClientOptions, 'auth'>> & { auth: { scheme: string; auth: Buffer }[] };

  private constructor(connectionString: string, opts: ClientOptions) {
    super();
    const { hosts, chroot } = parseConnectionString(connectionString);
    const random = opts.random ?? Math.random;
    this.hosts = hosts.map((h) => ({ h, k: random() })).sort((a, b) => a.k - b.k).map((x) => x.h);
    this.chroot = chroot;
    this.opts = {
      sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? opts.sessionTimeoutMs ?? 30_000,
      auth: [...(opts.auth ?? [])],
      maxOutstanding: opts.maxOutstanding ?? 10_000,
      random,
    };
    this.sessionTimeoutMs = this.opts.sessionTimeoutMs;
  }

  /** Connects and resolves once a session is established. */
  static async connect(connectionString: string, opts: ClientOptions = {}): Promise<PulseClient> {
    const c = new PulseClient(connectionString, opts);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.close().catch(() => {});
        reject(new ConnectionLossError(undefined, `could not connect to ${connectionString}`));
      }, c.opts.sessionTimeoutMs);
      c.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
      c.dial();
    });
    return c;
  }

  get state(): ConnectionState {
    return this._state;
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
    this.emit(s);
  }

  // ---- connection -------------------------------------------------------------

  private dial(): void {
    if (this._state === 'closed' || this._state === 'expired') return;
    const host = this.hosts[this.hostIndex++ % this.hosts.length];
    const i = host.lastIndexOf(':');
    const sock = connect({ host: host.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(host.slice(i + 1)), noDelay: true });
    this.socket = sock;
    this.decoder = new FrameDecoder(16 * 1024 * 1024);
    this.handshaking = true;
    sock.on('connect', () => {
      sock.write(
        encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: this.lastZxid, timeOut: this.opts.sessionTimeoutMs, sessionId: this.sessionId, passwd: this.passwd, readOnly: false }),
      );
    });
    sock.on('data', (chunk) => this.onData(sock, chunk));
    sock.on('error', () => {});
    sock.on('close', () => this.onDisconnect(sock));
    // A host that does not answer the handshake in time is given up for the next.
    sock.setTimeout(Math.max(1000, (this.sessionTimeoutMs * 2) / 3), () => sock.destroy());
  }

  private onDisconnect(sock: Socket): void {
    if (sock !== this.socket) return;
    this.socket = undefined;
    clearInterval(this.heartbeat);
    for (const p of this.pending.splice(0)) p.reject(new ConnectionLossError(p.path));
    if (this._state === 'closed' || this._state === 'expired') return;
    if (this._state === 'connected' || this._state === 'reconnected') this.setState('suspended');
    setTimeout(() => this.dial(), this.hostIndex % this.hosts.length === 0 ? 100 + 200 * this.opts.random() : 0);
  }

  private onData(sock: Socket, chunk: Buffer): void {
    this.lastHeard = performance.now();
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch {
      sock.destroy();
      return;
    }
    for (const frame of frames) {
      const r = new JuteReader(frame);
      if (this.handshaking) {
        this.handshaking = false;
        this.onConnected(sock, readConnectResponse(r));
        continue;
      }
      const h = readReplyHeader(r);
      if (h.xid === Xid.notification) {
        this.onNotification(readWatcherEvent(r));
        continue;
      }
      if (h.xid === Xid.ping) continue;
      if (h.zxid > 0) this.lastZxid = Math.max(this.lastZxid, h.zxid);
      const p = this.pending.shift();
      if (!p || p.xid !== h.xid) {
        // Replies come in request order; anything else means client and server disagree.
        sock.destroy();
        return;
      }
      if (h.err !== 0 && h.err !== p.tolerate) {
        p.reject(errorFor(h.err, p.path));
        continue;
      }
      const response = h.err === 0 && r.remaining > 0 ? decodeResponseBody(p.type, r) : undefined;
      p.resolve({ response, zxid: h.zxid });
    }
  }

  private onConnected(sock: Socket, res: { timeOut: number; sessionId: bigint; passwd: Buffer }): void {
    sock.setTimeout(0);
    if (res.timeOut <= 0) {
      // The session is gone: its ephemerals and watches with it.
      this.setState('expired');
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.deadline);
        w.reject(new SessionExpiredError(w.path));
      }
      sock.destroy();
      return;
    }
    const first = this.sessionId === 0n;
    this.sessionId = res.sessionId;
    this.passwd = res.passwd;
    this.sessionTimeoutMs = res.timeOut;
    this.lastHeard = this.lastSent = performance.now();
    // Ping when idle for a third of the timeout; declare the connection lost after two thirds of silence.
    this.heartbeat = setInterval(() => {
      const now = performance.now();
      if (now - this.lastHeard > (this.sessionTimeoutMs * 2) / 3) sock.destroy();
      else if (now - this.lastSent >= this.sessionTimeoutMs / 3) this.write(sock, encodeRequest(Xid.ping, { type: OpCode.ping }));
    }, Math.max(10, this.sessionTimeoutMs / 10));
    this.heartbeat.unref();
    for (const a of this.opts.auth) {
      this.pending.push({ xid: Xid.auth, type: OpCode.auth, resolve: () => {}, reject: (e) => this.emit('authFailed', e) });
      this.write(sock, encodeRequest(Xid.auth, { type: OpCode.auth, authType: 0, scheme: a.scheme, auth: a.auth }));
    }
    if (!first) this.restoreWatches(sock);
    this.setState(first ? 'connected' : 'reconnected');
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.deadline);
      this.send(w.body, w.path, w.tolerate).then(w.resolve, w.reject);
    }
  }

  private restoreWatches(sock: Socket): void {
    const data = [...this.dataWatches.keys()].map((p) => this.full(p));
    const exist = [...this.existWatches.keys()].map((p) => this.full(p));
    const child = [...this.childWatches.keys()].map((p) => this.full(p));
    const pers = [...this.persistent.keys()].map((p) => this.full(p));
    const rec = [...this.recursive.keys()].map((p) => this.full(p));
    if (data.length + exist.length + child.length + pers.length + rec.length === 0) return;
    const type = pers.length + rec.length > 0 ? OpCode.setWatches2 : OpCode.setWatches;
    this.write(
      sock,
      encodeRequest(Xid.setWatches, {
        type,
        relativeZxid: this.lastZxid,
        dataWatches: data,
        existWatches: exist,
        childWatches: child,
        persistentWatches: pers,
        persistentRecursiveWatches: rec,
      }),
    );
    // Its reply (xid -8) is matched like a ping: skipped.
    this.pending.push({ xid: Xid.setWatches, type, resolve: () => {}, reject: () => {}, tolerate: undefined });
  }

  private write(sock: Socket, frame: Buffer): void {
    this.lastSent = performance.now();
    sock.write(frame);
  }

  /** Sends a request now if connected, else waits for a connection up to requestTimeoutMs. */
  private send(body: RequestBody, path?: string, tolerate?: number): Promise<{ response?: ResponseBody; zxid: number }> {
    return new Promise((resolve, reject) => {
      if (this._state === 'closed') return reject(new ConnectionLossError(path, 'client closed'));
      if (this._state === 'expired') return reject(new SessionExpiredError(path));
      if (this.pending.length + this.waiting.length >= this.opts.maxOutstanding) {
        return reject(new ZooKeeperError(ErrorCode.THROTTLEDOP, path, 'too many outstanding requests'));
      }
      const sock = this.socket;
      if (sock && !this.handshaking && (this._state === 'connected' || this._state === 'reconnected')) {
        const xid = this.xid++;
        this.pending.push({ xid, type: body.type, path, resolve, reject, tolerate });
        this.write(sock, encodeRequest(xid, body));
        return;
      }
      const w: Waiting = {
        body,
        path,
        tolerate,
        resolve,
        reject,
        deadline: setTimeout(() => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new ConnectionLossError(path, `no connection within ${this.opts.requestTimeoutMs} ms`));
        }, this.opts.requestTimeoutMs),
      };
      this.waiting.push(w);
    });
  }

  async close(): Promise<void> {
    if (this._state === 'closed') return;
    const sock = this.socket;
    if (sock && (this._state === 'connected' || this._state === 'reconnected')) {
      await Promise.race([this.send({ type: OpCode.closeSession }).catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
    }
    this.setState('closed');
    clearInterval(this.heartbeat);
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.deadline);
      w.reject(new ConnectionLossError(w.path, 'client closed'));
    }
    this.socket = undefined;
    sock?.destroy();
  }

  // ---- paths and watches ------------------------------------------------------

  private full(path: string): string {
    return this.chroot ? (path === '/' ? this.chroot : this.chroot + path) : path;
  }

  private local(path: string): string {
    if (!this.chroot) return path;
    if (path === this.chroot) return '/';
    return path.startsWith(this.chroot + '/') ? path.slice(this.chroot.length) : path;
  }

  private register(map: Map<string, Set<WatchListener>>, path: string, l: WatchListener): void {
    let set = map.get(path);
    if (!set) map.set(path, (set = new Set()));
    set.add(l);
  }

  private onNotification(ev: { type: number; path: string }): void {
    const path = this.local(ev.path);
    const type = EVENT_NAMES[ev.type];
    if (!type) return;
    const event: WatchEvent = { type, path };
    const fire = new Set<WatchListener>();
    const take = (map: Map<string, Set<WatchListener>>) => {
      for (const l of map.get(path) ?? []) fire.add(l);
      map.delete(path);
    };
    if (type === 'created' || type === 'dataChanged') {
      take(this.dataWatches);
      take(this.existWatches);
    } else if (type === 'childrenChanged') take(this.childWatches);
    else {
      take(this.dataWatches);
      take(this.existWatches);
      take(this.childWatches);
    }
    for (const l of this.persistent.get(path) ?? []) fire.add(l);
    if (type !== 'childrenChanged') {
      for (let p: string | undefined = path; p !== undefined; p = p === '/' ? undefined : p.slice(0, Math.max(1, p.lastIndexOf('/')))) {
        for (const l of this.recursive.get(p) ?? []) fire.add(l);
      }
    }
    for (const l of fire) l(event);
    this.emit('watch', event);
  }

  // ---- operations ---------------------------------------------------------------

  async create(path: string, data: Buffer = Buffer.alloc(0), opts: CreateOptions = {}): Promise<string> {
    return (await this.create2(path, data, opts)).path;
  }

  /** Creates a node and returns its actual path (sequential suffix included) and Stat. */
  async create2(path: string, data: Buffer = Buffer.alloc(0), opts: CreateOptions = {}): Promise<{ path: string; stat: Stat }> {
    const flags = MODES[opts.mode ?? 'persistent'];
    const acl = opts.acl ?? OPEN_ACL_UNSAFE;
    const full = this.full(path);
    const body: RequestBody = isTTLMode(flags)
      ? { type: OpCode.createTTL, path: full, data, acl, flags, ttl: opts.ttlMs ?? 0 }
      : { type: flags === CreateMode.CONTAINER ? OpCode.createContainer : OpCode.create2, path: full, data, acl, flags };
    const r = (await this.send(body, path)).response as { path: string; stat: Stat };
    return { path: this.local(r.path), stat: r.stat };
  }

  async delete(path: string, version = -1): Promise<void> {
    await this.send({ type: OpCode.delete, path: this.full(path), version }, path);
  }

  /** The node's Stat, or null if it does not exist. A watch fires on creation, change or deletion. */
  async exists(path: string, watch?: WatchListener): Promise<Stat | null> {
    const r = await this.send({ type: OpCode.exists, path: this.full(path), watch: !!watch }, path, ErrorCode.NONODE);
    const stat = (r.response as { stat: Stat } | undefined)?.stat ?? null;
    if (watch) this.register(stat ? this.dataWatches : this.existWatches, path, watch);
    return stat;
  }

  async getData(path: string, watch?: WatchListener): Promise<{ data: Buffer; stat: Stat }> {
    const r = (await this.send({ type: OpCode.getData, path: this.full(path), watch: !!watch }, path)).response as { data: Buffer | null; stat: Stat };
    if (watch) this.register(this.dataWatches, path, watch);
    return { data: Buffer.from(r.data ?? Buffer.alloc(0)), stat: r.stat };
  }

  async setData(path: string, data: Buffer, version = -1): Promise<Stat> {
    return ((await this.send({ type: OpCode.setData, path: this.full(path), data, version }, path)).response as { stat: Stat }).stat;
  }

  async getACL(path: string): Promise<{ acl: ACL[]; stat: Stat }> {
    return (await this.send({ type: OpCode.getACL, path: this.full(path) }, path)).response as { acl: ACL[]; stat: Stat };
  }

  async setACL(path: string, acl: ACL[], version = -1): Promise<Stat> {
    return ((await this.send({ type: OpCode.setACL, path: this.full(path), acl, version }, path)).response as { stat: Stat }).stat;
  }

  async getChildren(path: string, watch?: WatchListener): Promise<string[]> {
    return (await this.getChildren2(path, watch)).children;
  }

  async getChildren2(path: string, watch?: WatchListener): Promise<{ children: string[]; stat: Stat }> {
    const r = (await this.send({ type: OpCode.getChildren2, path: this.full(path), watch: !!watch }, path)).response as { children: string[]; stat: Stat };
    if (watch) this.register(this.childWatches, path, watch);
    return r;
  }

  async getAllChildrenNumber(path: string): Promise<number> {
    return ((await this.send({ type: OpCode.getAllChildrenNumber, path: this.full(path) }, path)).response as { totalNumber: number }).totalNumber;
  }

  async getEphemerals(prefix = '/'): Promise<string[]> {
    const r = (await this.send({ type: OpCode.getEphemerals, prefixPath: this.full(prefix) })).response as { ephemerals: string[] };
    return r.ephemerals.map((p) => this.local(p));
  }

  /** Makes the server this client talks to catch up with the leader before later reads. */
  async sync(path = '/'): Promise<void> {
    await this.send({ type: OpCode.sync, path: this.full(path) }, path);
  }

  /** Runs the operations atomically. A failure rejects with the first failing op's error and `results`. */
  async multi(ops: TxOp[]): Promise<MultiResult[]> {
    const body: MultiOp[] = ops.map((o) => {
      switch (o.op) {
        case 'create':
          return { type: OpCode.create, path: this.full(o.path), data: o.data ?? Buffer.alloc(0), acl: o.acl ?? OPEN_ACL_UNSAFE, flags: MODES[o.mode ?? 'persistent'] };
        case 'delete':
          return { type: OpCode.delete, path: this.full(o.path), version: o.version ?? -1 };
        case 'setData':
          return { type: OpCode.setData, path: this.full(o.path), data: o.data, version: o.version ?? -1 };
        case 'check':
          return { type: OpCode.check, path: this.full(o.path), version: o.version };
      }
    });
    const results = ((await this.send({ type: OpCode.multi, ops: body })).response as { results: MultiResult[] }).results;
    const failed = results.findIndex((r) => r.type === OpCode.error && r.err !== 0);
    if (failed >= 0) {
      const err = errorFor((results[failed] as { err: number }).err, ops[failed].path);
      Object.assign(err, { results, failedOp: failed });
      throw err;
    }
    return results.map((r) => ('path' in r ? { ...r, path: this.local(r.path) } : r));
  }

  /** Reads several nodes at once; each result is the data/children or an error code. */
  async multiRead(ops: ({ op: 'getData'; path: string } | { op: 'getChildren'; path: string })[]): Promise<MultiResult[]> {
    const body: MultiOp[] = ops.map((o) => ({ type: o.op === 'getData' ? OpCode.getData : OpCode.getChildren, path: this.full(o.path), watch: false }));
    return ((await this.send({ type: OpCode.multiRead, ops: body })).response as { results: MultiResult[] }).results;
  }

  /** A persistent watch (recursive: the whole subtree); returns a function that removes it. */
  async addWatch(path: string, listener: WatchListener, opts: { recursive?: boolean } = {}): Promise<() => Promise<void>> {
    const mode = opts.recursive ? AddWatchMode.PERSISTENT_RECURSIVE : AddWatchMode.PERSISTENT;
    await this.send({ type: OpCode.addWatch, path: this.full(path), mode }, path);
    const map = opts.recursive ? this.recursive : this.persistent;
    this.register(map, path, listener);
    return async () => {
      const set = map.get(path);
      set?.delete(listener);
      if (set && set.size === 0) {
        map.delete(path);
        await this.send({ type: OpCode.removeWatches, path: this.full(path), watcherType: 3 }, path, ErrorCode.NOWATCHER).catch(() => {});
      }
    };
  }

  /** Watch events as an async iterator (a persistent watch, removed when the loop ends). */
  async *watch(path: string, opts: { recursive?: boolean } = {}): AsyncGenerator<WatchEvent> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    const remove = await this.addWatch(
      path,
      (e) => {
        queue.push(e);
        wake?.();
      },
      opts,
    );
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (this._state === 'closed' || this._state === 'expired') return;
        await new Promise<void>((r) => {
          wake = r;
          this.once('closed', r);
          this.once('expired', r);
        });
        wake = undefined;
      }
    } finally {
      await remove();
    }
  }

  /** Removes this client's watches of a kind on a path, on the server and here. */
  async removeWatches(path: string, kind: 'children' | 'data' | 'any' = 'any'): Promise<void> {
    const watcherType = kind === 'children' ? 1 : kind === 'data' ? 2 : 3;
    await this.send({ type: OpCode.removeWatches, path: this.full(path), watcherType }, path);
    if (kind !== 'data') this.childWatches.delete(path);
    if (kind !== 'children') {
      this.dataWatches.delete(path);
      this.existWatches.delete(path);
    }
    if (kind === 'any') {
      this.persistent.delete(path);
      this.recursive.delete(path);
    }
  }

  async whoAmI(): Promise<ClientInfo[]> {
    return ((await this.send({ type: OpCode.whoAmI })).response as { clientInfo: ClientInfo[] }).clientInfo;
  }

  /** Authenticates this connection and, after reconnects, every later one. */
  async addAuth(scheme: string, auth: Buffer): Promise<void> {
    this.opts.auth.push({ scheme, auth });
    const sock = this.socket;
    if (!sock || this.handshaking) return;
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ xid: Xid.auth, type: OpCode.auth, resolve: () => resolve(), reject });
      this.write(sock, encodeRequest(Xid.auth, { type: OpCode.auth, authType: 0, scheme, auth }));
    });
  }
}
