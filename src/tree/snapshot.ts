/**
 * Snapshots of the data tree, taken while writes go on.
 *
 * beginSnapshot() copies the session table and lastZxid, then walks the nodes in
 * chunks. Between chunks the caller keeps applying transactions; the tree hands over
 * the pre-image of every node the walk has not reached yet before its first change
 * (copy-on-write per node), and nodes created after the start are left out, so the
 * chunks together hold the tree exactly as it was when the snapshot began.
 *
 * The byte stream (chunks may be cut and joined anywhere when loading):
 *
 *   "PKSN" u8 version  long lastZxid
 *   records: int length (of type and payload), u8 type, payload
 *     SESSION  long id, int timeoutMs, buffer password
 *     PROPOSER int member id, long highest proposal number applied from it
 *     ACL      vector<ACL>; the n-th ACL record is ACL list n, nodes refer to it by number
 *     NODE     ustring path, buffer data, int acl, long czxid, mzxid, pzxid, ctime, mtime,
 *              int version, cversion (children ever created), aversion, long ephemeralOwner
 *     END      int nodes, int sessions, int acls, int proposers, int crc32 of every byte before this record
 *
 * Nodes come in no particular order; the loader links children once all are read.
 */
import { crc32 } from 'node:zlib';
import { DecodeError, JuteReader, JuteWriter } from '../protocol/jute.js';
import { readACL, writeACL, type ACL } from '../protocol/records.js';
import { DataTree, ZNode, type DataTreeOptions, type SessionInfo } from './data-tree.js';
import type { SessionColumns } from './session-table.js';
import { invalidPathReason } from './path.js';
import { SESSION_PASSWORD_BYTES } from './txn-codec.js';

export const SNAPSHOT_FORMAT_VERSION = 2;
/** Chunk size next() aims for when given none. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** Largest record the loader accepts unless told otherwise: far above a znode under the default jute.maxbuffer. */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;

const MAGIC = Buffer.from('PKSN');
const PREFIX_BYTES = MAGIC.length + 1 + 8;
const RecordType = { SESSION: 1, ACL: 2, NODE: 3, END: 4, PROPOSER: 5 } as const;
const RECORD_NAMES = ['', 'session', 'ACL', 'node', 'end', 'proposer'];

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** The persisted part of a znode; a ZNode is one, and so is a saved pre-image. */
type NodeImage = Pick<
  ZNode,
  'data' | 'acl' | 'czxid' | 'mzxid' | 'pzxid' | 'ctime' | 'mtime' | 'version' | 'cversion' | 'aversion' | 'ephemeralOwner'
>;

export interface SnapshotProducer {
  /** lastZxid of the tree when the snapshot began. */
  readonly lastZxid: number;
  /**
   * The next chunk: whole records up to maxBytes (a single larger record is a chunk
   * of its own), or null once the snapshot is complete.
   */
  next(maxBytes?: number): Buffer | null;
  /** Gives up: the tree stops saving pre-images and another snapshot may begin. */
  abort(): void;
}

/** Starts a snapshot of `tree`; only one can be in progress per tree. */
export function beginSnapshot(tree: DataTree): SnapshotProducer {
  return new Producer(tree);
}

class Producer implements SnapshotProducer {
  readonly lastZxid: number;
  private readonly sessions: SessionColumns;
  private sessionsWritten = 0;
  private readonly proposers: [number, number][];
  private proposersWritten = 0;
  private readonly preImages: { path: string; image: NodeImage }[] = [];
  private readonly nodes: Iterator<[string, ZNode]>;
  private readonly epoch: number;
  private readonly w = new JuteWriter(DEFAULT_CHUNK_BYTES + 4096);
  /** Start of the record being written, so a chunk can end before it. */
  private recordStart = 0;
  private readonly aclIds = new Map<string, number>();
  private lastAcl: ACL[] | undefined;
  private lastAclId = -1;
  private nodeCount = 0;
  /** crc32 of the bytes already returned. */
  private crc = 0;
  private state: 'walking' | 'ended' | 'closed' = 'walking';
  private prefixReturned = false;

  constructor(private readonly tree: DataTree) {
    this.epoch = tree.startCopyOnWrite((path, node) => this.preImages.push({ path, image: copyImage(node) }));
    this.lastZxid = tree.lastZxid;
    // The session table hands out copies, so these stay as they are now while writes go on.
    this.sessions = tree.sessions.copy();
    this.proposers = [...tree.proposers];
    this.nodes = tree.nodeEntries();
    const w = this.w;
    w.buf.set(MAGIC, 0);
    w.buf[MAGIC.length] = SNAPSHOT_FORMAT_VERSION;
    w.offset = MAGIC.length + 1;
    w.long(this.lastZxid);
  }

  next(maxBytes = DEFAULT_CHUNK_BYTES): Buffer | null {
    if (!(maxBytes >= 1)) throw new RangeError(`maxBytes must be positive, got ${maxBytes}`);
    const w = this.w;
    // Bytes left over from the previous call start this chunk (offset 0 is a record boundary).
    let cut = 0;
    while (this.state === 'walking' && w.offset <= maxBytes) {
      if (w.offset > 0) cut = w.offset;
      this.writeNextRecord();
    }
    if (this.state === 'closed' && w.offset === 0) return null;
    if (w.offset <= maxBytes) cut = w.offset;
    else if (cut === 0) cut = this.firstUnitEnd();
    const chunk = Buffer.from(w.buf.subarray(0, cut));
    w.buf.copyWithin(0, cut, w.offset);
    w.offset -= cut;
    this.crc = crc32(chunk, this.crc);
    this.prefixReturned = true;
    if (this.state === 'ended' && w.offset === 0) this.state = 'closed';
    return chunk;
  }

  abort(): void {
    if (this.state === 'walking') this.tree.stopCopyOnWrite();
    this.state = 'closed';
    this.w.reset();
  }

  /** Writes one record (an ACL record may precede a node's) or the end. */
  private writeNextRecord(): void {
    if (this.sessionsWritten < this.sessions.ids.length) {
      const k = this.sessionsWritten++;
      const { ids, timeouts, passwords } = this.sessions;
      this.begin(RecordType.SESSION).longBig(ids[k]).int(timeouts[k]).buffer(passwords.subarray(k * SESSION_PASSWORD_BYTES, (k + 1) * SESSION_PASSWORD_BYTES));
      this.finish();
      return;
    }
    if (this.proposersWritten < this.proposers.length) {
      const [origin, seq] = this.proposers[this.proposersWritten++];
      this.begin(RecordType.PROPOSER).int(origin).long(seq);
      this.finish();
      return;
    }
    const saved = this.preImages.pop();
    if (saved) {
      this.writeNode(saved.path, saved.image);
      return;
    }
    for (;;) {
      const entry = this.nodes.next();
      if (entry.done) break;
      const [path, node] = entry.value;
      if (node.snapshotEpoch === this.epoch) continue; // created since the start, or already saved
      node.snapshotEpoch = this.epoch;
      this.writeNode(path, node);
      return;
    }
    // Every node that existed at the start is written or saved: nothing more can change the snapshot.
    this.tree.stopCopyOnWrite();
    const w = this.w;
    const crc = crc32(w.buf.subarray(0, w.offset), this.crc);
    this.begin(RecordType.END).int(this.nodeCount).int(this.sessions.ids.length).int(this.aclIds.size).int(this.proposers.length).int(crc | 0);
    this.finish();
    this.state = 'ended';
  }

  private writeNode(path: string, n: NodeImage): void {
    const acl = this.aclId(n.acl);
    this.begin(RecordType.NODE).ustring(path).buffer(n.data).int(acl);
    this.w.long(n.czxid).long(n.mzxid).long(n.pzxid).long(n.ctime).long(n.mtime);
    this.w.int(n.version).int(n.cversion).int(n.aversion).longBig(n.ephemeralOwner);
    this.finish();
    this.nodeCount++;
  }

  /** The ACL list's number, writing an ACL record the first time a list is seen. */
  private aclId(acl: ACL[]): number {
    // Neighbouring nodes often share one list object: skip building its key then.
    if (acl === this.lastAcl) return this.lastAclId;
    let key = '';
    for (const a of acl) key += `${a.perms}\u0000${a.id.scheme}\u0000${a.id.id}\u0000`;
    let id = this.aclIds.get(key);
    if (id === undefined) {
      id = this.aclIds.size;
      this.aclIds.set(key, id);
      this.begin(RecordType.ACL).vector(acl, writeACL);
      this.finish();
    }
    this.lastAcl = acl;
    this.lastAclId = id;
    return id;
  }

  private begin(type: number): JuteWriter {
    const w = this.w;
    this.recordStart = w.offset;
    w.int(0);
    w.bool(true); // room for the type byte
    w.buf[w.offset - 1] = type;
    return w;
  }

  private finish(): void {
    const w = this.w;
    w.buf.writeInt32BE(w.offset - this.recordStart - 4, this.recordStart);
  }

  /** End of the unit (the stream prefix, or a record) at the start of the buffer. */
  private firstUnitEnd(): number {
    return this.prefixReturned ? 4 + this.w.buf.readInt32BE(0) : PREFIX_BYTES;
  }
}

function copyImage(n: ZNode): NodeImage {
  // data and acl are replaced on change, never written in place: the references stay valid.
  return {
    data: n.data,
    acl: n.acl,
    czxid: n.czxid,
    mzxid: n.mzxid,
    pzxid: n.pzxid,
    ctime: n.ctime,
    mtime: n.mtime,
    version: n.version,
    cversion: n.cversion,
    aversion: n.aversion,
    ephemeralOwner: n.ephemeralOwner,
  };
}

// ---- loading ------------------------------------------------------------------

export interface LoadOptions extends DataTreeOptions {
  /** Records longer than this are refused before anything is allocated for them. */
  maxRecordBytes?: number;
}

/**
 * Rebuilds a tree from snapshot bytes pushed in order, cut anywhere. Every length is
 * checked before use; anything malformed throws SnapshotError.
 */
export class SnapshotLoader {
  private readonly maxRecordBytes: number;
  private readonly opts: DataTreeOptions;
  /** Bytes of an unfinished unit (the prefix or a record), kept until it is whole. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Whole length of the pending unit; 0 while fewer than 4 bytes of its header are in. */
  private pendingNeed = 0;
  private position = 0;
  /** Read from the prefix; undefined until the prefix is whole. */
  private lastZxid: number | undefined;
  private readonly nodes = new Map<string, ZNode>();
  private readonly sessions = new Map<bigint, SessionInfo>();
  private readonly proposers = new Map<number, number>();
  private readonly acls: ACL[][] = [];
  private crc = 0;
  private ended = false;

  constructor(opts: LoadOptions = {}) {
    const { maxRecordBytes = DEFAULT_MAX_RECORD_BYTES, ...treeOpts } = opts;
    this.maxRecordBytes = maxRecordBytes;
    this.opts = treeOpts;
  }

  push(chunk: Uint8Array): void {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length === 0) return;
    if (this.ended) this.fail(`${buf.length} bytes after the end record`);
    if (this.pendingBytes > 0) {
      // Complete the unfinished unit from this chunk, then go on with the rest.
      let need = this.pendingNeed;
      if (need === 0) {
        const head = Buffer.concat([...this.pending, buf.subarray(0, 4 - this.pendingBytes)]);
        if (head.length < 4) return this.keep(buf, 0);
        need = 4 + this.checkLength(head.readInt32BE(0), 0);
      }
      if (this.pendingBytes + buf.length < need) return this.keep(buf, need);
      const take = need - this.pendingBytes;
      const whole = Buffer.concat([...this.pending, buf.subarray(0, take)], need);
      this.pending = [];
      this.pendingBytes = 0;
      this.pendingNeed = 0;
      this.parse(whole);
      buf = buf.subarray(take);
      if (this.ended && buf.length > 0) this.fail(`${buf.length} bytes after the end record`);
    }
    const used = this.parse(buf);
    if (used === buf.length) return;
    const rest = buf.subarray(used);
    // parse() has checked the length of a record it stopped in.
    this.keep(rest, this.lastZxid === undefined ? PREFIX_BYTES : rest.length >= 4 ? 4 + rest.readInt32BE(0) : 0);
  }

  /** The tree, once the end record has been read. */
  finish(): DataTree {
    if (!this.ended || this.lastZxid === undefined) {
      this.fail(`truncated: no end record after ${this.position + this.pendingBytes} bytes (${this.nodes.size} nodes read)`);
    }
    try {
      return DataTree.fromSnapshot(this.nodes, this.sessions, this.lastZxid, this.opts, this.proposers);
    } catch (e) {
      // The tree's own checks: a root, and a parent for every node.
      return this.fail((e as Error).message);
    }
  }

  /** Keeps the start of an unfinished unit; need is its whole length, or 0 while its header is incomplete. */
  private keep(bytes: Buffer, need: number): void {
    // Copied: the caller may reuse its chunk.
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    this.pendingNeed = need;
  }

  private checkLength(length: number, offsetInChunk: number): number {
    if (length < 1 || length > this.maxRecordBytes) this.fail(`record length ${length} out of range (1..${this.maxRecordBytes})`, offsetInChunk);
    return length;
  }

  /** Parses the prefix and every whole record in buf; returns the bytes used. */
  private parse(buf: Buffer): number {
    let at = 0;
    if (this.lastZxid === undefined) {
      if (buf.length < PREFIX_BYTES) return 0;
      if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) this.fail('not a snapshot (bad magic)');
      if (buf[MAGIC.length] !== SNAPSHOT_FORMAT_VERSION) this.fail(`unknown snapshot format version ${buf[MAGIC.length]}`);
      const zxid = new JuteReader(buf, MAGIC.length + 1).long();
      if (zxid < 0) this.fail(`negative lastZxid ${zxid}`);
      this.lastZxid = zxid;
      at = PREFIX_BYTES;
    }
    let crcFrom = 0;
    while (buf.length - at >= 4) {
      const length = this.checkLength(buf.readInt32BE(at), at);
      if (buf.length - at - 4 < length) break;
      const type = buf[at + 4];
      if (type === RecordType.END) {
        this.crc = crc32(buf.subarray(crcFrom, at), this.crc);
        crcFrom = at + 4 + length;
      }
      this.record(type, new JuteReader(buf, at + 5, at + 4 + length), at);
      at += 4 + length;
      if (this.ended && at < buf.length) this.fail(`${buf.length - at} bytes after the end record`, at);
    }
    if (!this.ended) this.crc = crc32(buf.subarray(crcFrom, at), this.crc);
    this.position += at;
    return at;
  }

  private record(type: number, r: JuteReader, at: number): void {
    try {
      switch (type) {
        case RecordType.SESSION: {
          const id = r.longBig();
          const timeoutMs = r.int();
          const password = r.buffer();
          if (password === null) throw new DecodeError('null session password');
          if (password.length !== SESSION_PASSWORD_BYTES) throw new DecodeError(`session password of ${password.length} bytes, expected ${SESSION_PASSWORD_BYTES}`);
          if (this.sessions.has(id)) throw new DecodeError(`session 0x${BigInt.asUintN(64, id).toString(16)} appears twice`);
          this.sessions.set(id, { timeoutMs, password: Buffer.from(password) });
          break;
        }
        case RecordType.PROPOSER: {
          const origin = r.int();
          const seq = r.long();
          if (this.proposers.has(origin)) throw new DecodeError(`proposer ${origin} appears twice`);
          this.proposers.set(origin, seq);
          break;
        }
        case RecordType.ACL:
          this.acls.push(r.vector(readACL, 12) ?? []);
          break;
        case RecordType.NODE:
          this.node(r);
          break;
        case RecordType.END: {
          const nodes = r.int();
          const sessions = r.int();
          const acls = r.int();
          const proposers = r.int();
          const crc = r.int() >>> 0;
          if (nodes !== this.nodes.size || sessions !== this.sessions.size || acls !== this.acls.length || proposers !== this.proposers.size) {
            throw new DecodeError(
              `end record counts ${nodes} nodes, ${sessions} sessions, ${acls} ACLs, ${proposers} proposers; ` +
                `read ${this.nodes.size}, ${this.sessions.size}, ${this.acls.length}, ${this.proposers.size}`,
            );
          }
          if (crc !== this.crc >>> 0) throw new DecodeError(`checksum mismatch: end record has ${crc}, content has ${this.crc >>> 0}`);
          this.ended = true;
          break;
        }
        default:
          throw new DecodeError(`unknown record type ${type}`);
      }
      if (r.remaining !== 0) throw new DecodeError(`${r.remaining} unexpected trailing bytes`);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.fail(`${RECORD_NAMES[type] ?? 'unknown'} record: ${e.message}`, at);
    }
  }

  private node(r: JuteReader): void {
    const path = r.string();
    const reason = invalidPathReason(path);
    if (reason !== null) throw new DecodeError(`bad node path ${JSON.stringify(path.slice(0, 200))}: ${reason}`);
    if (this.nodes.has(path)) throw new DecodeError(`node ${path} appears twice`);
    const data = r.buffer();
    if (data === null) throw new DecodeError(`node ${path} has null data`);
    const aclId = r.int();
    const acl = this.acls[aclId];
    if (acl === undefined) throw new DecodeError(`node ${path} refers to ACL list ${aclId}, of ${this.acls.length} read`);
    const czxid = r.long();
    const mzxid = r.long();
    const pzxid = r.long();
    const ctime = r.long();
    const mtime = r.long();
    // Copied: the chunk may be reused by the caller, and small copies share pooled memory.
    const node = new ZNode(Buffer.from(data), acl, czxid, ctime, 0n);
    node.mzxid = mzxid;
    node.pzxid = pzxid;
    node.mtime = mtime;
    node.version = r.int();
    node.cversion = r.int();
    node.aversion = r.int();
    node.ephemeralOwner = r.longBig();
    // Most nodes have no owner: share one 0n rather than keep a BigInt per node.
    if (node.ephemeralOwner === 0n) node.ephemeralOwner = 0n;
    this.nodes.set(path, node);
  }

  private fail(message: string, offsetInChunk?: number): never {
    const where = offsetInChunk === undefined ? '' : ` at byte ${this.position + offsetInChunk}`;
    throw new SnapshotError(`bad snapshot${where}: ${message}`);
  }
}

/** Loads a snapshot from its chunks (a file stream works: chunks may be cut anywhere). */
export async function loadSnapshot(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts: LoadOptions = {}): Promise<DataTree> {
  const loader = new SnapshotLoader(opts);
  for await (const chunk of chunks) loader.push(chunk);
  return loader.finish();
}
