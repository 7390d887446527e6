/**
 * The records of ZooKeeper 3.8's client protocol (zookeeper.jute) and their
 * encodings. Requests and responses are discriminated unions keyed by opcode, so
 * the server decodes requests and encodes responses, and the client the reverse,
 * with the same tables.
 */
import { DecodeError, JuteReader, JuteWriter } from './jute.js';
import { OpCode, Xid } from './opcodes.js';

export interface Id {
  scheme: string;
  id: string;
}

export interface ACL {
  perms: number;
  id: Id;
}

export interface Stat {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: number;
}

export interface ConnectRequest {
  protocolVersion: number;
  lastZxidSeen: number;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  /** Absent from old clients' requests. */
  readOnly?: boolean;
}

export interface ConnectResponse {
  protocolVersion: number;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  readOnly: boolean;
}

export interface RequestHeader {
  xid: number;
  type: number;
}

export interface ReplyHeader {
  xid: number;
  zxid: number;
  err: number;
}

export interface WatcherEvent {
  type: number;
  state: number;
  path: string;
}

export interface ClientInfo {
  authScheme: string;
  user: string;
}

// ---- request bodies -------------------------------------------------------

type Op = typeof OpCode;
export interface CreateRequest {
  type: Op['create'] | Op['create2'] | Op['createContainer'];
  path: string;
  data: Buffer;
  acl: ACL[];
  flags: number;
}
export interface CreateTTLRequest {
  type: Op['createTTL'];
  path: string;
  data: Buffer;
  acl: ACL[];
  flags: number;
  ttl: number;
}
export interface DeleteRequest {
  type: Op['delete'] | Op['deleteContainer'];
  path: string;
  version: number;
}
export interface PathWatchRequest {
  type: Op['exists'] | Op['getData'] | Op['getChildren'] | Op['getChildren2'];
  path: string;
  watch: boolean;
}
export interface SetDataRequest {
  type: Op['setData'];
  path: string;
  data: Buffer;
  version: number;
}
export interface PathRequest {
  type: Op['getACL'] | Op['sync'] | Op['getAllChildrenNumber'];
  path: string;
}
export interface SetACLRequest {
  type: Op['setACL'];
  path: string;
  acl: ACL[];
  version: number;
}
export interface CheckVersionRequest {
  type: Op['check'];
  path: string;
  version: number;
}
export interface GetEphemeralsRequest {
  type: Op['getEphemerals'];
  prefixPath: string;
}
export interface AddWatchRequest {
  type: Op['addWatch'];
  path: string;
  mode: number;
}
export interface WatchTypeRequest {
  type: Op['checkWatches'] | Op['removeWatches'];
  path: string;
  watcherType: number;
}
export interface ReconfigRequest {
  type: Op['reconfig'];
  joiningServers: string | null;
  leavingServers: string | null;
  newMembers: string | null;
  curConfigId: number;
}
export interface SetWatchesRequest {
  type: Op['setWatches'] | Op['setWatches2'];
  relativeZxid: number;
  dataWatches: string[];
  existWatches: string[];
  childWatches: string[];
  /** setWatches2 only. */
  persistentWatches: string[];
  persistentRecursiveWatches: string[];
}
export interface AuthRequest {
  type: Op['auth'];
  authType: number;
  scheme: string;
  auth: Buffer;
}
export interface EmptyRequest {
  type: Op['ping'] | Op['closeSession'] | Op['whoAmI'];
}
export interface SaslRequest {
  type: Op['sasl'];
  token: Buffer;
}
/** An op inside multi/multiRead. */
export type MultiOp = CreateRequest | CreateTTLRequest | DeleteRequest | SetDataRequest | CheckVersionRequest | PathWatchRequest;
export interface MultiRequest {
  type: Op['multi'] | Op['multiRead'];
  ops: MultiOp[];
}

export type RequestBody =
  | CreateRequest
  | CreateTTLRequest
  | DeleteRequest
  | PathWatchRequest
  | SetDataRequest
  | PathRequest
  | SetACLRequest
  | CheckVersionRequest
  | GetEphemeralsRequest
  | AddWatchRequest
  | WatchTypeRequest
  | ReconfigRequest
  | SetWatchesRequest
  | AuthRequest
  | EmptyRequest
  | SaslRequest
  | MultiRequest;

// ---- response bodies ------------------------------------------------------

export interface PathResponse {
  path: string;
}
export interface Create2Response {
  path: string;
  stat: Stat;
}
export interface StatResponse {
  stat: Stat;
}
export interface DataResponse {
  data: Buffer | null;
  stat: Stat;
}
export interface ChildrenResponse {
  children: string[];
}
export interface Children2Response {
  children: string[];
  stat: Stat;
}
export interface ACLResponse {
  acl: ACL[];
  stat: Stat;
}
export interface CountResponse {
  totalNumber: number;
}
export interface EphemeralsResponse {
  ephemerals: string[];
}
export interface WhoAmIResponse {
  clientInfo: ClientInfo[];
}
/** sasl's answer (SetSASLResponse). */
export interface SaslResponse {
  token: Buffer | null;
}
export interface ConfigDataResponse {
  data: Buffer | null;
  stat: Stat;
}
/** One result of multi/multiRead: the op's type (or -1 for an error) with its body. */
export type MultiResult =
  | { type: typeof OpCode.error; err: number }
  | { type: Op['create']; path: string }
  | { type: Op['create2'] | Op['createContainer'] | Op['createTTL']; path: string; stat: Stat }
  | { type: Op['delete'] | Op['check'] }
  | { type: Op['setData']; stat: Stat }
  | { type: Op['getData']; data: Buffer | null; stat: Stat }
  | { type: Op['getChildren']; children: string[] };
export interface MultiResponse {
  results: MultiResult[];
}

export type ResponseBody =
  | PathResponse
  | Create2Response
  | StatResponse
  | DataResponse
  | ChildrenResponse
  | Children2Response
  | ACLResponse
  | CountResponse
  | EphemeralsResponse
  | WhoAmIResponse
  | SaslResponse
  | MultiResponse
  | Record<string, never>;

// ---- record codecs --------------------------------------------------------

export function writeStat(w: JuteWriter, s: Stat): void {
  w.long(s.czxid).long(s.mzxid).long(s.ctime).long(s.mtime);
  w.int(s.version).int(s.cversion).int(s.aversion);
  w.longBig(s.ephemeralOwner).int(s.dataLength).int(s.numChildren).long(s.pzxid);
}

export function readStat(r: JuteReader): Stat {
  return {
    czxid: r.long(),
    mzxid: r.long(),
    ctime: r.long(),
    mtime: r.long(),
    version: r.int(),
    cversion: r.int(),
    aversion: r.int(),
    ephemeralOwner: r.longBig(),
    dataLength: r.int(),
    numChildren: r.int(),
    pzxid: r.long(),
  };
}

export function writeACL(w: JuteWriter, a: ACL): void {
  w.int(a.perms).ustring(a.id.scheme).ustring(a.id.id);
}

export function readACL(r: JuteReader): ACL {
  return { perms: r.int(), id: { scheme: r.string(), id: r.string() } };
}

const readACLs = (r: JuteReader): ACL[] => r.vector(readACL, 12) ?? [];
const writeACLs = (w: JuteWriter, acl: readonly ACL[] | null) => w.vector(acl, writeACL);

export function readConnectRequest(r: JuteReader): ConnectRequest {
  const req: ConnectRequest = {
    protocolVersion: r.int(),
    lastZxidSeen: r.long(),
    timeOut: r.int(),
    sessionId: r.longBig(),
    passwd: r.buffer() ?? Buffer.alloc(0),
  };
  if (r.remaining > 0) req.readOnly = r.bool();
  return req;
}

export function writeConnectRequest(w: JuteWriter, c: ConnectRequest): void {
  w.int(c.protocolVersion).long(c.lastZxidSeen).int(c.timeOut).longBig(c.sessionId).buffer(c.passwd);
  if (c.readOnly !== undefined) w.bool(c.readOnly);
}

export function readConnectResponse(r: JuteReader): ConnectResponse {
  const res: ConnectResponse = {
    protocolVersion: r.int(),
    timeOut: r.int(),
    sessionId: r.longBig(),
    passwd: r.buffer() ?? Buffer.alloc(0),
    readOnly: false,
  };
  if (r.remaining > 0) res.readOnly = r.bool();
  return res;
}

/** withReadOnly: old clients, whose ConnectRequest had no readOnly flag, get no flag back either. */
export function writeConnectResponse(w: JuteWriter, c: ConnectResponse, withReadOnly = true): void {
  w.int(c.protocolVersion).int(c.timeOut).longBig(c.sessionId).buffer(c.passwd);
  if (withReadOnly) w.bool(c.readOnly);
}

export function readRequestHeader(r: JuteReader): RequestHeader {
  return { xid: r.int(), type: r.int() };
}

export function readReplyHeader(r: JuteReader): ReplyHeader {
  return { xid: r.int(), zxid: r.long(), err: r.int() };
}

export function readWatcherEvent(r: JuteReader): WatcherEvent {
  return { type: r.int(), state: r.int(), path: r.string() };
}

// ---- request bodies -------------------------------------------------------

function readMultiOps(r: JuteReader): MultiOp[] {
  const ops: MultiOp[] = [];
  for (;;) {
    const type = r.int();
    const done = r.bool();
    r.int(); // err, always -1 in requests
    if (done) break;
    if (type === OpCode.multi || type === OpCode.multiRead) throw new DecodeError('nested multi');
    ops.push(decodeRequestBody(type, r) as MultiOp);
  }
  return ops;
}

/** Decodes the body that follows a RequestHeader of the given type. */
export function decodeRequestBody(type: number, r: JuteReader): RequestBody {
  switch (type) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
      return { type, path: r.string(), data: r.buffer() ?? EMPTY, acl: readACLs(r), flags: r.int() };
    case OpCode.createTTL:
      return { type, path: r.string(), data: r.buffer() ?? EMPTY, acl: readACLs(r), flags: r.int(), ttl: r.long() };
    case OpCode.delete:
    case OpCode.deleteContainer:
      return type === OpCode.delete ? { type, path: r.string(), version: r.int() } : { type, path: r.string(), version: -1 };
    case OpCode.exists:
    case OpCode.getData:
    case OpCode.getChildren:
    case OpCode.getChildren2:
      return { type, path: r.string(), watch: r.bool() };
    case OpCode.setData:
      return { type, path: r.string(), data: r.buffer() ?? EMPTY, version: r.int() };
    case OpCode.getACL:
    case OpCode.sync:
    case OpCode.getAllChildrenNumber:
      return { type, path: r.string() };
    case OpCode.setACL:
      return { type, path: r.string(), acl: readACLs(r), version: r.int() };
    case OpCode.check:
      return { type, path: r.string(), version: r.int() };
    case OpCode.getEphemerals:
      return { type, prefixPath: r.string() };
    case OpCode.addWatch:
      return { type, path: r.string(), mode: r.int() };
    case OpCode.checkWatches:
    case OpCode.removeWatches:
      return { type, path: r.string(), watcherType: r.int() };
    case OpCode.reconfig:
      return { type, joiningServers: r.ustring(), leavingServers: r.ustring(), newMembers: r.ustring(), curConfigId: r.long() };
    case OpCode.setWatches:
      return {
        type,
        relativeZxid: r.long(),
        dataWatches: r.stringVector(),
        existWatches: r.stringVector(),
        childWatches: r.stringVector(),
        persistentWatches: [],
        persistentRecursiveWatches: [],
      };
    case OpCode.setWatches2:
      return {
        type,
        relativeZxid: r.long(),
        dataWatches: r.stringVector(),
        existWatches: r.stringVector(),
        childWatches: r.stringVector(),
        persistentWatches: r.stringVector(),
        persistentRecursiveWatches: r.stringVector(),
      };
    case OpCode.auth:
      return { type, authType: r.int(), scheme: r.string(), auth: r.buffer() ?? EMPTY };
    case OpCode.ping:
    case OpCode.closeSession:
    case OpCode.whoAmI:
      return { type };
    case OpCode.sasl:
      return { type, token: r.buffer() ?? EMPTY };
    case OpCode.multi:
    case OpCode.multiRead:
      return { type, ops: readMultiOps(r) };
  }
  throw new DecodeError(`unknown opcode ${type}`);
}

const EMPTY = Buffer.alloc(0);

export function encodeRequestBody(body: RequestBody, w: JuteWriter): void {
  switch (body.type) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
      w.ustring(body.path).buffer(body.data);
      writeACLs(w, body.acl);
      w.int(body.flags);
      return;
    case OpCode.createTTL:
      w.ustring(body.path).buffer(body.data);
      writeACLs(w, body.acl);
      w.int(body.flags).long(body.ttl);
      return;
    case OpCode.delete:
      w.ustring(body.path).int(body.version);
      return;
    case OpCode.deleteContainer:
      w.ustring(body.path);
      return;
    case OpCode.exists:
    case OpCode.getData:
    case OpCode.getChildren:
    case OpCode.getChildren2:
      w.ustring(body.path).bool(body.watch);
      return;
    case OpCode.setData:
      w.ustring(body.path).buffer(body.data).int(body.version);
      return;
    case OpCode.getACL:
    case OpCode.sync:
    case OpCode.getAllChildrenNumber:
      w.ustring(body.path);
      return;
    case OpCode.setACL:
      w.ustring(body.path);
      writeACLs(w, body.acl);
      w.int(body.version);
      return;
    case OpCode.check:
      w.ustring(body.path).int(body.version);
      return;
    case OpCode.getEphemerals:
      w.ustring(body.prefixPath);
      return;
    case OpCode.addWatch:
      w.ustring(body.path).int(body.mode);
      return;
    case OpCode.checkWatches:
    case OpCode.removeWatches:
      w.ustring(body.path).int(body.watcherType);
      return;
    case OpCode.reconfig:
      w.ustring(body.joiningServers).ustring(body.leavingServers).ustring(body.newMembers).long(body.curConfigId);
      return;
    case OpCode.setWatches:
    case OpCode.setWatches2:
      w.long(body.relativeZxid).stringVector(body.dataWatches).stringVector(body.existWatches).stringVector(body.childWatches);
      if (body.type === OpCode.setWatches2) w.stringVector(body.persistentWatches).stringVector(body.persistentRecursiveWatches);
      return;
    case OpCode.auth:
      w.int(body.authType).ustring(body.scheme).buffer(body.auth);
      return;
    case OpCode.ping:
    case OpCode.closeSession:
    case OpCode.whoAmI:
      return;
    case OpCode.sasl:
      w.buffer(body.token);
      return;
    case OpCode.multi:
    case OpCode.multiRead:
      for (const op of body.ops) {
        w.int(op.type).bool(false).int(-1);
        encodeRequestBody(op, w);
      }
      w.int(-1).bool(true).int(-1);
      return;
  }
}

// ---- response bodies ------------------------------------------------------

/** Encodes the body of a successful reply to a request of the given type. */
export function encodeResponseBody(type: number, body: ResponseBody, w: JuteWriter): void {
  const b = body as Record<string, unknown>;
  switch (type) {
    case OpCode.create:
    case OpCode.sync:
      w.ustring(b.path as string);
      return;
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      w.ustring(b.path as string);
      writeStat(w, b.stat as Stat);
      return;
    case OpCode.exists:
    case OpCode.setData:
    case OpCode.setACL:
      writeStat(w, b.stat as Stat);
      return;
    case OpCode.getData:
    case OpCode.reconfig:
      w.buffer(b.data as Buffer | null);
      writeStat(w, b.stat as Stat);
      return;
    case OpCode.getChildren:
      w.stringVector(b.children as string[]);
      return;
    case OpCode.getChildren2:
      w.stringVector(b.children as string[]);
      writeStat(w, b.stat as Stat);
      return;
    case OpCode.getACL:
      writeACLs(w, b.acl as ACL[]);
      writeStat(w, b.stat as Stat);
      return;
    case OpCode.getAllChildrenNumber:
      w.int(b.totalNumber as number);
      return;
    case OpCode.getEphemerals:
      w.stringVector(b.ephemerals as string[]);
      return;
    case OpCode.whoAmI:
      w.vector(b.clientInfo as ClientInfo[], (w2, c) => w2.ustring(c.authScheme).ustring(c.user));
      return;
    case OpCode.addWatch:
      // ZooKeeper answers addWatch with an ErrorResponse of 0.
      w.int(0);
      return;
    case OpCode.sasl:
      w.buffer(b.token as Buffer | null);
      return;
    case OpCode.multi:
    case OpCode.multiRead:
      for (const res of (body as MultiResponse).results) {
        if (res.type === OpCode.error) {
          w.int(-1).bool(false).int(res.err).int(res.err);
          continue;
        }
        w.int(res.type).bool(false).int(0);
        encodeResponseBody(res.type, res as ResponseBody, w);
      }
      w.int(-1).bool(true).int(-1);
      return;
    default:
      // delete, check, ping, auth, setWatches, removeWatches, checkWatches, closeSession: no body.
      return;
  }
}

export function decodeResponseBody(type: number, r: JuteReader): ResponseBody {
  switch (type) {
    case OpCode.create:
    case OpCode.sync:
      return { path: r.string() };
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return { path: r.string(), stat: readStat(r) };
    case OpCode.exists:
    case OpCode.setData:
    case OpCode.setACL:
      return { stat: readStat(r) };
    case OpCode.getData:
    case OpCode.reconfig:
      return { data: r.buffer(), stat: readStat(r) };
    case OpCode.getChildren:
      return { children: r.stringVector() };
    case OpCode.getChildren2:
      return { children: r.stringVector(), stat: readStat(r) };
    case OpCode.getACL:
      return { acl: readACLs(r), stat: readStat(r) };
    case OpCode.getAllChildrenNumber:
      return { totalNumber: r.int() };
    case OpCode.getEphemerals:
      return { ephemerals: r.stringVector() };
    case OpCode.whoAmI:
      return { clientInfo: r.vector((x) => ({ authScheme: x.string(), user: x.string() }), 8) ?? [] };
    case OpCode.addWatch:
      r.int();
      return {};
    case OpCode.sasl:
      return { token: r.buffer() };
    case OpCode.multi:
    case OpCode.multiRead: {
      const results: MultiResult[] = [];
      for (;;) {
        const t = r.int();
        const done = r.bool();
        const err = r.int();
        if (done) break;
        if (t === OpCode.error) {
          results.push({ type: OpCode.error, err: r.int() });
          continue;
        }
        results.push({ type: t, ...(decodeResponseBody(t, r) as object) } as MultiResult);
        void err;
      }
      return { results };
    }
    default:
      return {};
  }
}

// ---- whole frames ---------------------------------------------------------

/** A request frame as a client sends it (ConnectRequest has its own). */
export function encodeRequest(xid: number, body: RequestBody, w = new JuteWriter()): Buffer {
  const start = w.beginFrame();
  w.int(xid).int(body.type);
  encodeRequestBody(body, w);
  w.endFrame(start);
  return w.take();
}

export function encodeConnectRequest(c: ConnectRequest): Buffer {
  const w = new JuteWriter(64);
  const start = w.beginFrame();
  writeConnectRequest(w, c);
  w.endFrame(start);
  return w.take();
}

/**
 * Appends a reply frame to w: header, then the body when err is OK and there is one.
 * The server writes many replies into one writer and sends them together.
 */
export function writeReply(w: JuteWriter, xid: number, zxid: number, err: number, type: number, body?: ResponseBody): void {
  const start = w.beginFrame();
  w.int(xid).long(zxid).int(err);
  if (body !== undefined && (err === 0 || type === OpCode.multi || type === OpCode.multiRead)) encodeResponseBody(type, body, w);
  w.endFrame(start);
}

export function encodeReply(xid: number, zxid: number, err: number, type: number, body?: ResponseBody): Buffer {
  const w = new JuteWriter();
  writeReply(w, xid, zxid, err, type, body);
  return w.take();
}

export function writeNotification(w: JuteWriter, zxid: number, event: WatcherEvent): void {
  const start = w.beginFrame();
  w.int(Xid.notification).long(zxid).int(0);
  w.int(event.type).int(event.state).ustring(event.path);
  w.endFrame(start);
}

export function encodeNotification(zxid: number, event: WatcherEvent): Buffer {
  const w = new JuteWriter(64);
  writeNotification(w, zxid, event);
  return w.take();
}

export function encodeConnectResponse(c: ConnectResponse, withReadOnly = true): Buffer {
  const w = new JuteWriter(64);
  const start = w.beginFrame();
  writeConnectResponse(w, c, withReadOnly);
  w.endFrame(start);
  return w.take();
}
