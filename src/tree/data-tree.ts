/**
 * The data tree: znodes, their Stat, ephemerals by session, and the rules of every
 * operation. A pure state machine: apply(txn) changes it deterministically and
 * reports the result and the watch events; read() never changes it.
 */
import { checkPerm, fixupAcl, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, redactDigests, type AuthId } from '../acl/acl.js';
import { ErrorCode } from '../protocol/errors.js';
import {
  EventType,
  isEphemeralMode,
  isSequentialMode,
  isTTLMode,
  isValidCreateMode,
  OpCode,
  Perms,
} from '../protocol/opcodes.js';
import type { ACL, MultiOp, MultiResult, RequestBody, ResponseBody, Stat } from '../protocol/records.js';
import { invalidPathReason, joinPath, parentOf } from './path.js';
import { SessionTable, type SessionInfo } from './session-table.js';
import type { Txn, WriteBody } from './txn.js';

/** ephemeralOwner of container nodes (EphemeralType.CONTAINER). */
export const CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000n;
/** TTL nodes keep 0xFF in the owner's top byte and the TTL below (EphemeralType.TTL). */
const TTL_OWNER_MASK = -0x100000000000000n; // 0xFF00000000000000 as a signed long
export const MAX_TTL = 0x00ffffffffffn;

export interface TreeEvent {
  type: EventType;
  path: string;
  /** ACL of the node the event is about: a watcher needs READ on it to hear the event. */
  acl: ACL[];
}

export interface ApplyResult {
  err: number;
  response?: ResponseBody;
  events: TreeEvent[];
}

export interface ReadResult {
  err: number;
  response?: ResponseBody;
}

export type { SessionInfo } from './session-table.js';

export interface ReadContext {
  sessionId: bigint;
  auth: readonly AuthId[];
}

export class ZNode {
  data: Buffer;
  acl: ACL[];
  readonly children = new Set<string>();
  czxid: number;
  mzxid: number;
  pzxid: number;
  ctime: number;
  mtime: number;
  version = 0;
  /**
   * Children ever created (ZooKeeper's persisted cversion). Sequence suffixes use it;
   * clients see cversion = 2 * cversion - numChildren, i.e. creates plus deletes.
   */
  cversion = 0;
  aversion = 0;
  ephemeralOwner: bigint;
  /** The snapshot (by epoch) that has already saved or emitted this node; see snapshot.ts. */
  snapshotEpoch = 0;

  constructor(data: Buffer, acl: ACL[], zxid: number, time: number, ephemeralOwner: bigint) {
    this.data = data;
    this.acl = acl;
    this.czxid = this.mzxid = this.pzxid = zxid;
    this.ctime = this.mtime = time;
    this.ephemeralOwner = ephemeralOwner;
  }

  stat(): Stat {
    return {
      czxid: this.czxid,
      mzxid: this.mzxid,
      ctime: this.ctime,
      mtime: this.mtime,
      version: this.version,
      cversion: this.cversion * 2 - this.children.size,
      aversion: this.aversion,
      // Clients see an owner only for session ephemerals, not the container/TTL markers.
      ephemeralOwner: this.isEphemeral ? this.ephemeralOwner : 0n,
      dataLength: this.data.length,
      numChildren: this.children.size,
      pzxid: this.pzxid,
    };
  }

  get isContainer(): boolean {
    return this.ephemeralOwner === CONTAINER_EPHEMERAL_OWNER;
  }

  /** TTL in ms for TTL nodes, else undefined. */
  get ttl(): number | undefined {
    return (this.ephemeralOwner & TTL_OWNER_MASK) === TTL_OWNER_MASK && !this.isContainer
      ? Number(this.ephemeralOwner & MAX_TTL)
      : undefined;
  }

  /** A session-owned ephemeral (not a container or TTL node, which reuse the owner field). */
  get isEphemeral(): boolean {
    return this.ephemeralOwner !== 0n && !this.isContainer && this.ttl === undefined;
  }
}

/** Nodes that cannot be deleted (ZooKeeper's special paths). */
const SPECIAL = new Set(['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config']);

type Undo = () => void;

class OpError {
  constructor(readonly code: number) {}
}
const fail = (code: number): never => {
  throw new OpError(code);
};

export interface DataTreeOptions {
  extendedTypesEnabled?: boolean;
}

/** Saves a node's state before its first change while a snapshot is in progress. */
export type PreImageSaver = (path: string, node: ZNode) => void;

export class DataTree {
  private nodes = new Map<string, ZNode>();
  private readonly ephemerals = new Map<bigint, Set<string>>();
  /** Sessions created and not yet closed, with their timeouts and passwords. */
  readonly sessions = new SessionTable();
  /**
   * The highest proposal number applied from each proposing member. A member re-proposes
   * writes whose fate a leader change left open; a number at or below this is a copy of
   * one already applied, and is skipped (see acceptProposal).
   */
  readonly proposers = new Map<number, number>();
  lastZxid = 0;
  private dataBytes = 0;
  extendedTypesEnabled: boolean;
  /** Set only while a snapshot is in progress, so writes pay one null check otherwise. */
  private savePreImage: PreImageSaver | null = null;
  private snapshotEpoch = 0;

  constructor(opts: DataTreeOptions = {}) {
    this.extendedTypesEnabled = opts.extendedTypesEnabled ?? false;
    // The system nodes with the Stat a fresh Apache ZooKeeper 3.8 shows for them.
    this.nodes.set('/', new ZNode(Buffer.alloc(0), OPEN_ACL_UNSAFE, 0, 0, 0n));
    this.addSystemNode('/zookeeper', OPEN_ACL_UNSAFE);
    this.addSystemNode('/zookeeper/quota', OPEN_ACL_UNSAFE);
    this.addSystemNode('/zookeeper/config', READ_ACL_UNSAFE).aversion = -1;
  }

  private addSystemNode(path: string, acl: ACL[]): ZNode {
    const node = new ZNode(Buffer.alloc(0), acl, 0, 0, 0n);
    this.nodes.set(path, node);
    this.nodes.get(parentOf(path))!.children.add(path.slice(path.lastIndexOf('/') + 1));
    return node;
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  /** Sum of path and data lengths, as ZooKeeper's approximate data size. */
  get approximateDataSize(): number {
    return this.dataBytes;
  }

  get(path: string): ZNode | undefined {
    return this.nodes.get(path);
  }

  /** Reads find the root under "" too, as ZooKeeper keeps it under both names. */
  private lookup(path: string): ZNode | undefined {
    return this.nodes.get(path === '' ? '/' : path);
  }

  /** Existence and zxids, for setWatches catch-up. */
  stat(path: string): { mzxid: number; pzxid: number } | undefined {
    return this.nodes.get(path);
  }

  ephemeralsOf(sessionId: bigint): ReadonlySet<string> {
    return this.ephemerals.get(sessionId) ?? new Set();
  }

  allEphemerals(): ReadonlyMap<bigint, ReadonlySet<string>> {
    return this.ephemerals;
  }

  get ephemeralCount(): number {
    let n = 0;
    for (const s of this.ephemerals.values()) n += s.size;
    return n;
  }

  /** Empty containers that once had children, and TTL nodes past their TTL (ZooKeeper's ContainerManager). */
  deletionCandidates(now: number): string[] {
    const out: string[] = [];
    for (const [path, node] of this.nodes) {
      if (node.children.size > 0) continue;
      if (node.isContainer) {
        if (node.cversion > 0) out.push(path);
      } else {
        const ttl = node.ttl;
        if (ttl !== undefined && now - node.mtime > ttl) out.push(path);
      }
    }
    return out;
  }

  // ---- reads ----------------------------------------------------------------

  read(body: RequestBody, ctx: ReadContext): ReadResult {
    switch (body.type) {
      case OpCode.exists: {
        const node = this.lookup(body.path);
        return node ? { err: 0, response: { stat: node.stat() } } : { err: ErrorCode.NONODE };
      }
      case OpCode.getData: {
        const node = this.lookup(body.path);
        if (!node) return { err: ErrorCode.NONODE };
        if (!checkPerm(node.acl, Perms.READ, ctx.auth)) return { err: ErrorCode.NOAUTH };
        return { err: 0, response: { data: node.data, stat: node.stat() } };
      }
      case OpCode.getChildren:
      case OpCode.getChildren2: {
        const node = this.lookup(body.path);
        if (!node) return { err: ErrorCode.NONODE };
        if (!checkPerm(node.acl, Perms.READ, ctx.auth)) return { err: ErrorCode.NOAUTH };
        const children = [...node.children];
        return { err: 0, response: body.type === OpCode.getChildren ? { children } : { children, stat: node.stat() } };
      }
      case OpCode.getACL: {
        const node = this.lookup(body.path);
        if (!node) return { err: ErrorCode.NONODE };
        if (!checkPerm(node.acl, Perms.READ | Perms.ADMIN, ctx.auth)) return { err: ErrorCode.NOAUTH };
        const acl = checkPerm(node.acl, Perms.ADMIN, ctx.auth) ? node.acl : redactDigests(node.acl);
        return { err: 0, response: { acl, stat: node.stat() } };
      }
      case OpCode.getAllChildrenNumber: {
        const node = this.lookup(body.path);
        if (!node) return { err: ErrorCode.NONODE };
        if (!checkPerm(node.acl, Perms.READ, ctx.auth)) return { err: ErrorCode.NOAUTH };
        // ZooKeeper counts the keys under path + "/"; for "" that takes in the root itself.
        const totalNumber = body.path === '' ? this.nodes.size : this.countDescendants(body.path, node);
        return { err: 0, response: { totalNumber } };
      }
      case OpCode.getEphemerals: {
        const prefix = body.prefixPath;
        const ephemerals = [...this.ephemeralsOf(ctx.sessionId)].filter((p) => p.startsWith(prefix));
        return { err: 0, response: { ephemerals } };
      }
      case OpCode.multiRead: {
        const results: MultiResult[] = body.ops.map((op) => {
          if (op.type !== OpCode.getData && op.type !== OpCode.getChildren) return { type: OpCode.error, err: ErrorCode.BADARGUMENTS };
          const r = this.read(op, ctx);
          if (r.err !== 0) return { type: OpCode.error, err: r.err };
          return { type: op.type, ...(r.response as object) } as MultiResult;
        });
        return { err: 0, response: { results } };
      }
    }
    return { err: ErrorCode.UNIMPLEMENTED };
  }

  private countDescendants(path: string, node: ZNode): number {
    let n = 0;
    for (const child of node.children) {
      const p = joinPath(path, child);
      n += 1 + this.countDescendants(p, this.nodes.get(p)!);
    }
    return n;
  }

  // ---- writes ---------------------------------------------------------------

  /**
   * The ensemble's membership, written at `zxid`: /zookeeper/config gets the members'
   * lines and the config version (the zxid in hex). As ZooKeeper writes it (a setData of
   * version -1), its data version reads -1 afterwards.
   */
  private setConfig(members: string, zxid: number, time: number): TreeEvent[] {
    const path = '/zookeeper/config';
    const node = this.nodes.get(path)!;
    const data = Buffer.from(`${members}\nversion=${zxid.toString(16)}`);
    if (this.savePreImage !== null) this.preserve(path, node);
    this.dataBytes += data.length - node.data.length;
    node.data = data;
    node.version = -1;
    node.mzxid = zxid;
    node.mtime = time;
    return [{ type: EventType.NodeDataChanged, path, acl: node.acl }];
  }

  /** The members' lines /zookeeper/config shows now (without the version line). */
  configMembers(): string {
    return this.nodes.get('/zookeeper/config')!.data.toString().replace(/\n?version=[0-9a-f]+$/, '');
  }

  apply(txn: Txn): ApplyResult {
    this.lastZxid = Math.max(this.lastZxid, txn.zxid);
    const events: TreeEvent[] = [];
    const body = txn.body;
    switch (body.type) {
      case OpCode.createSession:
        this.sessions.set(txn.sessionId, { timeoutMs: body.timeoutMs, password: body.password });
        return { err: 0, events };
      case OpCode.closeSession:
        this.closeSession(txn, events);
        return { err: 0, events };
      case OpCode.multi:
        return this.applyMulti(txn, body.ops);
      case OpCode.reconfig:
        return { err: 0, events: this.setConfig(body.data.toString(), txn.zxid, txn.time) };
      case OpCode.error:
        return { err: body.err, events };
    }
    const undo: Undo[] = [];
    try {
      const response = this.applyOp(txn, body, events, undo);
      return { err: 0, response, events };
    } catch (e) {
      if (!(e instanceof OpError)) throw e;
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
      return { err: e.code, events: [] };
    }
  }

  private closeSession(txn: Txn, events: TreeEvent[]): void {
    const paths = this.ephemerals.get(txn.sessionId);
    this.sessions.delete(txn.sessionId);
    if (!paths) return;
    for (const path of [...paths].sort()) {
      if (this.nodes.has(path)) this.deleteNode(path, txn.zxid, events, []);
    }
    this.ephemerals.delete(txn.sessionId);
  }

  private applyMulti(txn: Txn, ops: MultiOp[]): ApplyResult {
    const undo: Undo[] = [];
    const events: TreeEvent[] = [];
    const results: MultiResult[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op.type === OpCode.create && isTTLMode(op.flags)) {
        // A TTL mode on a plain create cannot be decoded by ZooKeeper: the whole multi fails.
        for (let j = undo.length - 1; j >= 0; j--) undo[j]();
        return { err: ErrorCode.MARSHALLINGERROR, events: [] };
      }
      try {
        const response = this.applyOp(txn, op, events, undo);
        results.push(multiResult(op.type, response));
      } catch (e) {
        if (!(e instanceof OpError)) throw e;
        for (let j = undo.length - 1; j >= 0; j--) undo[j]();
        const failed: MultiResult[] = ops.map((_, j) => ({
          type: OpCode.error,
          err: j < i ? ErrorCode.OK : j === i ? e.code : ErrorCode.RUNTIMEINCONSISTENCY,
        }));
        return { err: 0, response: { results: failed }, events: [] };
      }
    }
    return { err: 0, response: { results }, events };
  }

  private applyOp(txn: Txn, op: WriteBody | MultiOp, events: TreeEvent[], undo: Undo[]): ResponseBody | undefined {
    switch (op.type) {
      case OpCode.create:
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL:
        return this.create(txn, op, events, undo);
      case OpCode.delete: {
        // ZooKeeper checks only for a slash, NULs and special paths here; other bad paths are just not found.
        const path = op.path;
        const lastSlash = path.lastIndexOf('/');
        if (lastSlash < 0 || path.includes('\u0000') || SPECIAL.has(path)) fail(ErrorCode.BADARGUMENTS);
        const parent = this.nodes.get(lastSlash === 0 ? '/' : path.slice(0, lastSlash));
        if (!parent) return fail(ErrorCode.NONODE);
        if (!checkPerm(parent.acl, Perms.DELETE, txn.auth)) fail(ErrorCode.NOAUTH);
        const node = this.nodes.get(path);
        if (!node) return fail(ErrorCode.NONODE);
        if (op.version !== -1 && op.version !== node.version) fail(ErrorCode.BADVERSION);
        if (node.children.size > 0) fail(ErrorCode.NOTEMPTY);
        this.deleteNode(path, txn.zxid, events, undo);
        return undefined;
      }
      case OpCode.deleteContainer: {
        // Proposed by the server itself for empty containers and expired TTL nodes.
        const node = this.nodes.get(op.path);
        if (!node) return fail(ErrorCode.NONODE);
        if (node.children.size > 0) fail(ErrorCode.NOTEMPTY);
        if (!node.isContainer && node.ttl === undefined) fail(ErrorCode.BADARGUMENTS);
        this.deleteNode(op.path, txn.zxid, events, undo);
        return undefined;
      }
      case OpCode.setData: {
        if (invalidPathReason(op.path) !== null) fail(ErrorCode.BADARGUMENTS);
        const node = this.nodes.get(op.path);
        if (!node) return fail(ErrorCode.NONODE);
        if (!checkPerm(node.acl, Perms.WRITE, txn.auth)) fail(ErrorCode.NOAUTH);
        if (op.version !== -1 && op.version !== node.version) fail(ErrorCode.BADVERSION);
        if (this.savePreImage !== null) this.preserve(op.path, node);
        const prev = { data: node.data, version: node.version, mzxid: node.mzxid, mtime: node.mtime };
        undo.push(() => {
          this.dataBytes += prev.data.length - node.data.length;
          Object.assign(node, prev);
        });
        this.dataBytes += op.data.length - node.data.length;
        // Copy: the request's buffer is a view into a socket read.
        node.data = Buffer.from(op.data);
        node.version = node.version + 1;
        node.mzxid = txn.zxid;
        node.mtime = txn.time;
        events.push({ type: EventType.NodeDataChanged, path: op.path, acl: node.acl });
        return { stat: node.stat() };
      }
      case OpCode.setACL: {
        if (invalidPathReason(op.path) !== null) fail(ErrorCode.BADARGUMENTS);
        const acl = fixupAcl(op.acl, txn.auth);
        if (typeof acl === 'number') return fail(acl);
        const node = this.nodes.get(op.path);
        if (!node) return fail(ErrorCode.NONODE);
        if (!checkPerm(node.acl, Perms.ADMIN, txn.auth)) fail(ErrorCode.NOAUTH);
        if (op.version !== -1 && op.version !== node.aversion) fail(ErrorCode.BADVERSION);
        if (this.savePreImage !== null) this.preserve(op.path, node);
        const prev = { acl: node.acl, aversion: node.aversion };
        undo.push(() => Object.assign(node, prev));
        node.acl = acl;
        node.aversion++;
        return { stat: node.stat() };
      }
      case OpCode.check: {
        if (invalidPathReason(op.path) !== null) fail(ErrorCode.BADARGUMENTS);
        const node = this.nodes.get(op.path);
        if (!node) return fail(ErrorCode.NONODE);
        if (!checkPerm(node.acl, Perms.READ, txn.auth)) fail(ErrorCode.NOAUTH);
        if (op.version !== -1 && op.version !== node.version) fail(ErrorCode.BADVERSION);
        return undefined;
      }
    }
    return fail(ErrorCode.UNIMPLEMENTED);
  }

  private create(
    txn: Txn,
    op: Extract<WriteBody | MultiOp, { type: 1 | 15 | 19 | 21 }>,
    events: TreeEvent[],
    undo: Undo[],
  ): ResponseBody {
    const flags = op.flags;
    if (!isValidCreateMode(flags)) return fail(ErrorCode.BADARGUMENTS);
    const ttl = op.type === OpCode.createTTL ? op.ttl : -1;
    if (isTTLMode(flags)) {
      if (!this.extendedTypesEnabled) fail(ErrorCode.UNIMPLEMENTED);
      if (ttl <= 0 || ttl > Number(MAX_TTL)) fail(ErrorCode.BADARGUMENTS);
    } else if (ttl >= 0) {
      fail(ErrorCode.BADARGUMENTS);
    }
    // A createTTL whose mode has no TTL makes Apache ZooKeeper 3.8 exit; here it is a bad argument.
    if (op.type === OpCode.createTTL && !isTTLMode(flags)) fail(ErrorCode.BADARGUMENTS);
    // The opcode, not the mode, makes containers and TTL nodes (create with CONTAINER makes a plain node).
    const ephemeral = op.type !== OpCode.createContainer && op.type !== OpCode.createTTL && isEphemeralMode(flags);
    if (ephemeral && !this.sessions.has(txn.sessionId)) fail(ErrorCode.SESSIONEXPIRED);
    let path = op.path;
    const lastSlash = path ? path.lastIndexOf('/') : -1;
    if (lastSlash < 0 || path.includes('\u0000')) fail(ErrorCode.BADARGUMENTS);
    const parentPath = lastSlash === 0 ? '/' : path.slice(0, lastSlash);
    const acl = fixupAcl(op.acl, txn.auth);
    if (typeof acl === 'number') return fail(acl);
    const parent = this.nodes.get(parentPath);
    if (!parent) return fail(ErrorCode.NONODE);
    if (!checkPerm(parent.acl, Perms.CREATE, txn.auth)) fail(ErrorCode.NOAUTH);
    if (isSequentialMode(flags)) path += String(parent.cversion).padStart(10, '0');
    if (invalidPathReason(path) !== null) fail(ErrorCode.BADARGUMENTS);
    if (this.nodes.has(path)) fail(ErrorCode.NODEEXISTS);
    if (parent.isEphemeral) fail(ErrorCode.NOCHILDRENFOREPHEMERALS);

    let owner = 0n;
    if (op.type === OpCode.createContainer) owner = CONTAINER_EPHEMERAL_OWNER;
    else if (op.type === OpCode.createTTL) owner = TTL_OWNER_MASK | BigInt(ttl);
    else if (ephemeral) owner = txn.sessionId;
    const node = new ZNode(Buffer.from(op.data), acl, txn.zxid, txn.time, owner);
    // A snapshot in progress leaves out nodes created after it began.
    node.snapshotEpoch = this.snapshotEpoch;
    if (this.savePreImage !== null) this.preserve(parentPath, parent);
    const name = path.slice(parentPath === '/' ? 1 : parentPath.length + 1);
    const prevParent = { cversion: parent.cversion, pzxid: parent.pzxid };
    parent.children.add(name);
    parent.cversion++;
    parent.pzxid = txn.zxid;
    this.nodes.set(path, node);
    this.dataBytes += path.length + node.data.length;
    if (owner === txn.sessionId && owner !== 0n) this.addEphemeral(owner, path);
    undo.push(() => {
      parent.children.delete(name);
      Object.assign(parent, prevParent);
      this.nodes.delete(path);
      this.dataBytes -= path.length + node.data.length;
      if (node.isEphemeral) this.removeEphemeral(owner, path);
    });
    events.push({ type: EventType.NodeCreated, path, acl }, { type: EventType.NodeChildrenChanged, path: parentPath, acl: parent.acl });
    return op.type === OpCode.create ? { path } : { path, stat: node.stat() };
  }

  private deleteNode(path: string, zxid: number, events: TreeEvent[], undo: Undo[]): void {
    const node = this.nodes.get(path)!;
    const parentPath = parentOf(path);
    const parent = this.nodes.get(parentPath)!;
    const name = path.slice(parentPath === '/' ? 1 : parentPath.length + 1);
    if (this.savePreImage !== null) {
      this.preserve(parentPath, parent);
      this.preserve(path, node);
    }
    const prevPzxid = parent.pzxid;
    parent.children.delete(name);
    if (zxid > parent.pzxid) parent.pzxid = zxid;
    this.nodes.delete(path);
    this.dataBytes -= path.length + node.data.length;
    if (node.isEphemeral) this.removeEphemeral(node.ephemeralOwner, path);
    undo.push(() => {
      parent.children.add(name);
      parent.pzxid = prevPzxid;
      this.nodes.set(path, node);
      this.dataBytes += path.length + node.data.length;
      if (node.isEphemeral) this.addEphemeral(node.ephemeralOwner, path);
    });
    events.push({ type: EventType.NodeDeleted, path, acl: node.acl }, { type: EventType.NodeChildrenChanged, path: parentPath, acl: parent.acl });
  }

  // ---- snapshot support (snapshot.ts) ------------------------------------------

  /**
   * Starts copy-on-write for a snapshot: until stopCopyOnWrite(), the first change to
   * a node whose snapshotEpoch is not the returned epoch hands the node to `save`
   * before it changes, and marks it; nodes created meanwhile are marked at creation.
   */
  startCopyOnWrite(save: PreImageSaver): number {
    if (this.savePreImage !== null) throw new Error('a snapshot of this tree is already in progress');
    this.savePreImage = save;
    return ++this.snapshotEpoch;
  }

  stopCopyOnWrite(): void {
    this.savePreImage = null;
  }

  /** Every node in insertion order; the iterator sees nodes added and removed after it was made. */
  nodeEntries(): IterableIterator<[string, ZNode]> {
    return this.nodes.entries();
  }

  private preserve(path: string, node: ZNode): void {
    if (node.snapshotEpoch === this.snapshotEpoch) return;
    node.snapshotEpoch = this.snapshotEpoch;
    this.savePreImage!(path, node);
  }

  /**
   * A tree from a snapshot's nodes, which it takes over: links every node to its
   * parent and rebuilds the ephemeral index and the data size.
   */
  /**
   * Whether a transaction proposed by `origin` as number `seq` is new, recording it if so.
   * A member numbers its proposals in increasing order and the log keeps each member's
   * proposals in that order, so anything at or below the highest applied is a repeat.
   */
  acceptProposal(origin: number, seq: number): boolean {
    if (seq <= (this.proposers.get(origin) ?? -1)) return false;
    this.proposers.set(origin, seq);
    return true;
  }

  static fromSnapshot(
    nodes: Map<string, ZNode>,
    sessions: Iterable<[bigint, SessionInfo]>,
    lastZxid: number,
    opts: DataTreeOptions = {},
    proposers: Iterable<[number, number]> = [],
  ): DataTree {
    const tree = new DataTree(opts);
    if (!nodes.has('/')) throw new Error('no root node');
    tree.nodes = nodes;
    for (const [path, node] of nodes) {
      tree.dataBytes += node.data.length;
      if (path === '/') continue;
      const parentPath = parentOf(path);
      const parent = nodes.get(parentPath);
      if (!parent) throw new Error(`node ${path} has no parent`);
      parent.children.add(path.slice(parentPath === '/' ? 1 : parentPath.length + 1));
      // Paths of the system nodes are not counted, as in a fresh tree.
      if (!SPECIAL.has(path)) tree.dataBytes += path.length;
      if (node.isEphemeral) tree.addEphemeral(node.ephemeralOwner, path);
    }
    for (const [id, info] of sessions) tree.sessions.set(id, info);
    for (const [origin, seq] of proposers) tree.proposers.set(origin, seq);
    tree.lastZxid = lastZxid;
    return tree;
  }

  private addEphemeral(owner: bigint, path: string): void {
    let set = this.ephemerals.get(owner);
    if (!set) this.ephemerals.set(owner, (set = new Set()));
    set.add(path);
  }

  private removeEphemeral(owner: bigint, path: string): void {
    const set = this.ephemerals.get(owner);
    if (!set) return;
    set.delete(path);
    if (set.size === 0) this.ephemerals.delete(owner);
  }
}

function multiResult(type: number, response: ResponseBody | undefined): MultiResult {
  // ZooKeeper reports container and TTL creates in a multi as create2 results.
  const shown = type === OpCode.createContainer || type === OpCode.createTTL ? OpCode.create2 : type;
  return { type: shown, ...(response as object) } as MultiResult;
}
