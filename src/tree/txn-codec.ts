/**
 * The binary form of a transaction as the replicated log carries it.
 *
 *   u8     format version (TXN_FORMAT_VERSION)
 *   long   time
 *   long   sessionId
 *   int    origin (member id, unsigned)
 *   long   seq
 *   vector auth ids (scheme, id)
 *   int    body type, then the body
 *
 * Bodies a client sent (create*, delete, setData, setACL, check) are jute as on the
 * wire; the internal ones are written here: createSession as timeout and the 16-byte
 * password (as a jute buffer), closeSession as nothing, deleteContainer as its path, an error txn as its error code, and multi as a count
 * followed by each op's type and wire body.
 */
import { DecodeError, JuteReader, JuteWriter } from '../protocol/jute.js';
import { OpCode } from '../protocol/opcodes.js';
import { decodeRequestBody, encodeRequestBody, type MultiOp, type RequestBody } from '../protocol/records.js';
import type { Txn, WriteBody } from './txn.js';

export const TXN_FORMAT_VERSION = 1;
export const SESSION_PASSWORD_BYTES = 16;

/** A transaction before it has a zxid, with what matches its commit to the request waiting for it. */
export interface TxnRecord extends Omit<Txn, 'zxid'> {
  /** Member that proposed it. */
  origin: number;
  /** The proposer's number for it, unique per origin. */
  seq: number;
}

// Encoding is synchronous, so one writer serves every call.
const writer = new JuteWriter(512);

export function encodeTxn(txn: TxnRecord): Buffer {
  if (!Number.isInteger(txn.origin) || txn.origin < 0 || txn.origin > 0xffff_ffff) {
    throw new RangeError(`txn origin must be an unsigned 32-bit integer, got ${txn.origin}`);
  }
  if (!Number.isSafeInteger(txn.seq)) throw new RangeError(`txn seq must be a safe integer, got ${txn.seq}`);
  if (!Number.isSafeInteger(txn.time)) throw new RangeError(`txn time must be a safe integer, got ${txn.time}`);
  const w = writer;
  w.reset();
  // The writer has no byte method; its buffer always has room for the first byte.
  w.buf[0] = TXN_FORMAT_VERSION;
  w.offset = 1;
  w.long(txn.time).longBig(txn.sessionId).int(txn.origin).long(txn.seq);
  w.vector(txn.auth, (x, a) => x.ustring(a.scheme).ustring(a.id));
  const body = txn.body;
  w.int(body.type);
  switch (body.type) {
    case OpCode.createSession:
      if (body.password.length !== SESSION_PASSWORD_BYTES) {
        throw new RangeError(`session password must be ${SESSION_PASSWORD_BYTES} bytes, got ${body.password.length}`);
      }
      w.int(body.timeoutMs).buffer(body.password);
      break;
    case OpCode.closeSession:
      break;
    case OpCode.deleteContainer:
      w.ustring(body.path);
      break;
    case OpCode.reconfig:
      w.buffer(body.data);
      break;
    case OpCode.error:
      w.int(body.err);
      break;
    case OpCode.multi:
      w.int(body.ops.length);
      for (const op of body.ops) {
        w.int(op.type);
        encodeRequestBody(op as RequestBody, w);
      }
      break;
    default:
      encodeRequestBody(body, w);
  }
  return w.take();
}

/** Who proposed an encoded transaction and its number, read without decoding the rest. */
export function txnProposer(bytes: Uint8Array): { origin: number; seq: number } {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 29 || buf[0] !== TXN_FORMAT_VERSION) throw new DecodeError('not a txn');
  // After the version byte: long time, long sessionId, int origin, long seq.
  const r = new JuteReader(buf, 17);
  return { origin: r.int() >>> 0, seq: r.long() };
}

/** Decodes a transaction; bad bytes throw DecodeError. Data buffers in the result are views of `bytes`. */
export function decodeTxn(bytes: Uint8Array): TxnRecord {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) throw new DecodeError('empty txn');
  if (buf[0] !== TXN_FORMAT_VERSION) throw new DecodeError(`unknown txn format version ${buf[0]}`);
  const r = new JuteReader(buf, 1);
  const time = r.long();
  const sessionId = r.longBig();
  const origin = r.int() >>> 0;
  const seq = r.long();
  const auth = r.vector((x) => ({ scheme: x.string(), id: x.string() }), 8) ?? [];
  const body = readBody(r);
  if (r.remaining !== 0) throw new DecodeError(`${r.remaining} unexpected trailing bytes after txn`);
  return { time, sessionId, auth, body, origin, seq };
}

/**
 * Passwords live as long as their sessions, so they are copied into slabs of their own: in
 * node's shared buffer pool each would keep a whole 8 KiB pool slab alive.
 */
let passwordSlab = Buffer.alloc(0);
let passwordSlabUsed = 0;
function keepPassword(password: Buffer): Buffer {
  if (passwordSlabUsed + password.length > passwordSlab.length) {
    passwordSlab = Buffer.allocUnsafeSlow(SESSION_PASSWORD_BYTES * 1024);
    passwordSlabUsed = 0;
  }
  const kept = passwordSlab.subarray(passwordSlabUsed, passwordSlabUsed + password.length);
  password.copy(kept);
  passwordSlabUsed += password.length;
  return kept;
}

function readBody(r: JuteReader): WriteBody {
  const type = r.int();
  switch (type) {
    case OpCode.createSession: {
      const timeoutMs = r.int();
      const password = r.buffer();
      if (password?.length !== SESSION_PASSWORD_BYTES) throw new DecodeError(`session password of ${password?.length ?? 'null'} bytes, expected ${SESSION_PASSWORD_BYTES}`);
      // Copied: the tree keeps the password, and the log's buffer may be reused.
      return { type, timeoutMs, password: keepPassword(password) };
    }
    case OpCode.closeSession:
      return { type };
    case OpCode.deleteContainer:
      return { type, path: r.string(), version: -1 };
    case OpCode.reconfig:
      return { type, data: Buffer.from(r.buffer() ?? Buffer.alloc(0)) };
    case OpCode.error:
      return { type, err: r.int() };
    case OpCode.multi: {
      const count = r.int();
      // Each op takes at least its 4-byte type.
      if (count < 0 || count * 4 > r.remaining) throw new DecodeError(`multi of ${count} ops does not fit in ${r.remaining} bytes`);
      const ops: MultiOp[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const opType = r.int();
        if (opType === OpCode.multi || opType === OpCode.multiRead) throw new DecodeError('nested multi in txn');
        ops[i] = decodeRequestBody(opType, r) as MultiOp;
      }
      return { type, ops };
    }
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
    case OpCode.delete:
    case OpCode.setData:
    case OpCode.setACL:
    case OpCode.check:
      return decodeRequestBody(type, r) as WriteBody;
  }
  throw new DecodeError(`opcode ${type} is not a transaction`);
}
