/**
 * A typed, promise-based ZooKeeper client for pulsekeeper and Apache ZooKeeper.
 *
 * Heartbeats (see heartbeat.ts): a ping when nothing was sent for a third of the
 * negotiated timeout; the connection is declared lost when nothing was heard for
 * two thirds of it. The client then dials the next host (hosts are tried in
 * random order), reattaching the session by id and password, re-sending auth and
 * re-registering watches with setWatches. Requests in flight when a connection
 * drops fail with ConnectionLossError (nothing is retried behind the caller's
 * back); requests made while disconnected wait for a connection up to
 * requestTimeoutMs, then fail with ConnectionLossError.
 *
 * States, each also emitted as an event of its name and as `state`:
 * connecting -> connected; on a lost connection suspended; then reconnected
 * (same session) or expired (session gone with its ephemerals). After expiry the
 * client opens a new session by itself (`connected` again, with a new sessionId;
 * watches are carried over) unless renewExpiredSession is false, in which case
 * it stays expired. closed after close().
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { ErrorCode } from '../protocol/errors.js';
import { FrameDecoder } from '../protocol/frame.js';
import { JuteReader } from '../protocol/jute.js';
import { AddWatchMode, CreateMode, EventType, isSequentialMode, isTTLMode, OpCode, Xid } from '../protocol/opcodes.js';
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
import { invalidPathReason } from '../tree/path.js';
import { AuthFailedError, BadArgumentsError, ConnectionLossError, errorFor, SessionExpiredError, ThrottledOpError } from './errors.js';
import { Heartbeat } from './heartbeat.js';
import { parseConnectionString, shuffled, type HostPort } from './hosts.js';

export type ConnectionState = 'connecting' | 'connected' | 'suspended' | 'reconnected' | 'expired' | 'closed';

export interface WatchEvent {
  /**
   * The *WatchRemoved types come from this client, not the server: removeWatches
   * tells each watcher it removed (as ZooKeeper's client does), once per kind.
   */
  type: 'created' | 'deleted' | 'dataChanged' | 'childrenChanged' | 'dataWatchRemoved' | 'childWatchRemoved' | 'persistentWatchRemoved';
  path: string;
}
export type WatchListener = (event: WatchEvent) => void;
export type WatchKind = 'children' | 'data' | 'any';

export interface Credentials {
  scheme: string;
  auth: Buffer;
}

export interface ClientOptions {
  /** Requested session timeout; the server clamps it into its bounds. Default 30 s. */
  sessionTimeoutMs?: number;
  /** How long a request made while disconnected waits for a connection. Default: the session timeout. */
  requestTimeoutMs?: number;
  /** How long connect() waits for the first session. Default: the session timeout. */
  connectTimeoutMs?: number;
  /** Identities to authenticate with, re-sent after every reconnect. */
  auth?: Credentials[];
  /** Requests outstanding at once (in flight and waiting); further ones fail at once. Default 10,000. */
  maxOutstanding?: number;
  /** After expiry, open a new session by itself (default true) or stay expired. */
  renewExpiredSession?: boolean;
  /** Attach to an existing session instead of opening one. */
  session?: { id: bigint; password: Buffer };
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
  | ({ op: 'create'; path: string; data?: Buffer } & CreateOptions)
  | { op: 'delete'; path: string; version?: number }
  | { op: 'setData'; path: string; data: Buffer; version?: number }
  | { op: 'check'; path: string; version: number };

const EVENT_NAMES: Record<number, WatchEvent['type']> = {
  [EventType.NodeCreated]: 'created',
  [EventType.NodeDeleted]: 'deleted',
  [EventType.NodeDataChanged]: 'dataChanged',
  [EventType.NodeChildrenChanged]: 'childrenChanged',
};

const WATCHER_TYPES: Record<WatchKind, number> = { children: 1, data: 2, any: 3 };

/** Largest reply frame accepted from a server. */
const MAX_FRAME = 16 * 1024 * 1024;
/** setWatches requests are split so that each stays well under the server's packet limit. */
const SET_WATCHES_MAX_BYTES = 128 * 1024;
/** Events a watch iterator holds for a consumer that does not keep up. */
const ITERATOR_MAX_QUEUED = 10_000;

interface Reply {
  response?: ResponseBody;
  zxid: number;
  err: number;
}

interface Pending {
  xid: number;
  type: number;
  path?: string;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  /** An error code answered as a result rather than a rejection (exists and NONODE). */
  tolerate?: number;
  /**
   * Runs as the reply is read, before any later frame: a watch is recorded here so
   * that a notification in the same chunk as its reply finds it.
   */
  onReply?: (err: number) => void;
}

interface Waiting extends Omit<Pending, 'xid' | 'type'> {
  body: RequestBody;
  deadline: NodeJS.Timeout;
}

/** One TCP connection to one server, from dial to close. */
interface Connection {
  sock: Socket;
  decoder: FrameDecoder;
  handshaking: boolean;
  heartbeat?: Heartbeat;
  timer?: NodeJS.Timeout;
}

/** Watch events as an async iterator; close() ends it from outside the loop. */
export type WatchStream = AsyncGenerator<WatchEvent> & { close(): Promise<void> };

/** The iterator's consumer fell too far behind; events were dropped and state must be read again. */
export class WatchOverflowError extends Error {
  override name = 'WatchOverflowError';
}

export class PulseClient extends EventEmitter {
  private readonly hosts: HostPort[];
  private readonly chroot: string;
  private hostIndex = 0;
  private conn: Connection | undefined;
  private redial: NodeJS.Timeout | undefined;
  private readonly pending: Pending[] = [];
  private readonly waiting: Waiting[] = [];
  /** Auth replies are not ordered with other replies (servers answer them at once), so they queue apart. */
  private readonly authWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private xid = 1;
  private _state: ConnectionState = 'connecting';
  private everConnected = false;
  private _sessionId = 0n;
  private passwd: Buffer = Buffer.alloc(16);
  private _sessionTimeoutMs: number;
  private lastZxid = 0;
  private readonly dataWatches = new Map<string, Set<WatchListener>>();
  private readonly existWatches = new Map<string, Set<WatchListener>>();
  private readonly childWatches = new Map<string, Set<WatchListener>>();
  private readonly persistent = new Map<string, Set<WatchListener>>();
  private readonly recursive = new Map<string, Set<WatchListener>>();
  private readonly auths: Credentials[];
  private readonly opts: Required<Omit<ClientOptions, 'auth' | 'session'>>;

  private constructor(connectionString: string, opts: ClientOptions) {
    super();
    const { hosts, chroot } = parseConnectionString(connectionString);
    const random = opts.random ?? Math.random;
    this.hosts = shuffled(hosts, random);
    this.chroot = chroot;
    const sessionTimeoutMs = opts.sessionTimeoutMs ?? 30_000;
    if (!(sessionTimeoutMs > 0)) throw new RangeError(`sessionTimeoutMs must be positive, got ${sessionTimeoutMs}`);
    this.opts = {
      sessionTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs ?? sessionTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? sessionTimeoutMs,
      maxOutstanding: opts.maxOutstanding ?? 10_000,
      renewExpiredSession: opts.renewExpiredSession ?? true,
      random,
    };
    this.auths = [...(opts.auth ?? [])];
    this._sessionTimeoutMs = sessionTimeoutMs;
    if (opts.session) {
      this._sessionId = opts.session.id;
      this.passwd = Buffer.from(opts.session.password);
    }
  }

  /** Connects and resolves once a session is established (ConnectionLossError after connectTimeoutMs). */
  static async connect(connectionString: string, opts: ClientOptions = {}): Promise<PulseClient> {
    const c = new PulseClient(connectionString, opts);
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error) => {
        clearTimeout(timer);
        c.off('connected', ok);
        c.off('expired', expired);
        c.close().catch(() => {});
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new ConnectionLossError(undefined, `no session with ${connectionString} within ${c.opts.connectTimeoutMs} ms`)),
        c.opts.connectTimeoutMs,
      );
      const ok = () => {
        clearTimeout(timer);
        c.off('expired', expired);
        resolve();
      };
      // Only when attaching to a given session: it no longer exists.
      const expired = () => fail(new SessionExpiredError(undefined, 'the session to attach to has expired'));
      c.once('connected', ok);
      c.once('expired', expired);
      c.dial();
    });
    return c;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The current session's id (0n before the first session). */
  get sessionId(): bigint {
    return this._sessionId;
  }

  /** The current session's password, with which another connection can attach to it. */
  get sessionPassword(): Buffer {
    return Buffer.from(this.passwd);
  }

  /** The negotiated session timeout (the requested one until a server answered). */
  get sessionTimeoutMs(): number {
    return this._sessionTimeoutMs;
  }

  /** No further session will come: closed, or expired without renewal. */
  private get finished(): boolean {
    return this._state === 'closed' || (this._state === 'expired' && !this.opts.renewExpiredSession);
  }

  private get ready(): boolean {
    return this._state === 'connected' || this._state === 'reconnected';
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
    this.emit(s);
  }

  /**
   * Resolves when a session is usable: at once if connected, else at the next
   * connected/reconnected (timeoutMs may be Infinity). Rejects if the client closes or
   * its session expires for good.
   */
  whenConnected(timeoutMs = this.opts.requestTimeoutMs): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (e?: Error) => {
        clearTimeout(timer);
        this.off('state', onState);
        if (e) reject(e);
        else resolve();
      };
      const onState = () => {
        if (this.ready) done();
        else if (this._state === 'closed') done(new ConnectionLossError(undefined, 'client closed'));
        else if (this.finished) done(new SessionExpiredError());
      };
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => done(new ConnectionLossError(undefined, `no connection within ${timeoutMs} ms`)), timeoutMs)
        : undefined;
      this.on('state', onState);
      onState();
    });
  }

  // ---- connection -------------------------------------------------------------

  private dial(): void {
    this.redial = undefined;
    if (this.finished) return;
    const { host, port } = this.hosts[this.hostIndex++ % this.hosts.length];
    const sock = connect({ host, port, noDelay: true });
    const conn: Connection = { sock, decoder: new FrameDecoder(MAX_FRAME), handshaking: true };
    this.conn = conn;
    sock.on('connect', () => {
      sock.write(
        encodeConnectRequest({
          protocolVersion: 0,
          lastZxidSeen: this.lastZxid,
          timeOut: this.opts.sessionTimeoutMs,
          sessionId: this._sessionId,
          passwd: this.passwd,
          readOnly: false,
        }),
      );
    });
    sock.on('data', (chunk) => this.onData(conn, chunk));
    sock.on('error', () => {});
    sock.on('close', () => this.onDisconnect(conn));
    // A host that does not answer the handshake in its share of the timeout is given up for the next.
    conn.timer = setTimeout(() => sock.destroy(), Math.max(1000, this.opts.sessionTimeoutMs / this.hosts.length));
  }

  private onDisconnect(conn: Connection): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    clearTimeout(conn.timer);
    for (const p of this.pending.splice(0)) p.reject(new ConnectionLossError(p.path));
    for (const a of this.authWaiters.splice(0)) a.reject(new ConnectionLossError());
    if (this.finished) return;
    if (this.ready) this.setState('suspended');
    // Straight on to the next host; a pause once every host was tried.
    const pause = this.hostIndex % this.hosts.length === 0 ? 100 + 200 * this.opts.random() : 0;
    this.redial = setTimeout(() => this.dial(), pause);
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn !== this.conn) return;
    conn.heartbeat?.heard(performance.now());
    try {
      for (const frame of conn.decoder.push(chunk)) {
        if (conn !== this.conn) return;
        this.onFrame(conn, new JuteReader(frame));
      }
    } catch {
      // A malformed or unexpected reply: this connection cannot be trusted further.
      conn.sock.destroy();
    }
  }

  private onFrame(conn: Connection, r: JuteReader): void {
    if (conn.handshaking) {
      this.onHandshake(conn, readConnectResponse(r));
      return;
    }
    const h = readReplyHeader(r);
    if (h.zxid > 0) this.lastZxid = Math.max(this.lastZxid, h.zxid);
    switch (h.xid) {
      case Xid.notification:
        this.onNotification(readWatcherEvent(r));
        return;
      case Xid.ping:
        return;
      case Xid.auth: {
        const waiter = this.authWaiters.shift();
        if (h.err === 0) waiter?.resolve();
        else waiter?.reject(errorFor(h.err));
        return;
      }
    }
    const p = this.pending.shift();
    // Other replies come in request order; anything else means client and server disagree.
    if (!p || p.xid !== h.xid) throw new Error(`reply xid ${h.xid} does not match request xid ${p?.xid}`);
    if (h.err !== 0 && h.err !== p.tolerate) {
      p.reject(errorFor(h.err, p.path));
      return;
    }
    const response = h.err === 0 && r.remaining > 0 ? decodeResponseBody(p.type, r) : undefined;
    p.onReply?.(h.err);
    p.resolve({ response, zxid: h.zxid, err: h.err });
  }

  private onHandshake(conn: Connection, res: { timeOut: number; sessionId: bigint; passwd: Buffer }): void {
    conn.handshaking = false;
    clearTimeout(conn.timer);
    if (res.timeOut <= 0) {
      this.onExpired();
      conn.sock.destroy();
      return;
    }
    const sameSession = this.everConnected && res.sessionId === this._sessionId;
    this.everConnected = true;
    this._sessionId = res.sessionId;
    this.passwd = Buffer.from(res.passwd);
    this._sessionTimeoutMs = res.timeOut;
    conn.heartbeat = new Heartbeat(res.timeOut, performance.now());
    this.armHeartbeat(conn);
    for (const a of this.auths) {
      this.sendAuth(conn, a).catch((e) => {
        if (!(e instanceof AuthFailedError)) return;
        // The server closes the connection; every later one would fail the same way.
        this.emit('authFailed', e);
        void this.close();
      });
    }
    this.restoreWatches(conn);
    this.setState(sameSession ? 'reconnected' : 'connected');
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.deadline);
      this.send(w.body, w.path, w.tolerate, w.onReply).then(w.resolve, w.reject);
    }
  }

  private onExpired(): void {
    // Requests made in the lost session's time fail; the application rebuilds on `expired`.
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.deadline);
      w.reject(new SessionExpiredError(w.path));
    }
    this._sessionId = 0n;
    this.passwd = Buffer.alloc(16);
    this.setState('expired');
  }

  private armHeartbeat(conn: Connection): void {
    const hb = conn.heartbeat!;
    clearTimeout(conn.timer);
    conn.timer = setTimeout(() => {
      const now = performance.now();
      const due = hb.due(now);
      if (due === 'lost') {
        conn.sock.destroy();
        return;
      }
      if (due === 'ping') this.write(conn, encodeRequest(Xid.ping, { type: OpCode.ping }));
      this.armHeartbeat(conn);
    }, Math.max(1, hb.nextCheck() - performance.now()));
    // The socket keeps the process alive while connected; the timer alone should not.
    conn.timer.unref();
  }

  private sendAuth(conn: Connection, a: Credentials): Promise<void> {
    return new Promise((resolve, reject) => {
      this.authWaiters.push({ resolve, reject });
      this.write(conn, encodeRequest(Xid.auth, { type: OpCode.auth, authType: 0, scheme: a.scheme, auth: a.auth }));
    });
  }

  private restoreWatches(conn: Connection): void {
    const lists = {
      data: [...this.dataWatches.keys()],
      exist: [...this.existWatches.keys()],
      child: [...this.childWatches.keys()],
      pers: [...this.persistent.keys()],
      rec: [...this.recursive.keys()],
    };
    const type = lists.pers.length + lists.rec.length > 0 ? OpCode.setWatches2 : OpCode.setWatches;
    let batch = { data: [] as string[], exist: [] as string[], child: [] as string[], pers: [] as string[], rec: [] as string[] };
    let bytes = 0;
    const flush = () => {
      if (bytes === 0) return;
      this.pending.push({ xid: Xid.setWatches, type, resolve: () => {}, reject: () => {} });
      this.write(
        conn,
        encodeRequest(Xid.setWatches, {
          type,
          relativeZxid: this.lastZxid,
          dataWatches: batch.data,
          existWatches: batch.exist,
          childWatches: batch.child,
          persistentWatches: batch.pers,
          persistentRecursiveWatches: batch.rec,
        }),
      );
      batch = { data: [], exist: [], child: [], pers: [], rec: [] };
      bytes = 0;
    };
    for (const kind of Object.keys(lists) as (keyof typeof lists)[]) {
      for (const path of lists[kind]) {
        const full = this.full(path);
        if (bytes + full.length + 4 > SET_WATCHES_MAX_BYTES) flush();
        batch[kind].push(full);
        bytes += Buffer.byteLength(full) + 4;
      }
    }
    flush();
  }

  private write(conn: Connection, frame: Buffer): void {
    conn.heartbeat?.sent(performance.now());
    conn.sock.write(frame);
  }

  /** Sends a request now if connected, else waits for a connection up to requestTimeoutMs. */
  private send(body: RequestBody, path?: string, tolerate?: number, onReply?: (err: number) => void): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this._state === 'closed') return reject(new ConnectionLossError(path, 'client closed'));
      if (this.finished) return reject(new SessionExpiredError(path));
      if (this.pending.length + this.waiting.length >= this.opts.maxOutstanding) {
        return reject(new ThrottledOpError(path, `more than ${this.opts.maxOutstanding} requests outstanding`));
      }
      const conn = this.conn;
      if (conn && !conn.handshaking && this.ready) {
        const xid = this.xid;
        this.xid = this.xid >= 0x7fffffff ? 1 : this.xid + 1;
        this.pending.push({ xid, type: body.type, path, resolve, reject, tolerate, onReply });
        this.write(conn, encodeRequest(xid, body));
        return;
      }
      const w: Waiting = {
        body,
        path,
        tolerate,
        onReply,
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

  /** Ends the session (its ephemerals go at once) and the connection. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    const conn = this.conn;
    if (conn && !conn.handshaking && this.ready) {
      await Promise.race([this.send({ type: OpCode.closeSession }).catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
    }
    clearTimeout(this.redial);
    this.setState('closed');
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.deadline);
      w.reject(new ConnectionLossError(w.path, 'client closed'));
    }
    if (conn) {
      clearTimeout(conn.timer);
      conn.sock.destroy();
    }
  }

  // ---- paths and watches ------------------------------------------------------

  /** The server-side path of a client path (chroot prepended), checked as ZooKeeper's client checks it. */
  private full(path: string, sequential = false): string {
    // A sequential node's name may end in '/': the server appends the counter.
    const reason = typeof path === 'string' ? invalidPathReason(sequential ? path + '1' : path) : 'path must be a string';
    if (reason) throw new BadArgumentsError(String(path), `invalid path "${path}": ${reason}`);
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
    // After the frame is handled and in arrival order with replies: a throwing listener is the application's error, not the connection's.
    queueMicrotask(() => {
      for (const l of fire) l(event);
      this.emit('watch', event);
    });
  }

  // ---- operations ---------------------------------------------------------------

  async create(path: string, data: Buffer = Buffer.alloc(0), opts: CreateOptions = {}): Promise<string> {
    return (await this.create2(path, data, opts)).path;
  }

  /** Creates a node and returns its actual path (sequential suffix included) and Stat. */
  async create2(path: string, data: Buffer = Buffer.alloc(0), opts: CreateOptions = {}): Promise<{ path: string; stat: Stat }> {
    const r = (await this.send(this.createBody(path, data, opts, OpCode.create2), path)).response as { path: string; stat: Stat };
    return { path: this.local(r.path), stat: r.stat };
  }

  private createBody(path: string, data: Buffer, opts: CreateOptions, plain: typeof OpCode.create | typeof OpCode.create2): MultiOp {
    const flags = MODES[opts.mode ?? 'persistent'];
    if (flags === undefined) throw new BadArgumentsError(path, `unknown create mode "${opts.mode}"`);
    const acl = opts.acl ?? OPEN_ACL_UNSAFE;
    const full = this.full(path, isSequentialMode(flags));
    if (isTTLMode(flags)) return { type: OpCode.createTTL, path: full, data, acl, flags, ttl: opts.ttlMs ?? 0 };
    return { type: flags === CreateMode.CONTAINER ? OpCode.createContainer : plain, path: full, data, acl, flags };
  }

  async delete(path: string, version = -1): Promise<void> {
    await this.send({ type: OpCode.delete, path: this.full(path), version }, path);
  }

  /** The node's Stat, or null if it does not exist. A watch fires on creation, change or deletion. */
  async exists(path: string, watch?: WatchListener): Promise<Stat | null> {
    const r = await this.send({ type: OpCode.exists, path: this.full(path), watch: !!watch }, path, ErrorCode.NONODE, (err) => {
      if (watch) this.register(err === 0 ? this.dataWatches : this.existWatches, path, watch);
    });
    return (r.response as { stat: Stat } | undefined)?.stat ?? null;
  }

  async getData(path: string, watch?: WatchListener): Promise<{ data: Buffer; stat: Stat }> {
    const r = (
      await this.send({ type: OpCode.getData, path: this.full(path), watch: !!watch }, path, undefined, () => {
        if (watch) this.register(this.dataWatches, path, watch);
      })
    ).response as { data: Buffer | null; stat: Stat };
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
    return (
      await this.send({ type: OpCode.getChildren2, path: this.full(path), watch: !!watch }, path, undefined, () => {
        if (watch) this.register(this.childWatches, path, watch);
      })
    ).response as { children: string[]; stat: Stat };
  }

  async getAllChildrenNumber(path: string): Promise<number> {
    return ((await this.send({ type: OpCode.getAllChildrenNumber, path: this.full(path) }, path)).response as { totalNumber: number }).totalNumber;
  }

  /** This session's ephemeral nodes under a prefix. */
  async getEphemerals(prefix = '/'): Promise<string[]> {
    const r = (await this.send({ type: OpCode.getEphemerals, prefixPath: this.full(prefix) })).response as { ephemerals: string[] };
    return r.ephemerals.map((p) => this.local(p));
  }

  /** Makes the server this client talks to catch up with the leader before later reads. */
  async sync(path = '/'): Promise<void> {
    await this.send({ type: OpCode.sync, path: this.full(path) }, path);
  }

  /** Runs the operations atomically. A failure rejects with the first failing op's error, with `results` and `failedOp`. */
  async multi(ops: TxOp[]): Promise<MultiResult[]> {
    const body: MultiOp[] = ops.map((o) => {
      switch (o.op) {
        case 'create':
          return this.createBody(o.path, o.data ?? Buffer.alloc(0), o, OpCode.create);
        case 'delete':
          return { type: OpCode.delete, path: this.full(o.path), version: o.version ?? -1 };
        case 'setData':
          return { type: OpCode.setData, path: this.full(o.path), data: o.data, version: o.version ?? -1 };
        case 'check':
          return { type: OpCode.check, path: this.full(o.path), version: o.version };
        default:
          throw new BadArgumentsError(undefined, `unknown transaction operation ${JSON.stringify((o as { op: unknown }).op)}`);
      }
    });
    const results = ((await this.send({ type: OpCode.multi, ops: body })).response as { results: MultiResult[] }).results;
    const failed = results.findIndex((r) => r.type === OpCode.error && r.err !== 0);
    if (failed >= 0) {
      const err = errorFor((results[failed] as { err: number }).err, ops[failed].path);
      err.results = results;
      err.failedOp = failed;
      throw err;
    }
    return results.map((r) => ('path' in r ? { ...r, path: this.local(r.path) } : r));
  }

  /** Reads several nodes at once; each result is the data/children or an error code. */
  async multiRead(ops: ({ op: 'getData'; path: string } | { op: 'getChildren'; path: string })[]): Promise<MultiResult[]> {
    const body: MultiOp[] = ops.map((o) => ({ type: o.op === 'getData' ? OpCode.getData : OpCode.getChildren, path: this.full(o.path), watch: false }));
    return ((await this.send({ type: OpCode.multiRead, ops: body })).response as { results: MultiResult[] }).results;
  }

  /**
   * A persistent watch (recursive: the whole subtree); returns a function that removes it.
   * It is re-registered after reconnects; changes made while disconnected are not replayed.
   */
  async addWatch(path: string, listener: WatchListener, opts: { recursive?: boolean } = {}): Promise<() => Promise<void>> {
    const mode = opts.recursive ? AddWatchMode.PERSISTENT_RECURSIVE : AddWatchMode.PERSISTENT;
    const map = opts.recursive ? this.recursive : this.persistent;
    await this.send({ type: OpCode.addWatch, path: this.full(path), mode }, path, undefined, () => this.register(map, path, listener));
    return async () => {
      const set = map.get(path);
      if (!set?.delete(listener) || set.size > 0) return;
      map.delete(path);
      if (this.ready) await this.send({ type: OpCode.removeWatches, path: this.full(path), watcherType: WATCHER_TYPES.any }, path, ErrorCode.NOWATCHER).catch(() => {});
    };
  }

  /**
   * Watch events as an async iterator: a persistent watch, registered when the
   * promise resolves, removed when the loop ends or close() is called. The
   * iterator ends when the client closes; it throws WatchOverflowError if the
   * consumer falls more than 10,000 events behind.
   */
  async watch(path: string, opts: { recursive?: boolean } = {}): Promise<WatchStream> {
    const queue: WatchEvent[] = [];
    let overflow = false;
    let ended = false;
    let wake: (() => void) | undefined;
    let remove: (() => Promise<void>) | undefined;
    const onState = () => wake?.();
    const close = async () => {
      if (ended) return;
      ended = true;
      this.off('state', onState);
      wake?.();
      await remove?.();
    };
    remove = await this.addWatch(
      path,
      (e) => {
        // removeWatches took this watch away: end the loop as close() would, rather than yield the removal.
        if (e.type === 'persistentWatchRemoved') return void close();
        if (queue.length >= ITERATOR_MAX_QUEUED) overflow = true;
        else queue.push(e);
        wake?.();
      },
      opts,
    );
    if (!ended) this.on('state', onState);
    const client = this;
    async function* events(): AsyncGenerator<WatchEvent> {
      try {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (overflow) throw new WatchOverflowError(`more than ${ITERATOR_MAX_QUEUED} events queued for ${path}`);
          if (ended || client.finished) return;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      } finally {
        await close();
      }
    }
    return Object.assign(events(), { close });
  }

  /** Whether this client has a watch of a kind on a path at the server. */
  async checkWatches(path: string, kind: WatchKind = 'any'): Promise<boolean> {
    const r = await this.send({ type: OpCode.checkWatches, path: this.full(path), watcherType: WATCHER_TYPES[kind] }, path, ErrorCode.NOWATCHER);
    return r.err === 0;
  }

  /**
   * Removes this client's watches of a kind on a path, on the server and here (only here with local).
   * As in ZooKeeper's client, each removed listener then gets one event per kind it was removed
   * from: childWatchRemoved, dataWatchRemoved (data and exists watches) or persistentWatchRemoved
   * (persistent and recursive ones, only with 'any'); it arrives before this promise resolves.
   * The remover addWatch returns and the end of a watch() iterator report nothing.
   */
  async removeWatches(path: string, kind: WatchKind = 'any', opts: { local?: boolean } = {}): Promise<void> {
    if (!opts.local) await this.send({ type: OpCode.removeWatches, path: this.full(path), watcherType: WATCHER_TYPES[kind] }, path);
    const take = (removed: Set<WatchListener>, ...maps: Map<string, Set<WatchListener>>[]) => {
      for (const map of maps) {
        for (const l of map.get(path) ?? []) removed.add(l);
        map.delete(path);
      }
    };
    const child = new Set<WatchListener>();
    const data = new Set<WatchListener>();
    const persistent = new Set<WatchListener>();
    if (kind !== 'data') take(child, this.childWatches);
    if (kind !== 'children') take(data, this.dataWatches, this.existWatches);
    if (kind === 'any') take(persistent, this.persistent, this.recursive);
    const events: [Set<WatchListener>, WatchEvent][] = [
      [child, { type: 'childWatchRemoved', path }],
      [data, { type: 'dataWatchRemoved', path }],
      [persistent, { type: 'persistentWatchRemoved', path }],
    ];
    // Like server events: a throwing listener is the application's error, not this call's.
    queueMicrotask(() => {
      for (const [listeners, event] of events) for (const l of listeners) l(event);
    });
  }

  /** The ensemble's configuration (/zookeeper/config, outside any chroot). */
  async getConfig(): Promise<{ data: Buffer; stat: Stat }> {
    const r = (await this.send({ type: OpCode.getData, path: '/zookeeper/config', watch: false }, '/zookeeper/config')).response as { data: Buffer | null; stat: Stat };
    return { data: Buffer.from(r.data ?? Buffer.alloc(0)), stat: r.stat };
  }

  /** Dynamic reconfiguration; servers that have it disabled answer ReconfigDisabledError. */
  async reconfig(change: { joining?: string; leaving?: string; members?: string; fromConfig?: number }): Promise<{ data: Buffer; stat: Stat }> {
    const r = (
      await this.send({
        type: OpCode.reconfig,
        joiningServers: change.joining ?? '',
        leavingServers: change.leaving ?? '',
        newMembers: change.members ?? '',
        curConfigId: change.fromConfig ?? -1,
      })
    ).response as { data: Buffer | null; stat: Stat };
    return { data: Buffer.from(r.data ?? Buffer.alloc(0)), stat: r.stat };
  }

  async whoAmI(): Promise<ClientInfo[]> {
    return ((await this.send({ type: OpCode.whoAmI })).response as { clientInfo: ClientInfo[] }).clientInfo;
  }

  /**
   * Authenticates this connection and, once accepted, every later one. A rejected
   * identity fails with AuthFailedError (the server then drops the connection, and
   * the client reconnects without it).
   */
  async addAuth(scheme: string, auth: Buffer): Promise<void> {
    await this.whenConnected();
    if (!this.conn) throw new ConnectionLossError(undefined, 'connection lost before authenticating');
    await this.sendAuth(this.conn, { scheme, auth });
    this.auths.push({ scheme, auth });
  }
}
