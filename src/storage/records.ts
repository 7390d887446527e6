/**
 * Write-ahead log records: framing and the binary form of entries, hard state and
 * snapshot markers. Contents use jute's encoding (src/protocol/jute.ts): big-endian
 * int and long, int-length-prefixed strings and buffers (-1 = absent), counted vectors.
 *
 *   record  = length int | crc int | type u8 | payload
 *   length  = bytes of type + payload (1 .. maxRecordBytes)
 *   crc     = CRC-32 of type + payload (a damaged length moves the bytes it covers,
 *             so the CRC catches that too)
 *
 *   entry      (type 1) = index long | term long | kind int | data buffer
 *                         | change? bool [op int | id long | context string]
 *                         | config? bool [voters vector<long> | learners vector<long> | contexts vector<id long | string>]
 *   hard state (type 2) = term long | vote long | commit long
 *   snapshot   (type 3) = index long | term long: the log was replaced by a snapshot at
 *                         index (a follower installed one from its leader); entries before it are gone
 */
import { crc32 } from 'node:zlib';
import type { ConfigChange, Configuration, Entry, HardState } from '../consensus/types.js';
import { JuteReader, JuteWriter } from '../protocol/jute.js';

export const RECORD_HEADER_BYTES = 8;
export const RecordType = { entry: 1, hardState: 2, snapshot: 3 } as const;
const KNOWN_TYPES = new Set<number>(Object.values(RecordType));

const KINDS: Entry['kind'][] = ['normal', 'config', 'empty'];
const OPS: ConfigChange['op'][] = ['add-voter', 'add-learner', 'remove'];

export type Decoded =
  | { type: 'entry'; entry: Entry }
  | { type: 'hard-state'; hardState: HardState }
  | { type: 'snapshot'; index: number; term: number };

/** Whether `body` (type + payload) checks against `crc` and has a known type: a record this log wrote. */
export function isValidRecord(crc: number, body: Buffer): boolean {
  return KNOWN_TYPES.has(body[0]) && crc32(body) === crc;
}

/** Reads a record's length and crc from its first 8 bytes. */
export function recordHeader(b: Buffer, at: number): { length: number; crc: number } {
  return { length: b.readUInt32BE(at), crc: b.readUInt32BE(at + 4) };
}

// Records are built here one at a time, then copied out by frame().
const writer = new JuteWriter(512);

function frame(type: number): Buffer {
  const payload = writer.view();
  const length = 1 + payload.length;
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  b.writeUInt32BE(length, 0);
  b[RECORD_HEADER_BYTES] = type;
  payload.copy(b, RECORD_HEADER_BYTES + 1);
  b.writeUInt32BE(crc32(b.subarray(RECORD_HEADER_BYTES)), 4);
  return b;
}

function long(v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a non-negative safe integer: ${v}`);
  return v;
}

export function encodeEntry(e: Entry): Buffer {
  const kind = KINDS.indexOf(e.kind);
  if (kind < 0) throw new TypeError(`entry ${e.index}: unknown kind ${String(e.kind)}`);
  const op = e.change ? OPS.indexOf(e.change.op) : 0;
  if (op < 0) throw new TypeError(`entry ${e.index}: unknown config change ${String(e.change?.op)}`);
  writer.reset();
  writer.long(long(e.index)).long(long(e.term)).int(kind).buffer(e.data);
  writer.bool(e.change !== undefined);
  if (e.change) writer.int(op).long(long(e.change.id)).ustring(e.change.context);
  writer.bool(e.config !== undefined);
  if (e.config) {
    const { membership, contexts } = e.config;
    const id = (w: JuteWriter, v: number) => w.long(long(v));
    writer.vector(membership.voters, id).vector(membership.learners, id);
    writer.vector(Object.entries(contexts), (w, [k, text]) => w.long(long(Number(k))).ustring(text));
  }
  return frame(RecordType.entry);
}

export function encodeHardState(hs: HardState): Buffer {
  writer.reset();
  writer.long(long(hs.term)).long(long(hs.vote)).long(long(hs.commit));
  return frame(RecordType.hardState);
}

export function encodeSnapshotMarker(index: number, term: number): Buffer {
  writer.reset();
  writer.long(long(index)).long(long(term));
  return frame(RecordType.snapshot);
}

/** A non-negative long that fits a JS number exactly. */
export function readCount(r: JuteReader, what: string): number {
  const v = r.long();
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} ${v} is not a non-negative integer below 2^53`);
  return v;
}

/**
 * Decodes a checked record body (type + payload). Throws on content the encoder
 * cannot have produced; the payload is copied, so `body` may be reused afterwards.
 */
export function decodeRecord(body: Buffer): Decoded {
  const type = body[0];
  const r = new JuteReader(body, 1);
  let out: Decoded;
  switch (type) {
    case RecordType.entry: {
      const index = readCount(r, 'index');
      const term = readCount(r, 'term');
      const kindCode = r.int();
      const kind = KINDS[kindCode];
      if (!kind) throw new Error(`entry ${index} has unknown kind ${kindCode}`);
      const entry: Entry = { index, term, kind };
      const data = r.buffer();
      if (data) entry.data = Buffer.from(data);
      if (r.bool()) {
        const opCode = r.int();
        const op = OPS[opCode];
        if (!op) throw new Error(`entry ${index} has unknown config change ${opCode}`);
        entry.change = { op, id: readCount(r, 'member id'), context: r.string() };
      }
      if (r.bool()) entry.config = readConfiguration(r);
      out = { type: 'entry', entry };
      break;
    }
    case RecordType.hardState:
      out = { type: 'hard-state', hardState: { term: readCount(r, 'term'), vote: readCount(r, 'vote'), commit: readCount(r, 'commit') } };
      break;
    case RecordType.snapshot:
      out = { type: 'snapshot', index: readCount(r, 'index'), term: readCount(r, 'term') };
      break;
    default:
      throw new Error(`unknown record type ${type}`);
  }
  if (r.remaining !== 0) throw new Error(`${r.remaining} stray bytes after the record's content`);
  return out;
}

function readConfiguration(r: JuteReader): Configuration {
  const id = (x: JuteReader) => readCount(x, 'member id');
  const voters = r.vector(id, 8) ?? [];
  const learners = r.vector(id, 8) ?? [];
  const contexts: Record<number, string> = {};
  r.vector((x) => (contexts[id(x)] = x.string()), 12);
  return { membership: { voters, learners }, contexts };
}
