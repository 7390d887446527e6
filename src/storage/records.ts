/**
 * Write-ahead log records: framing and the binary form of entries, hard state and
 * snapshot markers. All integers little-endian.
 *
 *   record  = length u32 | crc u32 | type u8 | payload
 *   length  = bytes of type + payload (1 .. maxRecordBytes)
 *   crc     = CRC-32 of the length field followed by type + payload, so a damaged
 *             length is caught as surely as damaged content
 *
 *   entry     (type 1) = index u64 | term u64 | kind u8 | flags u8
 *                        [change: op u8 | id u64 | context length u32 | context utf8]  if flags & 2
 *                        [data: the rest]                                             if flags & 1
 *   hard state (type 2) = term u64 | vote u64 | commit u64
 *   snapshot  (type 3) = index u64 | term u64: the log was replaced by a snapshot at index
 *                        (a follower installed one from its leader); entries before it are gone
 */
import { crc32 } from 'node:zlib';
import type { ConfigChange, Entry, HardState } from '../consensus/types.js';

export const RECORD_HEADER_BYTES = 8;
export const RecordType = { entry: 1, hardState: 2, snapshot: 3 } as const;
const KNOWN_TYPES = new Set<number>(Object.values(RecordType));

const KINDS: Entry['kind'][] = ['normal', 'config', 'empty'];
const OPS: ConfigChange['op'][] = ['add-voter', 'add-learner', 'remove'];
const HAS_DATA = 1;
const HAS_CHANGE = 2;
const U32 = 2 ** 32;

export type Decoded =
  | { type: 'entry'; entry: Entry }
  | { type: 'hard-state'; hardState: HardState }
  | { type: 'snapshot'; index: number; term: number };

export function writeU64(b: Buffer, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a non-negative safe integer: ${v}`);
  b.writeUInt32LE(v % U32, off);
  b.writeUInt32LE(Math.floor(v / U32), off + 4);
}

export function readU64(b: Buffer, off: number): number {
  const v = b.readUInt32LE(off + 4) * U32 + b.readUInt32LE(off);
  if (!Number.isSafeInteger(v)) throw new RangeError(`integer at byte ${off} exceeds 2^53`);
  return v;
}

/** CRC of a record: its length field, then type + payload. */
export function recordCrc(length: number, body: Uint8Array): number {
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(length, 0);
  return crc32(body, crc32(len));
}

/** Whether `body` (type + payload) checks against `crc` and has a known type: a record this log wrote. */
export function isValidRecord(crc: number, body: Buffer): boolean {
  return KNOWN_TYPES.has(body[0]) && recordCrc(body.length, body) === crc;
}

function frame(type: number, payloadBytes: number, fill: (b: Buffer, off: number) => void): Buffer {
  const length = 1 + payloadBytes;
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  b.writeUInt32LE(length, 0);
  b[RECORD_HEADER_BYTES] = type;
  fill(b, RECORD_HEADER_BYTES + 1);
  b.writeUInt32LE(recordCrc(length, b.subarray(RECORD_HEADER_BYTES)), 4);
  return b;
}

export function encodeEntry(e: Entry): Buffer {
  const kind = KINDS.indexOf(e.kind);
  if (kind < 0) throw new TypeError(`entry ${e.index}: unknown kind ${String(e.kind)}`);
  const context = e.change ? Buffer.from(e.change.context, 'utf8') : undefined;
  const op = e.change ? OPS.indexOf(e.change.op) : 0;
  if (op < 0) throw new TypeError(`entry ${e.index}: unknown config change ${String(e.change?.op)}`);
  const changeBytes = context ? 1 + 8 + 4 + context.length : 0;
  const dataBytes = e.data ? e.data.length : 0;
  return frame(RecordType.entry, 18 + changeBytes + dataBytes, (b, off) => {
    writeU64(b, off, e.index);
    writeU64(b, off + 8, e.term);
    b[off + 16] = kind;
    b[off + 17] = (e.data ? HAS_DATA : 0) | (e.change ? HAS_CHANGE : 0);
    let p = off + 18;
    if (e.change && context) {
      b[p] = op;
      writeU64(b, p + 1, e.change.id);
      b.writeUInt32LE(context.length, p + 9);
      context.copy(b, p + 13);
      p += changeBytes;
    }
    if (e.data) b.set(e.data, p);
  });
}

export function encodeHardState(hs: HardState): Buffer {
  return frame(RecordType.hardState, 24, (b, off) => {
    writeU64(b, off, hs.term);
    writeU64(b, off + 8, hs.vote);
    writeU64(b, off + 16, hs.commit);
  });
}

export function encodeSnapshotMarker(index: number, term: number): Buffer {
  return frame(RecordType.snapshot, 16, (b, off) => {
    writeU64(b, off, index);
    writeU64(b, off + 8, term);
  });
}

/**
 * Decodes a checked record body (type + payload). Throws on content the encoder
 * cannot have produced; the payload is copied, so `body` may be reused afterwards.
 */
export function decodeRecord(body: Buffer): Decoded {
  const type = body[0];
  const p = body.subarray(1);
  const need = (n: number) => {
    if (p.length < n) throw new Error(`record of type ${type} is ${p.length} bytes, needs at least ${n}`);
  };
  switch (type) {
    case RecordType.entry: {
      need(18);
      const index = readU64(p, 0);
      const term = readU64(p, 8);
      const kind = KINDS[p[16]];
      if (!kind) throw new Error(`entry ${index} has unknown kind ${p[16]}`);
      const flags = p[17];
      const entry: Entry = { index, term, kind };
      let off = 18;
      if (flags & HAS_CHANGE) {
        need(off + 13);
        const op = OPS[p[off]];
        if (!op) throw new Error(`entry ${index} has unknown config change ${p[off]}`);
        const id = readU64(p, off + 1);
        const len = p.readUInt32LE(off + 9);
        need(off + 13 + len);
        entry.change = { op, id, context: p.toString('utf8', off + 13, off + 13 + len) };
        off += 13 + len;
      }
      if (flags & HAS_DATA) entry.data = Buffer.from(p.subarray(off));
      else if (off !== p.length) throw new Error(`entry ${index} has ${p.length - off} stray bytes`);
      return { type: 'entry', entry };
    }
    case RecordType.hardState:
      need(24);
      return { type: 'hard-state', hardState: { term: readU64(p, 0), vote: readU64(p, 8), commit: readU64(p, 16) } };
    case RecordType.snapshot:
      need(16);
      return { type: 'snapshot', index: readU64(p, 0), term: readU64(p, 8) };
    default:
      throw new Error(`unknown record type ${type}`);
  }
}
