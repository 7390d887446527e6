/**
 * The server shell: sockets, sessions and the request pipeline around the pure
 * cores (data tree, watch manager, session tracker).
 *
 *   socket -> frames -> connect / request -> prepare -> commit -> apply -> watches -> reply
 *
 * Reads are answered from the tree; writes become transactions handed to the
 * committer, which applies them in log order through applyCommitted().
 */
import { authenticate, checkPerm, clientInfo, type AuthId } from '../acl/acl.js';
import { MemoryCommitter, type Committer, type CommitTarget, type ReplicationStatus, type ServingRole } from '../pipeline/committer.js';
import { normaliseMultiOps } from '../pipeline/prepare.js';
import { ErrorCode } from '../protocol/errors.js';
import { DecodeError, JuteReader } from '../protocol/jute.js';
import { AddWatchMode, KeeperState, OpCode, opName, Perms, WatcherType, Xid } from '../protocol/opcodes.js';
import {
  decodeRequestBody,
  encodeConnectResponse,
  encodeNotification,
  encodeReply,
  readConnectRequest,
  readRequestHeader,
  type RequestBody,
  type ResponseBody,
} from '../protocol/records.js';
import { FrameDecoder, FrameError } from '../protocol/frame.js';
import { negotiateTimeout, SessionTracker } from '../session/tracker.js';
import { DataTree } from '../tree/data-tree.js';
import type { Txn } from '../tree/txn.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { WatchManager, type Notification } from '../watch/watch-manager.js';
import type { ServerConfig } from './config.js';
import { Connection, ConnectionTable, normaliseAddress, type Slot } from './connection.js';
import { answerFourLetterWord, fourLetterWord, hex, LISTEN_BACKLOG, type FourLetterSource } from './four-letter.js';
import { passwordMatches, SessionIds } from './session-ids.js';
import { listenForClients, type ClientTransport, type TransportEvents, type TransportKind } from './transport.js';

export type Proposal = Omit<Txn, 'zxid'>;

/** What a committed transaction proposed here must do when it is applied. */
type Ref =
  | { kind: 'request'; conn: Connection; slot: Slot; xid: number; type: number }
  | { kind: 'sync'; conn: Connection }
  | { kind: 'create-session'; conn: Connection; timeoutMs: number; withReadOnly: boolean; later: boolean }
  | { kind: 'close-session'; conn: Connection; slot: Slot; xid: number }
  | { kind: 'expire' }
  | { kind: 'internal' };

export interface ServerOptions {
  config: ServerConfig;
  logger?: Logger;
  clock?: Clock;
  committer?: Committer<Proposal>;
  /** The state to start from (a recovered snapshot); an empty tree by default. */
  tree?: DataTree;
  /** The client transport (transport.ts); by default PULSEKEEPER_TRANSPORT, else epoll where it is built. */
  transport?: TransportKind | 'auto';
}

/** Output queued for a client (replies not yet read) past which the server stops reading its requests. */
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
/** A client that lets this much pile up (watch events keep coming while it does not read) is disconnected. */
const CLOSE_OUTPUT_BYTES = 4 * MAX_OUTPUT_BYTES;
const NO_PASSWORD = Buffer.alloc(16);
const SUPER_AUTH: AuthId[] = [{ scheme: 'super', id: '' }];

export class ZooServer implements FourLetterSource, CommitTarget<Proposal> {
  tree: DataTree;
  readonly watches = new WatchManager();
  readonly tracker: SessionTracker<Connection>;
  readonly committer: Committer<Proposal>;
  private readonly ids: SessionIds;
  private readonly conns = new ConnectionTable();
  private readonly perIp = new Map<string, number>();
  private readonly dirty = new Set<Connection>();
  private flushScheduled = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private containerTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private closed = false;
  // Statistics.
  received = 0;
  sent = 0;
  expiredSessions = 0;
  authFailures = 0;
  connectionsRefused = 0;
  /** The port clients connect to, once listening. */
  clientPort = 0;
  private transport!: ClientTransport;
  private readonly startedAt: number;
  private lat = { min: 0, max: 0, total: 0, count: 0 };
  role: ServingRole = 'leaderless';
  /** Sessions touched here since the leader last heard of them (followers and observers only). */
  private touched = new Set<bigint>();

  constructor(
    readonly config: ServerConfig,
    opts: Omit<ServerOptions, 'config'> = {},
  ) {
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? monotonicClock;
    this.tree = opts.tree ?? new DataTree({ extendedTypesEnabled: config.extendedTypesEnabled });
    this.startedAt = this.clock.now();
    this.tracker = new SessionTracker<Connection>(config.tickTime, this.startedAt);
    for (const [id, s] of this.tree.sessions) this.tracker.add(id, s.timeoutMs, this.clock.now());
    this.ids = new SessionIds(config.serverId);
    this.committer = opts.committer ?? new MemoryCommitter<Proposal>();
    this.committer.attach(this);
  }

  get replication(): ReplicationStatus | undefined {
    return this.committer.status?.();
  }

  /** ZooKeeper's name for this member's part, as srvr and mntr show it. */
  get mode(): string {
    return this.role;
  }

  get readOnly(): boolean {
    return this.role === 'read-only';
  }

  /** Cut off from the quorum: read-write sessions cannot be served here. */
  private get cutOff(): boolean {
    return this.role === 'read-only' || this.role === 'cut-off';
  }

  /** Whether this member expires sessions: only the one that orders writes does. */
  private get ownsExpiry(): boolean {
    return this.role === 'leader' || this.role === 'standalone';
  }

  // ---- what the committer calls -------------------------------------------------

  apply(txn: Proposal & { zxid: number }, ref: unknown): void {
    this.applyCommitted(txn as Txn, ref as Ref | undefined);
  }

  abandon(ref: unknown, reason: string): void {
    const r = ref as Ref;
    // The client cannot be told whether its write happened: a lost connection says exactly that.
    if ('conn' in r) this.closeConnection(r.conn, reason);
  }

  roleChanged(role: ServingRole): void {
    const before = this.role;
    if (role === before) return;
    this.role = role;
    this.log.info('role changed', { from: before, to: role });
    if (role === 'leader' || role === 'standalone') {
      // Touches of the last moments went to the old leader: nobody is expired for that.
      this.tracker.renewAll(this.clock.now());
      this.touched.clear();
    }
    const wasCutOff = before === 'read-only' || before === 'cut-off';
    if (this.cutOff !== wasCutOff) {
      // Read-write sessions cannot go on without the quorum, and read-only ones end when it is back:
      // either way their clients look for a member that can serve them.
      for (const conn of this.conns.values()) {
        if (conn.state === 'open' || conn.state === 'connecting' || conn.state === 'catching-up' || conn.state === 'creating') {
          this.closeConnection(conn, this.cutOff ? 'cut off from the quorum' : 'quorum regained');
        }
      }
    }
  }

  /**
   * The leader sent a snapshot that replaces the whole state. Clients reconnect and
   * re-register their watches with the zxid they last saw, so they hear of whatever changed.
   */
  restore(tree: DataTree): void {
    for (const conn of this.conns.values()) this.closeConnection(conn, 'state replaced by a snapshot from the leader');
    this.tree = tree;
    this.pingFrame = undefined;
    const now = this.clock.now();
    for (const { id } of [...this.tracker.entries()]) this.tracker.remove(id);
    for (const [id, s] of tree.sessions) this.tracker.add(id, s.timeoutMs, now);
  }

  /** Sessions touched here since the last call, for the leader (followers and observers). */
  drainTouches(): bigint[] {
    if (this.touched.size === 0) return [];
    const ids = [...this.touched];
    this.touched.clear();
    return ids;
  }

  /** Session touches a follower or observer passed on (leader only). */
  touchSessions(ids: Iterable<bigint>): void {
    const now = this.clock.now();
    for (const id of ids) this.tracker.touch(id, now);
  }

  /** Hands a write to the committer; a refused one costs the client its connection, as ZooKeeper does when it cannot serve. */
  private propose(txn: Proposal, ref: Ref): void {
    if (this.committer.propose(txn, ref)) return;
    if ('conn' in ref) this.closeConnection(ref.conn, 'no leader to order writes');
  }

  /** Starts the expiry sweep and the container/TTL cleaner. */
  startTimers(): void {
    this.scheduleTick();
    this.containerTimer = setInterval(() => this.cleanContainers(), this.config.containerCheckIntervalMs);
    this.containerTimer.unref();
  }

  private scheduleTick(): void {
    if (this.closed) return;
    // Only the member that owns expiry sweeps; the others look again a tick later.
    const delay = this.ownsExpiry ? Math.max(0, this.tracker.nextTickAt() - this.clock.now()) : this.config.tickTime;
    this.tickTimer = setTimeout(() => {
      this.expireSessions();
      this.scheduleTick();
    }, delay);
    this.tickTimer.unref();
  }

  /** Expires every session whose deadline has passed: one closeSession transaction each. */
  expireSessions(): void {
    if (!this.ownsExpiry) return;
    for (const e of this.tracker.tick(this.clock.now())) {
      this.expiredSessions++;
      this.log.info('session expired', {
        sessionId: hex(e.id),
        timeoutMs: e.timeoutMs,
        sinceLastHeardMs: Math.round(e.sinceLastHeardMs),
      });
      this.propose({ time: Date.now(), sessionId: e.id, auth: SUPER_AUTH, body: { type: OpCode.closeSession } }, { kind: 'expire' });
    }
    this.flushAll();
  }

  private cleanContainers(): void {
    if (!this.ownsExpiry) return;
    for (const path of this.tree.deletionCandidates(Date.now())) {
      this.propose({ time: Date.now(), sessionId: 0n, auth: SUPER_AUTH, body: { type: OpCode.deleteContainer, path, version: -1 } }, { kind: 'internal' });
    }
    this.flushAll();
  }

  // ---- connections ------------------------------------------------------------

  /** What the client transport calls; connections are named by the transport's handles. */
  readonly transportEvents: TransportEvents = {
    accepted: (handle, address, port) => this.onAccepted(handle, address, port),
    data: (handle, chunk) => {
      const conn = this.conns.get(handle);
      if (conn) this.onData(conn, chunk);
    },
    drained: (handle) => {
      const conn = this.conns.get(handle);
      if (!conn) return;
      conn.queued = 0;
      this.maybeResume(conn);
    },
    closed: (handle) => {
      const conn = this.conns.get(handle);
      if (conn) this.onClosed(conn);
    },
  };

  /** The transport clients connect through, once listening (startServer). */
  attachTransport(transport: ClientTransport): void {
    this.transport = transport;
    this.clientPort = transport.port;
  }

  private onAccepted(handle: number, address: string, port: number): void {
    if (this.closed) {
      this.transport.destroy(handle);
      return;
    }
    const ipIdentity = this.ipIdentity(normaliseAddress(address));
    const ip = ipIdentity[0].id;
    const conn = new Connection(handle, port, ipIdentity);
    const count = (this.perIp.get(ip) ?? 0) + 1;
    if (this.config.maxClientCnxns > 0 && count > this.config.maxClientCnxns) {
      this.connectionsRefused++;
      this.log.warn('connection refused: too many connections from one address', { ip, max: this.config.maxClientCnxns });
      this.transport.destroy(handle);
      return;
    }
    this.perIp.set(ip, count);
    this.conns.set(conn);
    // A connection must introduce itself within the longest session timeout.
    conn.connectDeadline = setTimeout(() => {
      if (conn.state === 'new' || conn.state === 'connecting' || conn.state === 'catching-up') this.closeConnection(conn, 'no ConnectRequest in time');
    }, this.config.maxSessionTimeout);
    conn.connectDeadline.unref();
  }

  /** One identity list per client address, shared by its connections until one authenticates further. */
  private readonly ipIdentities = new Map<string, AuthId[]>();
  private ipIdentity(ip: string): AuthId[] {
    let ids = this.ipIdentities.get(ip);
    if (!ids) {
      if (this.ipIdentities.size > 10_000) this.ipIdentities.clear();
      this.ipIdentities.set(ip, (ids = [{ scheme: 'ip', id: ip }]));
    }
    return ids;
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.state === 'closing' || conn.state === 'closed') return;
    if (conn.state === 'new') {
      // The first four bytes may be a four-letter word instead of a frame length.
      const head = conn.head ? Buffer.concat([conn.head, chunk]) : chunk;
      if (head.length < 4) {
        conn.head = head;
        return;
      }
      conn.head = undefined;
      const word = fourLetterWord(head);
      if (word) {
        conn.state = 'closing';
        conn.received++;
        this.transport.write(conn.id, Buffer.from(answerFourLetterWord(word, this)));
        this.transport.end(conn.id);
        return;
      }
      conn.state = 'connecting';
      chunk = head;
    }
    if (conn.state === 'open' && conn.decoder === undefined && !conn.paused && isLonePing(chunk)) {
      // An idle session's heartbeat, alone in its read: answered without a decoder or frame
      // objects, since with many sessions this is most of what the server does.
      conn.received++;
      this.received++;
      const now = this.clock.now();
      if (this.renew(conn, Xid.ping, OpCode.ping, now)) this.answerPing(conn, now);
      this.drainSlots(conn);
      this.writeOut(conn);
      return;
    }
    (conn.decoder ??= new FrameDecoder(this.config.maxBuffer)).append(chunk);
    if (!conn.paused) this.takeFrames(conn);
  }

  /**
   * Handles the connection's buffered frames one at a time while its queued output and
   * requests in flight stay within their limits; past them the rest waits, undecoded,
   * and the socket is paused until the client has read its replies (maybeResume).
   */
  private takeFrames(conn: Connection): void {
    for (;;) {
      let over = false;
      while (conn.state === 'connecting' || conn.state === 'open') {
        if (this.overBudget(conn)) {
          over = true;
          break;
        }
        let frame: Buffer | undefined;
        try {
          frame = conn.decoder?.next();
        } catch (e) {
          this.closeConnection(conn, e instanceof FrameError ? e.message : String(e));
          return;
        }
        if (!frame) {
          // Nothing left over: the decoder goes until more bytes come.
          if (conn.decoder?.buffered === 0) conn.decoder = undefined;
          break;
        }
        conn.received++;
        this.received++;
        try {
          if (conn.state === 'connecting') this.onConnect(conn, frame);
          else this.onRequest(conn, frame);
        } catch (e) {
          if (e instanceof DecodeError) {
            this.closeConnection(conn, `malformed ${conn.state === 'connecting' ? 'ConnectRequest' : 'request'}: ${e.message}`);
          } else {
            // A fault of the server's own: it costs this connection, never the process or other sessions.
            this.log.error('request failed', { remote: conn.remote, error: e instanceof Error ? e.stack : String(e) });
            this.closeConnection(conn, 'internal error');
          }
          return;
        }
        this.drainSlots(conn);
      }
      this.writeOut(conn);
      if (conn.state === 'closed') return;
      if (!over) {
        if (conn.paused) {
          conn.paused = false;
          this.transport.resume(conn.id);
        }
        return;
      }
      if (this.overBudget(conn)) {
        if (!conn.paused) {
          conn.paused = true;
          this.transport.pause(conn.id);
        }
        return;
      }
      // The socket took the replies at once: carry on with the next frames.
    }
  }

  /** Output waiting for the client to read it: replies not written yet and what the transport holds. */
  private queuedOutput(conn: Connection): number {
    return conn.outBytes + conn.queued;
  }

  private overBudget(conn: Connection): boolean {
    return conn.slots.length >= this.config.maxPendingPerConnection || this.queuedOutput(conn) >= MAX_OUTPUT_BYTES;
  }

  private onConnect(conn: Connection, frame: Buffer, caughtUp = false): void {
    const req = readConnectRequest(new JuteReader(frame));
    const withReadOnly = req.readOnly !== undefined;
    if (!caughtUp && !this.ownsExpiry && !this.cutOff && (req.lastZxidSeen > this.tree.lastZxid || (req.sessionId !== 0n && !this.tree.sessions.has(req.sessionId)))) {
      // This member may be behind the one the client comes from (a later zxid seen, or a session
      // created there a moment ago): it catches up with the leader first, as ZooKeeper's followers
      // check such a session with the leader, rather than refuse the client.
      this.catchUpThenConnect(conn, Buffer.from(frame));
      return;
    }
    if (req.lastZxidSeen > this.tree.lastZxid) {
      this.closeConnection(conn, `client has seen zxid ${hex(req.lastZxidSeen)}, ahead of this server's ${hex(this.tree.lastZxid)}`);
      return;
    }
    // A member without a quorum serves only clients that asked for read-only sessions (ZooKeeper's readonlymode).
    const readOnly = this.role === 'read-only';
    if (this.cutOff && !(readOnly && req.readOnly)) {
      this.closeConnection(conn, readOnly ? 'read-only member refuses a read-write client' : 'not serving: cut off from the quorum');
      return;
    }
    let timeoutMs = negotiateTimeout(req.timeOut, this.config.minSessionTimeout, this.config.maxSessionTimeout);
    conn.state = 'open';
    clearTimeout(conn.connectDeadline);
    conn.connectDeadline = undefined;
    conn.readOnly = readOnly;
    if (req.sessionId === 0n) {
      const id = this.ids.nextId();
      const password = this.ids.newPassword();
      if (readOnly) {
        // A read-only session is this member's alone: never replicated, it ends with its connection.
        this.attach(conn, id, timeoutMs);
        conn.send(encodeConnectResponse({ protocolVersion: 0, timeOut: timeoutMs, sessionId: id, passwd: password, readOnly: true }, withReadOnly));
        return;
      }
      conn.sessionId = id;
      conn.timeoutMs = timeoutMs;
      // Requests the client sent behind its ConnectRequest wait until the session exists (it is
      // tracked once applied) and its ConnectResponse has gone out: as ZooKeeper stops reading then.
      conn.state = 'creating';
      const ref: Ref = { kind: 'create-session', conn, timeoutMs, withReadOnly, later: false };
      this.propose({ time: Date.now(), sessionId: id, auth: [], body: { type: OpCode.createSession, timeoutMs, password } }, ref);
      // Applied at once (in memory): the loop that took the ConnectRequest goes on with the next frames; else the apply does.
      ref.later = conn.state === 'creating';
      return;
    }
    const id = req.sessionId;
    const session = this.tree.sessions.get(id);
    if (!session || !this.tracker.has(id) || !passwordMatches(session.password, req.passwd)) {
      this.log.info('reattach refused: session expired or password wrong', { sessionId: hex(id), remote: conn.remote });
      conn.send(encodeConnectResponse({ protocolVersion: 0, timeOut: 0, sessionId: 0n, passwd: NO_PASSWORD, readOnly: false }, withReadOnly));
      conn.state = 'closing';
      this.flush(conn);
      return;
    }
    const previous = this.tracker.attachment(id);
    if (previous && previous !== conn) {
      previous.sessionId = undefined;
      this.closeConnection(previous, 'session moved to another connection');
    }
    if (this.ownsExpiry) this.tracker.add(id, timeoutMs, this.clock.now());
    else {
      // The leader tracks the session with the timeout it was created with; a follower cannot renegotiate it.
      timeoutMs = session.timeoutMs;
      this.tracker.touch(id, this.clock.now());
      this.touched.add(id);
    }
    this.attach(conn, id, timeoutMs);
    conn.send(encodeConnectResponse({ protocolVersion: 0, timeOut: timeoutMs, sessionId: id, passwd: session.password, readOnly }, withReadOnly));
  }

  private catchUpThenConnect(conn: Connection, frame: Buffer): void {
    conn.state = 'catching-up';
    this.committer.sync((ok) => {
      if (conn.state !== 'catching-up') return; // closed meanwhile
      if (!ok) return this.closeConnection(conn, 'could not catch up with the leader');
      conn.state = 'connecting';
      try {
        this.onConnect(conn, frame, true);
      } catch (e) {
        this.log.error('request failed', { remote: conn.remote, error: e instanceof Error ? e.stack : String(e) });
        return this.closeConnection(conn, 'internal error');
      }
      this.afterConnect(conn);
    });
  }

  /** Once the ConnectResponse is queued: whatever the client sent behind its ConnectRequest, in order. */
  private afterConnect(conn: Connection): void {
    if (!conn.paused) this.takeFrames(conn);
    else this.writeOut(conn);
  }

  private attach(conn: Connection, id: bigint, timeoutMs: number): void {
    conn.sessionId = id;
    conn.timeoutMs = timeoutMs;
    // Tracked sessions know their connection; a read-only one is never looked up by id.
    this.tracker.attach(id, conn);
  }

  /** Every request renews its session; false when the session is gone (answered SESSIONEXPIRED, connection closing). */
  private renew(conn: Connection, xid: number, type: number, now: number): boolean {
    const sessionId = conn.sessionId!;
    conn.lastOp = LAST_OP.get(type) ?? opName(type).toUpperCase().slice(0, 4);
    conn.lastCxid = xid;
    if (conn.readOnly) {
      // A read-only member cannot reach the leader: its sessions live as long as their connections.
    } else if (!this.tracker.touch(sessionId, now)) {
      // The session is expiring or closing: nothing more is done for it.
      this.reply(conn, this.newSlot(conn, now), xid, ErrorCode.SESSIONEXPIRED, type);
      this.closeConnection(conn, 'request on an expired session');
      return false;
    } else if (!this.ownsExpiry) {
      this.touched.add(sessionId);
    }
    return true;
  }

  /** The heartbeat: written at once when nothing is ahead of it, with no slot and no output list. */
  private answerPing(conn: Connection, now: number): void {
    if (conn.slots.length > 0 || conn.out !== undefined) {
      this.newSlot(conn, now).reply = this.pingReply();
      return;
    }
    conn.sent++;
    this.sent++;
    conn.recordLatency(0);
    this.recordLatency(0);
    conn.lastResponseAt = Math.round(now);
    const queued = this.transport.write(conn.id, this.pingReply());
    if (queued < 0) this.onClosed(conn);
    else conn.queued = queued;
  }

  private onRequest(conn: Connection, frame: Buffer): void {
    const r = new JuteReader(frame);
    const { xid, type } = readRequestHeader(r);
    const now = this.clock.now();
    if (!this.renew(conn, xid, type, now)) return;
    if (type === OpCode.ping) {
      this.answerPing(conn, now);
      return;
    }
    const sessionId = conn.sessionId!;
    const slot = this.newSlot(conn, now);
    if (!KNOWN_OPS.has(type)) {
      // As ZooKeeper: UNIMPLEMENTED with zxid -1, then the connection is closed.
      slot.closeAfter = true;
      this.reply(conn, slot, xid, ErrorCode.UNIMPLEMENTED, type, undefined, -1);
      return;
    }
    const body = readBody(type, r, frame);
    if (typeof body === 'number') {
      this.log.info('request refused', { remote: conn.remote, op: opName(type), err: body });
      if (WRITE_OPS.has(type)) this.proposeWrite(conn, slot, xid, type, { type: OpCode.error, err: body });
      else this.reply(conn, slot, xid, body, type);
      return;
    }
    switch (body.type) {
      case OpCode.auth: {
        // ZooKeeper answers auth with zxid 0.
        const ids = authenticate(body.scheme, body.auth, conn.remoteAddress, this.config.superDigest);
        if (!ids) {
          this.authFailures++;
          this.log.info('authentication failed', { scheme: body.scheme, remote: conn.remote });
          slot.closeAfter = true;
          this.reply(conn, slot, xid, ErrorCode.AUTHFAILED, type, undefined, 0);
          return;
        }
        const added = ids.filter((a) => !conn.auth.some((b) => b.scheme === a.scheme && b.id === a.id));
        // A new list: the one it had may be shared with other connections from its address.
        if (added.length > 0) conn.auth = [...conn.auth, ...added];
        this.reply(conn, slot, xid, 0, type, undefined, 0);
        return;
      }
      case OpCode.sasl:
        // Without SASL configured ZooKeeper answers with an empty (null) token.
        this.reply(conn, slot, xid, 0, type, { token: null }, 0);
        return;
      case OpCode.closeSession:
        if (conn.readOnly) {
          slot.closeAfter = true;
          this.reply(conn, slot, xid, 0, type);
          return;
        }
        this.tracker.setClosing(sessionId);
        this.propose({ time: Date.now(), sessionId, auth: conn.auth, body: { type: OpCode.closeSession } }, { kind: 'close-session', conn, slot, xid });
        return;
      case OpCode.multi:
        body.ops = normaliseMultiOps(body.ops);
        this.proposeWrite(conn, slot, xid, type, body as Txn['body']);
        return;
      case OpCode.create:
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL:
      case OpCode.delete:
      case OpCode.deleteContainer:
      case OpCode.setData:
      case OpCode.setACL:
      case OpCode.check:
        this.proposeWrite(conn, slot, xid, type, body as Txn['body']);
        return;
      case OpCode.reconfig:
        if (!this.committer.reconfigure) {
          // A standalone ZooKeeper refuses it as a transaction of its own, using up a zxid.
          this.proposeWrite(conn, slot, xid, type, { type: OpCode.error, err: ErrorCode.RECONFIGDISABLED });
          return;
        }
        break;
    }
    // Everything else reads: run it now, or once this connection's earlier requests are done.
    if (conn.slots.length === 1) this.runRead(conn, slot, xid, body);
    else slot.run = () => this.runRead(conn, slot, xid, body);
  }

  private proposeWrite(conn: Connection, slot: Slot, xid: number, type: number, body: Txn['body']): void {
    if (conn.readOnly) return this.reply(conn, slot, xid, ErrorCode.NOTREADONLY, type);
    this.propose({ time: Date.now(), sessionId: conn.sessionId!, auth: conn.auth, body }, { kind: 'request', conn, slot, xid, type });
  }

  /** Ping replies differ only by zxid: one shared frame per zxid saves an encoding per heartbeat. */
  private pingFrame: Buffer | undefined;
  private pingZxid = -1;
  private pingReply(): Buffer {
    if (this.pingZxid !== this.tree.lastZxid || !this.pingFrame) {
      this.pingZxid = this.tree.lastZxid;
      this.pingFrame = encodeReply(Xid.ping, this.pingZxid, 0, OpCode.ping);
    }
    return this.pingFrame;
  }

  private newSlot(conn: Connection, now: number): Slot {
    const slot: Slot = { reply: undefined, run: undefined, startedAt: now, closeAfter: false };
    conn.addSlot(slot);
    return slot;
  }

  private reply(conn: Connection, slot: Slot, xid: number, err: number, type: number, body?: ResponseBody, zxid = this.tree.lastZxid): void {
    slot.reply = encodeReply(xid, zxid, err, type, body);
    conn.lastZxid = zxid;
  }

  /** Answers a request that reads (or only touches this connection's watches). */
  private runRead(conn: Connection, slot: Slot, xid: number, body: RequestBody): undefined {
    const w = conn.id;
    switch (body.type) {
      case OpCode.sync: {
        // Answered once this member has applied all the ensemble had committed when it asked.
        const path = body.path;
        this.committer.sync((ok) => {
          if (!ok) return this.closeConnection(conn, 'sync failed: no leader');
          this.reply(conn, slot, xid, 0, OpCode.sync, { path });
          this.pump(conn);
        });
        return;
      }
      case OpCode.whoAmI:
        this.reply(conn, slot, xid, 0, body.type, { clientInfo: clientInfo(conn.auth) });
        return;
      case OpCode.reconfig: {
        // Answered with the new /zookeeper/config once the change is applied here, as ZooKeeper does.
        this.committer.reconfigure!(body, conn.auth, (err) => {
          if (err === ErrorCode.CONNECTIONLOSS) return this.closeConnection(conn, 'reconfig outcome unknown: leader changed');
          const node = this.tree.get('/zookeeper/config')!;
          if (err === 0) this.reply(conn, slot, xid, 0, OpCode.reconfig, { data: node.data, stat: node.stat() });
          else this.reply(conn, slot, xid, err, OpCode.reconfig);
          this.pump(conn);
        });
        return;
      }
      case OpCode.addWatch:
        this.watches.addPersistent(body.path, w, body.mode === AddWatchMode.PERSISTENT_RECURSIVE);
        this.reply(conn, slot, xid, 0, body.type, {});
        return;
      case OpCode.checkWatches:
        this.reply(conn, slot, xid, this.watches.checkWatches(body.path, body.watcherType, w), body.type);
        return;
      case OpCode.removeWatches:
        this.reply(conn, slot, xid, this.watches.removeWatches(body.path, body.watcherType, w), body.type);
        return;
      case OpCode.setWatches:
      case OpCode.setWatches2: {
        for (const n of this.watches.setWatches(body, w, this.tree)) this.notify(n);
        this.reply(conn, slot, xid, 0, body.type);
        return;
      }
    }
    if (body.type === OpCode.multiRead && body.ops.length > 0 && !READ_OPS_IN_MULTI.has(body.ops[0].type)) {
      // Writes only: ZooKeeper fails on the first op and answers with the (empty) results so far.
      this.reply(conn, slot, xid, ErrorCode.MARSHALLINGERROR, body.type, { results: [] });
      return;
    }
    const ctx = { sessionId: conn.sessionId!, auth: conn.auth };
    const result = this.tree.read(body, ctx);
    switch (body.type) {
      case OpCode.exists:
        if (body.watch) this.watches.addData(body.path, w);
        break;
      case OpCode.getData:
        if (body.watch && result.err === 0) this.watches.addData(body.path, w);
        break;
      case OpCode.getChildren:
      case OpCode.getChildren2:
        if (body.watch && result.err === 0) this.watches.addChild(body.path, w);
        break;
      // multiRead registers no watches: ZooKeeper 3.8 runs its ops with the watch flag cleared.
    }
    this.reply(conn, slot, xid, result.err, body.type, result.response);
  }

  // ---- apply ------------------------------------------------------------------

  /** Applies a committed transaction: tree, then watch events, then the proposer's reply. */
  private applyCommitted(txn: Txn, ref: Ref | undefined): void {
    const result = this.tree.apply(txn);
    for (const ev of result.events) {
      for (const n of this.watches.trigger(ev.type, ev.path)) {
        // As ZooKeeper does, a watcher without READ on the node does not hear of it (the watch is used up all the same).
        const conn = this.conns.get(n.watcher);
        if (conn && checkPerm(ev.acl, Perms.READ, conn.auth)) this.notify(n);
      }
    }
    const body = txn.body;
    if (body.type === OpCode.createSession && ref?.kind !== 'create-session') {
      this.tracker.add(txn.sessionId, body.timeoutMs, this.clock.now());
    }
    if (body.type === OpCode.closeSession) {
      const conn = this.tracker.attachment(txn.sessionId);
      this.tracker.remove(txn.sessionId);
      if (conn && ref?.kind !== 'close-session') {
        // Expired (or closed elsewhere): the client learns it when it reconnects.
        conn.sessionId = undefined;
        this.closeConnection(conn, 'session closed');
      }
    }
    if (!ref) return;
    switch (ref.kind) {
      case 'create-session': {
        const { conn, timeoutMs, withReadOnly } = ref;
        this.tracker.add(txn.sessionId, timeoutMs, this.clock.now());
        if (conn.state !== 'creating') return; // closed: the session lives on and may be reattached
        conn.state = 'open';
        this.attach(conn, txn.sessionId, timeoutMs);
        conn.lastOp = 'SESS';
        conn.lastZxid = txn.zxid;
        conn.send(
          encodeConnectResponse(
            { protocolVersion: 0, timeOut: timeoutMs, sessionId: txn.sessionId, passwd: this.tree.sessions.get(txn.sessionId)!.password, readOnly: false },
            withReadOnly,
          ),
        );
        if (!ref.later) return this.markDirty(conn);
        this.afterConnect(conn);
        return;
      }
      case 'close-session':
        ref.slot.closeAfter = true;
        this.reply(ref.conn, ref.slot, ref.xid, 0, OpCode.closeSession, undefined, txn.zxid);
        this.pump(ref.conn);
        return;
      case 'request':
        this.reply(ref.conn, ref.slot, ref.xid, result.err, ref.type, result.response, txn.zxid);
        this.pump(ref.conn);
        return;
    }
  }

  /**
   * Queues a watch event behind the replies this connection already has and ahead of
   * those still waiting: a reply answered before the change was made leaves first, and
   * the client hears of the change before any reply that could show the new value.
   */
  private notify(n: Notification): void {
    const conn = this.conns.get(n.watcher);
    if (!conn || conn.state !== 'open') return;
    // ZooKeeper 3.8 sends events with zxid -1.
    conn.insertEvent({ reply: encodeNotification(-1, { type: n.type, state: KeeperState.SyncConnected, path: n.path }), run: undefined, startedAt: -1, closeAfter: false });
    this.markDirty(conn);
  }

  // ---- output -----------------------------------------------------------------

  /** Moves finished replies to the output and schedules a write. */
  private pump(conn: Connection): void {
    this.drainSlots(conn);
    this.markDirty(conn);
  }

  private markDirty(conn: Connection): void {
    this.dirty.add(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushAll());
    }
  }

  private flushAll(): void {
    this.flushScheduled = false;
    for (const conn of this.dirty) this.flush(conn);
    this.dirty.clear();
  }

  private flush(conn: Connection): void {
    this.writeOut(conn);
    this.maybeResume(conn);
  }

  /** Writes everything queued for a connection in one go. */
  private writeOut(conn: Connection): void {
    this.drainSlots(conn);
    if (conn.out && conn.state !== 'closed') {
      if (this.queuedOutput(conn) > CLOSE_OUTPUT_BYTES) {
        // Only watch events can pile up this far past the point where reading stops.
        this.closeConnection(conn, `client does not read: ${this.queuedOutput(conn)} bytes queued`);
        return;
      }
      const queued = this.transport.write(conn.id, conn.takeOut()!);
      // Monotonic, as ZooKeeper's lresp.
      conn.lastResponseAt = Math.round(this.clock.now());
      if (queued < 0) {
        // The connection went away under us; its close may not have been reported yet.
        this.onClosed(conn);
        return;
      }
      conn.queued = queued;
    }
    if (conn.state === 'closing') this.transport.end(conn.id);
  }

  /** Moves finished replies from the head of the queue to the output, running reads that became ready. */
  private drainSlots(conn: Connection): void {
    while (conn.slots.length > 0) {
      const head = conn.slots[0];
      if (head.reply === undefined) {
        const run = head.run;
        if (!run) break;
        head.run = undefined;
        run();
        // Look at the head again: the read may have queued watch events ahead of its reply.
        continue;
      }
      conn.shiftSlot();
      this.sendReply(conn, head.reply, head.startedAt);
      if (head.closeAfter) {
        conn.state = 'closing';
        conn.dropSlots();
      }
    }
  }

  /** Queues a reply for the next write, with its latency; startedAt -1 for a watch event. */
  private sendReply(conn: Connection, frame: Buffer, startedAt: number): void {
    conn.send(frame);
    this.sent++;
    if (startedAt < 0) return;
    const ms = this.clock.now() - startedAt;
    conn.recordLatency(ms);
    this.recordLatency(ms);
  }

  /** Takes frames again once the client has read enough of its output and enough requests are done. */
  private maybeResume(conn: Connection): void {
    if (
      conn.paused &&
      (conn.state === 'connecting' || conn.state === 'open') &&
      conn.slots.length < this.config.maxPendingPerConnection / 2 &&
      this.queuedOutput(conn) <= MAX_OUTPUT_BYTES / 2
    ) {
      this.takeFrames(conn);
    }
  }

  private recordLatency(ms: number): void {
    const v = Math.round(ms);
    const l = this.lat;
    l.min = l.count === 0 ? v : Math.min(l.min, v);
    l.max = Math.max(l.max, v);
    l.total += v;
    l.count++;
  }

  closeConnection(conn: Connection, reason: string): void {
    if (conn.state === 'closed') return;
    if (reason !== 'session closed' && reason !== 'server shutting down') {
      this.log.info('closing connection', { remote: conn.remote, sessionId: conn.sessionId !== undefined ? hex(conn.sessionId) : undefined, reason });
    }
    conn.state = 'closing';
    conn.dropPending();
    this.transport.destroy(conn.id);
    this.onClosed(conn);
  }

  private onClosed(conn: Connection): void {
    if (conn.state === 'closed') return;
    conn.state = 'closed';
    clearTimeout(conn.connectDeadline);
    this.conns.delete(conn);
    this.dirty.delete(conn);
    this.watches.removeWatcher(conn.id);
    const left = (this.perIp.get(conn.remoteAddress) ?? 1) - 1;
    if (left > 0) this.perIp.set(conn.remoteAddress, left);
    else this.perIp.delete(conn.remoteAddress);
    if (conn.sessionId !== undefined && this.tracker.attachment(conn.sessionId) === conn) this.tracker.attach(conn.sessionId, undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.tickTimer);
    clearInterval(this.containerTimer);
    for (const conn of this.conns.values()) this.closeConnection(conn, 'server shutting down');
    await Promise.all([this.transport?.close(), this.committer.close()]);
  }

  // ---- four-letter-word source ------------------------------------------------

  get outstanding(): number {
    let n = 0;
    for (const c of this.conns.values()) n += c.slots.length;
    return n;
  }
  get latency() {
    const l = this.lat;
    return { min: l.min, max: l.max, avg: l.count ? l.total / l.count : 0 };
  }
  get lastZxid(): number {
    return this.tree.lastZxid;
  }
  get nodeCount(): number {
    return this.tree.nodeCount;
  }
  get approximateDataSize(): number {
    return this.tree.approximateDataSize;
  }
  get ephemeralCount(): number {
    return this.tree.ephemeralCount;
  }
  get sessionCount(): number {
    return this.tracker.size;
  }
  get transportKind(): TransportKind | undefined {
    return this.transport?.kind;
  }
  get uptimeMs(): number {
    return this.clock.now() - this.startedAt;
  }
  connections() {
    const now = this.clock.now();
    const wall = Date.now();
    return this.conns.values()
      .filter((c) => c.state !== 'new')
      .map((c) => {
        const bucket = c.sessionId !== undefined ? this.tracker.expiresAt(c.sessionId) : undefined;
        return c.info(wall + (bucket ?? now + this.config.maxSessionTimeout) - now);
      });
  }
  watchSummary() {
    return this.watches.summary();
  }
  get watchCount(): number {
    return this.watches.count();
  }
  watchesByConnection() {
    const out = new Map<bigint, string[]>();
    for (const w of this.watches.watchers()) {
      const conn = this.conns.get(w);
      if (conn?.sessionId !== undefined) out.set(conn.sessionId, this.watches.pathsOf(w));
    }
    return out;
  }
  watchesByPath() {
    const out = new Map<string, bigint[]>();
    for (const path of this.watches.paths()) {
      const sids = this.watches
        .watchersOf(path)
        .map((w) => this.conns.get(w)?.sessionId)
        .filter((s): s is bigint => s !== undefined);
      out.set(path, sids);
    }
    return out;
  }
  sessions() {
    const now = this.clock.now();
    const wall = Date.now();
    return [...this.tracker.entries()].filter((e) => e.expiresAt >= 0).map((e) => ({ id: e.id, timeoutMs: e.timeoutMs, expiresAt: wall + e.expiresAt - now }));
  }
  ephemeralsBySession() {
    const out = new Map<bigint, string[]>();
    for (const [sid, paths] of this.tree.allEphemerals()) out.set(sid, [...paths]);
    return out;
  }
  resetConnectionStats(): void {
    for (const c of this.conns.values()) c.resetStats();
  }
  resetServerStats(): void {
    this.received = 0;
    this.sent = 0;
    this.lat = { min: 0, max: 0, total: 0, count: 0 };
  }
}

/** A chunk that is exactly one ping frame: length 8, the ping xid, type ping. */
function isLonePing(chunk: Buffer): boolean {
  return chunk.length === 12 && chunk.readInt32BE(0) === 8 && chunk.readInt32BE(4) === Xid.ping && chunk.readInt32BE(8) === OpCode.ping;
}

/** The opcodes ZooKeeper 3.8 accepts from a client (Request.isValid, with auth and sasl); others close the connection. */
const KNOWN_OPS = new Set<number>([
  OpCode.create, OpCode.delete, OpCode.exists, OpCode.getData, OpCode.setData, OpCode.getACL, OpCode.setACL,
  OpCode.getChildren, OpCode.sync, OpCode.getChildren2, OpCode.check, OpCode.multi, OpCode.create2, OpCode.reconfig,
  OpCode.checkWatches, OpCode.removeWatches, OpCode.createContainer, OpCode.deleteContainer, OpCode.createTTL,
  OpCode.multiRead, OpCode.auth, OpCode.setWatches, OpCode.sasl, OpCode.getEphemerals, OpCode.getAllChildrenNumber,
  OpCode.setWatches2, OpCode.addWatch, OpCode.whoAmI, OpCode.createSession, OpCode.closeSession,
]);

/** cons's lop: ZooKeeper's four-letter name of each operation. */
const LAST_OP = new Map<number, string>(Object.values(OpCode).map((t) => [t, opName(t).toUpperCase().slice(0, 4)]));

/** Requests ZooKeeper turns into a transaction: one it cannot read still uses up a zxid. */
const WRITE_OPS = new Set<number>([
  OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL, OpCode.delete, OpCode.deleteContainer,
  OpCode.setData, OpCode.setACL, OpCode.check, OpCode.multi, OpCode.reconfig, OpCode.createSession,
]);

/** Requests whose null path ZooKeeper refuses with MARSHALLINGERROR (for the others a null path reads as ""). */
const NULL_PATH_REFUSED = new Set<number>([
  OpCode.exists, OpCode.getData, OpCode.getChildren, OpCode.getChildren2, OpCode.getACL, OpCode.getAllChildrenNumber,
  OpCode.checkWatches, OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL, OpCode.delete,
]);

const READ_OPS_IN_MULTI = new Set<number>([OpCode.getData, OpCode.getChildren]);

/**
 * A request's body, or the error ZooKeeper 3.8 answers when it cannot take it: a body
 * it cannot read (trailing bytes are ignored, as there), a read inside multi or reads and
 * writes mixed in multiRead, an unknown watcher type or watch mode. auth and sasl bodies that
 * cannot be read throw: ZooKeeper closes the connection for those.
 */
function readBody(type: number, r: JuteReader, frame: Buffer): RequestBody | number {
  if (type === OpCode.createSession) return ErrorCode.MARSHALLINGERROR;
  if (NULL_PATH_REFUSED.has(type) && frame.length >= 12 && frame.readInt32BE(8) === -1) return ErrorCode.MARSHALLINGERROR;
  let body: RequestBody;
  try {
    body = decodeRequestBody(type, r);
  } catch (e) {
    if (!(e instanceof DecodeError) || type === OpCode.auth || type === OpCode.sasl) throw e;
    return ErrorCode.MARSHALLINGERROR;
  }
  switch (body.type) {
    case OpCode.multi:
    case OpCode.multiRead: {
      // ZooKeeper cannot read a multi that mixes reads and writes, and multi refuses reads.
      const reads = body.ops.filter((op) => READ_OPS_IN_MULTI.has(op.type)).length;
      return reads > 0 && (reads < body.ops.length || body.type === OpCode.multi) ? ErrorCode.MARSHALLINGERROR : body;
    }
    case OpCode.checkWatches:
    case OpCode.removeWatches:
      return body.watcherType >= WatcherType.Children && body.watcherType <= WatcherType.Any ? body : ErrorCode.MARSHALLINGERROR;
    case OpCode.addWatch:
      return body.mode === AddWatchMode.PERSISTENT || body.mode === AddWatchMode.PERSISTENT_RECURSIVE ? body : ErrorCode.MARSHALLINGERROR;
  }
  return body;
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  readonly connectionString: string;
  readonly server: ZooServer;
  close(): Promise<void>;
}

/** Starts a server listening on config.host:config.port (port 0 picks a free one). */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { config } = opts;
  const zoo = new ZooServer(config, opts);
  await zoo.committer.start?.();
  try {
    zoo.attachTransport(await listenForClients({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG, kind: opts.transport }, zoo.transportEvents));
  } catch (e) {
    // A member that cannot serve clients must not stay on in the ensemble either.
    await zoo.close();
    throw e;
  }
  zoo.startTimers();
  opts.logger?.info('server started', { host: config.host, port: zoo.clientPort, transport: zoo.transportKind, tickTime: config.tickTime, dataDir: config.dataDir });
  const host = config.host;
  let closing: Promise<void> | undefined;
  return {
    host,
    port: zoo.clientPort,
    connectionString: `${host.includes(':') ? `[${host}]` : host}:${zoo.clientPort}`,
    server: zoo,
    close() {
      closing ??= (async () => {
        await zoo.close();
        opts.logger?.info('server stopped');
      })();
      return closing;
    },
  };
}
