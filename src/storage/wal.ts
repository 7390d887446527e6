/**
 * The write-ahead log: Raft entries, hard state and snapshot markers, appended to
 * segment files in one directory and made durable with group commit.
 *
 * Segments are named `<seq>-<firstIndex>.log` (both 16 decimal digits): seq counts
 * up from 1 with no gaps; firstIndex is the index the next entry had when the
 * segment was started. Each begins with a 16-byte header (magic "PKWAL001", seq
 * as a big-endian long) and the hard state as of that point, so deleting older segments never loses
 * it; then records as described in records.ts. A new segment is started once the
 * current one reaches `segmentBytes`.
 *
 * Replay reads the segments in order and the later record wins: an entry whose
 * index is at or below the last one supersedes the stored entries from that index
 * on; a snapshot marker discards the whole log before it. A damaged record at the
 * end of the last segment with nothing valid after it is a write torn by a crash:
 * it is cut off and logged. Any other damage, a missing segment or a gap in the
 * indexes stops recovery with a WalCorruptError naming the file and byte offset.
 */
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Entry, HardState } from '../consensus/types.js';
import { createLogger, type Logger } from '../util/log.js';
import { FileWindow, fsyncDir, writeFully } from './files.js';
import { JuteReader, JuteWriter } from '../protocol/jute.js';
import {
  RECORD_HEADER_BYTES,
  decodeRecord,
  encodeEntry,
  encodeHardState,
  encodeSnapshotMarker,
  isValidRecord,
  readCount,
  recordHeader,
  type Decoded,
} from './records.js';

export interface WalOptions {
  /** fdatasync after each write batch (default true). False still writes, as ZooKeeper's forceSync=no. */
  forceSync?: boolean;
  /** Start a new segment once the current one reaches this size (default 64 MiB). */
  segmentBytes?: number;
  /** Largest record written or accepted on replay (default 16 MiB). */
  maxRecordBytes?: number;
  /** Appended bytes allowed to wait for sync() before append() refuses more (default 256 MiB). */
  maxBufferedBytes?: number;
  /** The snapshot recovery starts from: entries at or below its index are not returned. */
  snapshot?: { index: number; term: number };
  logger?: Logger;
}

export interface WalRecovered {
  /** The last hard state written (all zero for a new log). */
  hardState: HardState;
  /** Entries after the snapshot's index, in order. */
  entries: Entry[];
}

export interface WalStats {
  /** Records and bytes written to segment files. */
  records: number;
  bytes: number;
  /** Write batches (sync() calls that wrote something) and data fsyncs issued. */
  batches: number;
  fsyncs: number;
}

/** The log cannot be trusted: names the file and byte offset of the damage. */
export class WalCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    problem: string,
  ) {
    super(`write-ahead log ${file} at byte ${offset}: ${problem}`);
    this.name = 'WalCorruptError';
  }
}

const MAGIC = Buffer.from('PKWAL001', 'latin1');
const SEGMENT_HEADER_BYTES = 16;
const SEGMENT_NAME = /^(\d{16})-(\d{16})\.log$/;
const ZERO_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

interface Segment {
  seq: number;
  path: string;
  size: number;
  /** Highest entry or snapshot-marker index in the segment (0 if none). */
  maxIndex: number;
  hasHardState: boolean;
}

/** An encoded record waiting for sync(). */
interface Pending {
  bytes: Buffer;
  /** Entry or snapshot-marker index: the log's last index once this record is written. */
  index?: number;
  hardState?: HardState;
}

type Options = Required<Omit<WalOptions, 'snapshot'>> & { snapshot: { index: number; term: number } };

export class WriteAheadLog {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  /** The flush under way, and the one sync() calls made during it share. */
  private inFlight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** File operations (flushes, segment removal, close) run one at a time in this chain. */
  private io: Promise<unknown> = Promise.resolve();
  private failed: Error | undefined;
  private closed = false;
  /** As appended (including what waits for sync). */
  private last: number;
  private floor: number;
  private hard: HardState;
  /** As written to the files, for naming and starting segments. */
  private writtenLast: number;
  private writtenHardState: HardState;
  readonly stats: WalStats = { records: 0, bytes: 0, batches: 0, fsyncs: 0 };

  private constructor(
    readonly dir: string,
    private readonly opts: Options,
    private readonly segments: Segment[],
    private file: FileHandle,
    state: { last: number; floor: number; hardState: HardState },
  ) {
    this.last = this.writtenLast = state.last;
    this.floor = state.floor;
    this.hard = this.writtenHardState = state.hardState;
  }

  /** Opens (creating if needed) the log in `dir` and replays it. */
  static async open(dir: string, options: WalOptions = {}): Promise<{ wal: WriteAheadLog; recovered: WalRecovered }> {
    const opts: Options = {
      forceSync: options.forceSync ?? true,
      segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
      maxRecordBytes: options.maxRecordBytes ?? 16 * 1024 * 1024,
      maxBufferedBytes: options.maxBufferedBytes ?? 256 * 1024 * 1024,
      snapshot: options.snapshot ?? { index: 0, term: 0 },
      logger: options.logger ?? createLogger(),
    };
    for (const key of ['segmentBytes', 'maxRecordBytes', 'maxBufferedBytes'] as const) {
      if (!Number.isSafeInteger(opts[key]) || opts[key] < 1) throw new RangeError(`${key} must be a positive integer, got ${opts[key]}`);
    }
    if (opts.maxRecordBytes > 0xffff_ffff) throw new RangeError('maxRecordBytes must fit the 32-bit record length');
    await mkdir(dir, { recursive: true });
    const segments: Segment[] = [];
    for (const name of (await readdir(dir)).sort()) {
      const m = SEGMENT_NAME.exec(name);
      if (!m) continue;
      const seq = Number(m[1]);
      const prev = segments.at(-1);
      if (prev && seq !== prev.seq + 1) {
        throw new WalCorruptError(join(dir, name), 0, `segment ${seq} follows segment ${prev.seq}: segments in between are missing`);
      }
      segments.push({ seq, path: join(dir, name), size: 0, maxIndex: 0, hasHardState: false });
    }

    const replay = new Replay(opts.snapshot);
    let file: FileHandle | undefined;
    try {
      for (let i = 0; i < segments.length; i++) {
        const isLast = i === segments.length - 1;
        const fh = await open(segments[i].path, isLast ? 'r+' : 'r');
        try {
          await replaySegment(fh, segments[i], isLast, replay, opts);
        } catch (err) {
          await fh.close();
          throw err;
        }
        if (isLast) file = fh;
        else await fh.close();
      }
      const { last, floor, needMarker, entries } = replay.finish(opts.logger);
      const start = needMarker ? opts.snapshot.index : last;
      if (!file) {
        const seg = await createSegment(dir, 1, start + 1, replay.hardState, opts.forceSync);
        segments.push(seg.segment);
        file = seg.file;
      }
      const wal = new WriteAheadLog(dir, opts, segments, file, { last: start, floor, hardState: replay.hardState });
      file = undefined;
      try {
        if (needMarker) wal.installSnapshot(opts.snapshot);
        // A torn start of the last segment lost its copy of the hard state; older segments may go.
        if (!segments[segments.length - 1].hasHardState) wal.append([], replay.hardState);
        await wal.sync();
      } catch (err) {
        await wal.close().catch(() => {});
        throw err;
      }
      return { wal, recovered: { hardState: replay.hardState, entries } };
    } finally {
      await file?.close();
    }
  }

  /** Index of the last entry appended (or of the snapshot the log was reset to). */
  get lastIndex(): number {
    return this.last;
  }

  /** The hard state last appended. */
  get hardState(): HardState {
    return this.hard;
  }

  /** Segment files in use, oldest first. */
  get segmentFiles(): string[] {
    return this.segments.map((s) => s.path);
  }

  /**
   * Buffers entries (the first may overwrite the stored log from its index on) and
   * then the hard state; nothing is written until sync(). Throws, buffering nothing,
   * on an index that would leave a gap or reach into the snapshot.
   */
  append(entries: readonly Entry[], hardState?: HardState): void {
    this.usable();
    let next = this.last + 1;
    for (const [i, e] of entries.entries()) {
      if (!Number.isSafeInteger(e.index) || e.index < 1) throw new RangeError(`bad entry index ${e.index}`);
      if (i === 0 ? e.index > next : e.index !== next) {
        throw new RangeError(`entry ${e.index} would leave a gap: the log ends at ${next - 1}`);
      }
      if (e.index <= this.floor) throw new RangeError(`entry ${e.index} is at or below the snapshot at ${this.floor}`);
      next = e.index + 1;
    }
    const records: Pending[] = entries.map((e) => ({ bytes: encodeEntry(e), index: e.index }));
    if (hardState) records.push({ bytes: encodeHardState(hardState), hardState: { ...hardState } });
    this.buffer(records);
    if (entries.length > 0) this.last = entries[entries.length - 1].index;
    if (hardState) this.hard = { ...hardState };
  }

  /**
   * Buffers a marker that the log was replaced by a snapshot (a follower installed
   * one from its leader): every stored entry is discarded and the next entry is
   * index + 1. Write the snapshot file before this marker is synced. Not for a
   * snapshot this member took of its own state: the log after it stays, and only
   * releaseTo() applies.
   */
  installSnapshot(snapshot: { index: number; term: number }): void {
    this.usable();
    if (snapshot.index < this.floor) throw new RangeError(`snapshot ${snapshot.index} is older than the snapshot at ${this.floor}`);
    this.buffer([{ bytes: encodeSnapshotMarker(snapshot.index, snapshot.term), index: snapshot.index }]);
    this.last = this.floor = snapshot.index;
  }

  /**
   * Writes everything appended so far and makes it durable with one fdatasync
   * (none with forceSync false). Calls made while a sync is under way share one
   * more sync after it. After an I/O error every call fails: the log's state on
   * disk is unknown and the member must restart and recover.
   */
  sync(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.pending.length === 0) return this.inFlight ?? Promise.resolve();
    if (this.queued) return this.queued;
    if (!this.inFlight) return this.startFlush();
    const queued = this.inFlight
      .catch(() => {})
      .then(() => {
        this.queued = null;
        return this.startFlush();
      });
    this.queued = queued;
    return queued;
  }

  /**
   * Once a snapshot at `index` is durable: deletes the oldest segments whose entries
   * are all at or below it (never the one being written). Returns how many.
   */
  releaseTo(index: number): Promise<number> {
    this.usable();
    return this.exclusive(async () => {
      let removed = 0;
      while (this.segments.length > 1 && this.segments[0].maxIndex <= index) {
        await unlink(this.segments[0].path);
        this.segments.shift();
        removed++;
      }
      if (removed > 0) await fsyncDir(this.dir);
      return removed;
    });
  }

  /** Syncs what is buffered and closes the current segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.sync();
    } finally {
      this.closed = true;
      await this.exclusive(() => this.file.close());
    }
  }

  private usable(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new Error('write-ahead log is closed');
  }

  private buffer(records: Pending[]): void {
    let bytes = 0;
    for (const r of records) {
      if (r.bytes.length - RECORD_HEADER_BYTES > this.opts.maxRecordBytes) {
        throw new RangeError(`record of ${r.bytes.length} bytes exceeds maxRecordBytes (${this.opts.maxRecordBytes})`);
      }
      bytes += r.bytes.length;
    }
    if (this.pendingBytes + bytes > this.opts.maxBufferedBytes) {
      throw new RangeError(`${this.pendingBytes + bytes} bytes would wait for sync(), more than maxBufferedBytes (${this.opts.maxBufferedBytes})`);
    }
    this.pending.push(...records);
    this.pendingBytes += bytes;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.io.then(fn);
    this.io = run.catch(() => {});
    return run;
  }

  private startFlush(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const flush: Promise<void> = this.exclusive(() => this.flush())
      .catch((err: Error) => {
        this.failed ??= err;
        throw err;
      })
      .finally(() => {
        if (this.inFlight === flush) this.inFlight = null;
      });
    this.inFlight = flush;
    return flush;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (batch.length === 0) return;
    this.stats.batches++;
    let i = 0;
    while (i < batch.length) {
      let current = this.segments[this.segments.length - 1];
      if (current.size >= this.opts.segmentBytes) current = await this.rollover();
      // Fill this segment up to its size limit (at least one record), in one write.
      const buffers: Buffer[] = [];
      let bytes = 0;
      while (i < batch.length && (buffers.length === 0 || current.size + bytes < this.opts.segmentBytes)) {
        const r = batch[i++];
        buffers.push(r.bytes);
        bytes += r.bytes.length;
        if (r.index !== undefined) {
          this.writtenLast = r.index;
          current.maxIndex = Math.max(current.maxIndex, r.index);
        }
        if (r.hardState) {
          this.writtenHardState = r.hardState;
          current.hasHardState = true;
        }
      }
      await writeFully(this.file, buffers, current.size);
      current.size += bytes;
      this.stats.records += buffers.length;
      this.stats.bytes += bytes;
    }
    if (this.opts.forceSync) await this.datasync();
  }

  private async datasync(): Promise<void> {
    await this.file.datasync();
    this.stats.fsyncs++;
  }

  /** Closes the full segment (durable first, so no later segment can outlive its tail) and starts the next. */
  private async rollover(): Promise<Segment> {
    if (this.opts.forceSync) await this.datasync();
    await this.file.close();
    const prev = this.segments[this.segments.length - 1];
    const { segment, file } = await createSegment(this.dir, prev.seq + 1, this.writtenLast + 1, this.writtenHardState, this.opts.forceSync);
    this.file = file;
    this.segments.push(segment);
    return segment;
  }
}

function segmentHeader(seq: number): Buffer {
  return Buffer.concat([MAGIC, new JuteWriter(8).long(seq).take()]);
}

/** Creates a segment holding its header and the hard state carried over; its directory entry is made durable. */
async function createSegment(
  dir: string,
  seq: number,
  firstIndex: number,
  hardState: HardState,
  forceSync: boolean,
): Promise<{ segment: Segment; file: FileHandle }> {
  const path = join(dir, `${String(seq).padStart(16, '0')}-${String(firstIndex).padStart(16, '0')}.log`);
  const file = await open(path, 'wx+');
  try {
    const size = await writeFully(file, [segmentHeader(seq), encodeHardState(hardState)], 0);
    if (forceSync) await file.datasync();
    await fsyncDir(dir);
    return { segment: { seq, path, size, maxIndex: 0, hasHardState: true }, file };
  } catch (err) {
    await file.close();
    throw err;
  }
}

async function replaySegment(fh: FileHandle, seg: Segment, isLast: boolean, replay: Replay, opts: Options): Promise<void> {
  let size = (await fh.stat()).size;
  const window = new FileWindow(fh, size);
  const header = await window.view(0, SEGMENT_HEADER_BYTES);
  if (!header || (isLast && header.every((b) => b === 0))) {
    // Created, but the header never reached the disk.
    if (!isLast) throw new WalCorruptError(seg.path, 0, `segment header missing (${size} bytes) in a segment that is not the last`);
    const next = await validRecordAfter(window, 0, opts.maxRecordBytes);
    if (next !== null) throw new WalCorruptError(seg.path, 0, `segment header missing, followed by a valid record at byte ${next}`);
    await fh.truncate(0);
    seg.size = await writeFully(fh, [segmentHeader(seg.seq)], 0);
    await fh.sync();
    opts.logger.warn('write-ahead log: rewrote a torn segment header', { file: seg.path, offset: 0, bytesDropped: size });
    return;
  }
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new WalCorruptError(seg.path, 0, 'not a write-ahead log segment (bad magic)');
  const headerSeq = readCount(new JuteReader(header, MAGIC.length), 'segment number');
  if (headerSeq !== seg.seq) throw new WalCorruptError(seg.path, 8, `header says segment ${headerSeq}, the file name says ${seg.seq}`);

  let pos = SEGMENT_HEADER_BYTES;
  const max = opts.maxRecordBytes;
  while (pos < size) {
    // Awaits only when the window has to load more: most records are parsed without one.
    const head = window.cached(pos, RECORD_HEADER_BYTES) ?? (await window.view(pos, RECORD_HEADER_BYTES));
    const { length, crc } = head ? recordHeader(head, 0) : { length: 0, crc: 0 };
    const sane = head !== null && length >= 1 && length <= max;
    const body = sane ? (window.cached(pos + RECORD_HEADER_BYTES, length) ?? (await window.view(pos + RECORD_HEADER_BYTES, length))) : null;
    if (body && crc32(body) === crc) {
      applyRecord(seg, pos, body, replay);
      pos += RECORD_HEADER_BYTES + length;
      continue;
    }
    const problem = !head
      ? `partial record header (${size - pos} bytes)`
      : !sane
        ? `record length ${length} outside 1..${max}`
        : !body
          ? `record of ${length} bytes runs past the end of the file`
          : 'checksum mismatch';
    if (!isLast) throw new WalCorruptError(seg.path, pos, `${problem}, in a segment that is not the last`);
    const next = await validRecordAfter(window, pos, opts.maxRecordBytes);
    if (next !== null) throw new WalCorruptError(seg.path, pos, `${problem}, followed by a valid record at byte ${next}`);
    await fh.truncate(pos);
    await fh.sync();
    opts.logger.warn('write-ahead log: truncated a torn record at the end of the log', {
      file: seg.path,
      offset: pos,
      problem,
      bytesDropped: size - pos,
    });
    size = pos;
  }
  seg.size = size;
}

/** Replays a record whose CRC checked out. */
function applyRecord(seg: Segment, pos: number, body: Buffer, replay: Replay): void {
  let record: Decoded;
  try {
    record = decodeRecord(body);
  } catch (err) {
    throw new WalCorruptError(seg.path, pos, `checksum matches but the record is invalid: ${(err as Error).message}`);
  }
  const wrong = replay.apply(record);
  if (wrong) throw new WalCorruptError(seg.path, pos, wrong);
  if (record.type === 'entry') seg.maxIndex = Math.max(seg.maxIndex, record.entry.index);
  if (record.type === 'snapshot') seg.maxIndex = Math.max(seg.maxIndex, record.index);
  if (record.type === 'hard-state') seg.hasHardState = true;
}

/** Offset of the first valid record starting after `bad`, or null: tells a torn tail from damage in the middle. */
async function validRecordAfter(window: FileWindow, bad: number, maxRecordBytes: number): Promise<number | null> {
  const span = 1 << 20;
  let p = bad + 1;
  while (p + RECORD_HEADER_BYTES < window.size) {
    const n = Math.min(span, window.size - p);
    let w = (await window.view(p, n))!;
    for (let i = 0; i + RECORD_HEADER_BYTES < n; i++) {
      const { length, crc } = recordHeader(w, i);
      if (length < 1 || length > maxRecordBytes || p + i + RECORD_HEADER_BYTES + length > window.size) continue;
      let body: Buffer;
      if (i + RECORD_HEADER_BYTES + length <= n) body = w.subarray(i + RECORD_HEADER_BYTES, i + RECORD_HEADER_BYTES + length);
      else {
        body = Buffer.from((await window.view(p + i + RECORD_HEADER_BYTES, length))!);
        w = (await window.view(p, n))!;
      }
      if (isValidRecord(crc, body)) return p + i;
    }
    p += n - RECORD_HEADER_BYTES;
  }
  return null;
}

/** Replay state: what the records read so far say the log is. */
class Replay {
  hardState: HardState = ZERO_HARD_STATE;
  /** Entries after the snapshot, contiguous from snapshot.index + 1. */
  private entries: Entry[] = [];
  private last: number | null = null;
  private marker = 0;
  /** Term of the entry at the snapshot's index, while the log holds it. */
  private termAtSnapshot: number | undefined;

  constructor(private readonly snapshot: { index: number; term: number }) {}

  /** Applies one record; returns what is wrong if it cannot follow the records before it. */
  apply(r: Decoded): string | undefined {
    const s = this.snapshot.index;
    switch (r.type) {
      case 'hard-state':
        this.hardState = r.hardState;
        return;
      case 'snapshot':
        if (r.index > s) {
          return `the log was replaced by a snapshot at index ${r.index}, but the newest valid snapshot file covers only up to ${s}`;
        }
        this.marker = this.last = r.index;
        this.entries.length = 0;
        this.termAtSnapshot = r.index === s ? r.term : undefined;
        return;
      case 'entry': {
        const { index, term } = r.entry;
        if (this.last === null) {
          if (index > s + 1) return `the log starts at entry ${index} but the snapshot covers only up to ${s}: entries ${s + 1}..${index - 1} are missing`;
        } else if (index > this.last + 1) {
          return `entry ${index} follows entry ${this.last}: entries ${this.last + 1}..${index - 1} are missing`;
        }
        if (index <= this.marker) return `entry ${index} is at or below the snapshot at ${this.marker} recorded before it`;
        if (index > s) {
          this.entries.length = index - s - 1;
          this.entries.push(r.entry);
        } else {
          this.entries.length = 0;
          this.termAtSnapshot = index === s ? term : undefined;
        }
        this.last = index;
        return;
      }
    }
  }

  /**
   * The recovered log. When it ends before the snapshot, or disagrees with it at the
   * snapshot's index (a snapshot from the leader was saved but the crash came before
   * its marker), the log restarts after the snapshot and a marker must be written.
   */
  finish(logger: Logger): { last: number; floor: number; needMarker: boolean; entries: Entry[] } {
    const s = this.snapshot;
    const last = this.last ?? 0;
    if (s.index === 0) return { last, floor: this.marker, needMarker: false, entries: this.entries };
    if (last < s.index) return { last, floor: s.index, needMarker: true, entries: [] };
    if (this.termAtSnapshot !== undefined && this.termAtSnapshot !== s.term) {
      logger.warn('write-ahead log: entries after the snapshot belong to another term and are dropped', {
        snapshotIndex: s.index,
        snapshotTerm: s.term,
        logTerm: this.termAtSnapshot,
        dropped: this.entries.length,
      });
      return { last, floor: s.index, needMarker: true, entries: [] };
    }
    return { last, floor: Math.max(s.index, this.marker), needMarker: false, entries: this.entries };
  }
}
