/**
 * Snapshot files: written or received as a stream, made durable by fsync and an
 * atomic rename, checked by CRC before use. The newest two are kept.
 *
 * A file is `snap-<term>-<index>.snap` (16 decimal digits each):
 *
 *   magic "PKSNAP01" | meta length u32 | meta (SnapshotMeta as UTF-8 JSON)
 *   | body (the bytes the writer was given; chunk boundaries are not kept)
 *   | body length u64 | crc u32 (CRC-32 of every byte before it)
 *
 * Integers are big-endian. Files being written are `<name>.tmp-<random>` until
 * they are complete and synced; leftovers of a crash are removed by open().
 *
 * A leader sends a follower the whole file (StoredSnapshot.transfer()); the follower
 * passes the chunks to beginReceive(meta).write() and finish() checks the same CRC
 * the leader's disk had, so damage on either disk or on the way is caught.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { SnapshotMeta } from '../consensus/types.js';
import { createLogger, type Logger } from '../util/log.js';
import { fsyncDir, readFully, writeFully } from './files.js';
import { JuteReader, JuteWriter } from '../protocol/jute.js';
import { readCount } from './records.js';

export interface SnapshotStoreOptions {
  logger?: Logger;
  /** Snapshot files kept, newest first (default 2). */
  keep?: number;
  /** Size of the chunks body() and transfer() yield (default 256 KiB). */
  chunkBytes?: number;
  /** Largest snapshot file accepted from a leader (default 64 GiB). */
  maxSnapshotBytes?: number;
}

export interface SnapshotReceiver {
  /**
   * Appends the next chunk of the sender's transfer() stream. Chunks are written in
   * call order even if the caller does not wait; a failure (wrong or oversized
   * stream, disk error) rejects this call and finish().
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Checks the length and CRC (and the snapshot's index and term, if given), syncs
   * the file and renames it into place; returns its path. On failure nothing is kept.
   */
  finish(expected?: { index: number; term: number }): Promise<string>;
  /** Drops what was received; never fails. */
  abort(): Promise<void>;
}

const MAGIC = Buffer.from('PKSNAP01', 'latin1');
const PREFIX_BYTES = MAGIC.length + 4;
const TRAILER_BYTES = 12;
const MAX_META_BYTES = 1 << 20;
const WRITE_BATCH_BYTES = 1 << 20;
const SNAP_NAME = /^snap-(\d+)-(\d+)\.snap$/;
const TEMP_NAME = /\.tmp-[0-9a-f]+$/;

export function snapshotFileName(meta: { index: number; term: number }): string {
  return `snap-${String(meta.term).padStart(16, '0')}-${String(meta.index).padStart(16, '0')}.snap`;
}

/** A snapshot file whose CRC checked out. */
export class StoredSnapshot {
  constructor(
    readonly path: string,
    readonly meta: SnapshotMeta,
    /** Where the body starts, its length, and the file's length. */
    readonly bodyOffset: number,
    readonly bodyBytes: number,
    readonly fileBytes: number,
    private readonly chunkBytes: number,
  ) {}

  /** The body, streamed; throws at the end if the file no longer matches its CRC. */
  async *body(): AsyncGenerator<Buffer> {
    const fh = await open(this.path, 'r');
    try {
      const head = Buffer.allocUnsafe(this.bodyOffset);
      await readFully(fh, head, 0, head.length, 0);
      let crc = crc32(head);
      for await (const chunk of readChunks(fh, this.bodyOffset, this.bodyOffset + this.bodyBytes, this.chunkBytes)) {
        crc = crc32(chunk, crc);
        yield chunk;
      }
      const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
      await readFully(fh, trailer, 0, TRAILER_BYTES, this.fileBytes - TRAILER_BYTES);
      if (crc32(trailer.subarray(0, 8), crc) !== trailer.readUInt32BE(8)) {
        throw new Error(`snapshot ${this.path} changed on disk: checksum mismatch after reading it`);
      }
    } finally {
      await fh.close();
    }
  }

  /** The whole file, streamed, for a follower's SnapshotStore.beginReceive(). */
  async *transfer(): AsyncGenerator<Buffer> {
    const fh = await open(this.path, 'r');
    try {
      yield* readChunks(fh, 0, this.fileBytes, this.chunkBytes);
    } finally {
      await fh.close();
    }
  }
}

export class SnapshotStore {
  private readonly logger: Logger;
  private readonly keep: number;
  private readonly chunkBytes: number;
  private readonly maxSnapshotBytes: number;

  constructor(
    readonly dir: string,
    opts: SnapshotStoreOptions = {},
  ) {
    this.logger = opts.logger ?? createLogger();
    this.keep = Math.max(1, opts.keep ?? 2);
    this.chunkBytes = opts.chunkBytes ?? 256 * 1024;
    this.maxSnapshotBytes = opts.maxSnapshotBytes ?? 64 * 1024 ** 3;
  }

  /** Creates the directory if needed and removes files left half-written by a crash. */
  static async open(dir: string, opts: SnapshotStoreOptions = {}): Promise<SnapshotStore> {
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) if (TEMP_NAME.test(name)) await unlink(join(dir, name));
    return new SnapshotStore(dir, opts);
  }

  /** Snapshot files by name, newest (highest index, then term) first; not yet checked. */
  async list(): Promise<{ path: string; index: number; term: number }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: { path: string; index: number; term: number }[] = [];
    for (const name of names) {
      const m = SNAP_NAME.exec(name);
      if (m) out.push({ path: join(this.dir, name), term: Number(m[1]), index: Number(m[2]) });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /**
   * Streams `body` into a new snapshot file: written to a temporary file, synced,
   * renamed into place, directory synced; then all but the newest `keep` are removed.
   */
  async write(meta: SnapshotMeta, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<StoredSnapshot> {
    await mkdir(this.dir, { recursive: true });
    const head = encodeHead(meta);
    const path = join(this.dir, snapshotFileName(meta));
    const file = await TempFile.create(this.dir);
    let bodyBytes = 0;
    try {
      let crc = crc32(head);
      await file.write(head);
      for await (const chunk of body) {
        const b = asBuffer(chunk);
        crc = crc32(b, crc);
        bodyBytes += b.length;
        await file.write(b);
      }
      const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
      new JuteWriter(8).long(bodyBytes).take().copy(trailer, 0);
      trailer.writeUInt32BE(crc32(trailer.subarray(0, 8), crc), 8);
      await file.write(trailer);
      await file.commit(path);
    } catch (err) {
      await file.discard();
      throw err;
    }
    await this.prune();
    return new StoredSnapshot(path, meta, head.length, bodyBytes, head.length + bodyBytes + TRAILER_BYTES, this.chunkBytes);
  }

  /** The newest snapshot whose CRC checks; a damaged one is logged and the one before it tried. */
  async latest(): Promise<StoredSnapshot | undefined> {
    for (const { path } of await this.list()) {
      try {
        return await this.verify(path);
      } catch (err) {
        this.logger.warn('snapshot file failed its check; trying the one before it', { file: path, problem: (err as Error).message });
      }
    }
    return undefined;
  }

  /** Reads a snapshot file through once, checking its layout and CRC. */
  async verify(path: string): Promise<StoredSnapshot> {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      if (size < PREFIX_BYTES + TRAILER_BYTES) throw new Error(`file of ${size} bytes is too short to be a snapshot`);
      const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
      await readFully(fh, prefix, 0, PREFIX_BYTES, 0);
      const metaBytes = checkPrefix(prefix);
      const bodyOffset = PREFIX_BYTES + metaBytes;
      if (bodyOffset + TRAILER_BYTES > size) throw new Error(`meta of ${metaBytes} bytes runs past the end of the ${size}-byte file`);
      const metaBuf = Buffer.allocUnsafe(metaBytes);
      await readFully(fh, metaBuf, 0, metaBytes, PREFIX_BYTES);
      const meta = parseMeta(metaBuf);
      const m = SNAP_NAME.exec(basename(path));
      if (m && (Number(m[1]) !== meta.term || Number(m[2]) !== meta.index)) {
        throw new Error(`file name says term ${m[1]} index ${m[2]}, its meta says term ${meta.term} index ${meta.index}`);
      }
      let crc = 0;
      for await (const chunk of readChunks(fh, 0, size - 4, this.chunkBytes)) crc = crc32(chunk, crc);
      const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
      await readFully(fh, trailer, 0, TRAILER_BYTES, size - TRAILER_BYTES);
      if (crc !== trailer.readUInt32BE(8)) throw new Error('checksum mismatch');
      const bodyBytes = readCount(new JuteReader(trailer), 'body length');
      if (bodyOffset + bodyBytes + TRAILER_BYTES !== size) throw new Error(`trailer says ${bodyBytes} body bytes, the file holds ${size - bodyOffset - TRAILER_BYTES}`);
      return new StoredSnapshot(path, meta, bodyOffset, bodyBytes, size, this.chunkBytes);
    } finally {
      await fh.close();
    }
  }

  /**
   * Starts receiving a snapshot file streamed by a leader (its StoredSnapshot.transfer()).
   * With `expected` (a SnapshotMeta will do), a stream holding another snapshot is refused
   * as soon as its meta has arrived.
   */
  beginReceive(expected?: { index: number; term: number }): SnapshotReceiver {
    return new Receiver(this, expected, this.maxSnapshotBytes);
  }

  /** Removes all but the newest `keep` snapshot files. */
  async prune(): Promise<void> {
    const old = (await this.list()).slice(this.keep);
    for (const { path } of old) await unlink(path);
    if (old.length > 0) await fsyncDir(this.dir);
  }
}

/**
 * Receives a whole snapshot file. Writes run one after another even if the caller
 * does not wait for them; the first failure drops the partial file and is
 * reported by that write and by finish(). The last 12 bytes seen so far are held
 * back from the CRC: they may be the trailer.
 */
class Receiver implements SnapshotReceiver {
  private chain: Promise<void> = Promise.resolve();
  private file: Promise<TempFile> | undefined;
  private error: Error | undefined;
  private ended = false;
  private head: Buffer = Buffer.alloc(0);
  private meta: SnapshotMeta | undefined;
  private bodyOffset = 0;
  private crc = 0;
  private tail: Buffer = Buffer.alloc(0);
  private received = 0;

  constructor(
    private readonly store: SnapshotStore,
    private readonly expected: { index: number; term: number } | undefined,
    private readonly maxBytes: number,
  ) {}

  write(chunk: Uint8Array): Promise<void> {
    const copy = Buffer.from(chunk); // the caller may reuse its buffer
    const done = this.serially(() => this.take(copy));
    done.catch(() => {}); // reported again by finish(); an unawaited write must not crash the process
    return done;
  }

  finish(expected?: { index: number; term: number }): Promise<string> {
    return this.serially(async () => {
      if (this.ended) throw new Error('snapshot receive already finished or aborted');
      this.ended = true;
      try {
        if (!this.meta || !this.file) throw new Error(`snapshot ended after ${this.received} bytes, before its meta`);
        if (expected) this.checkMeta(this.meta, expected);
        if (this.received < this.bodyOffset + TRAILER_BYTES) throw new Error(`snapshot ended after ${this.received} bytes, before its trailer`);
        const bodyBytes = readCount(new JuteReader(this.tail), 'body length');
        if (this.bodyOffset + bodyBytes + TRAILER_BYTES !== this.received) {
          throw new Error(`trailer says ${bodyBytes} body bytes, ${this.received - this.bodyOffset - TRAILER_BYTES} arrived`);
        }
        if (crc32(this.tail.subarray(0, 8), this.crc) !== this.tail.readUInt32BE(8)) throw new Error('checksum mismatch');
        const file = await this.file;
        this.file = undefined;
        const path = join(this.store.dir, snapshotFileName(this.meta));
        await file.commit(path);
        await this.store.prune();
        return path;
      } catch (err) {
        await this.fail(err as Error);
        throw err;
      }
    });
  }

  abort(): Promise<void> {
    this.ended = true;
    return this.serially(() => this.discard()).catch(() => {});
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.error) throw this.error;
      return fn();
    });
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private async take(b: Buffer): Promise<void> {
    if (this.ended) throw new Error('snapshot receive already finished or aborted');
    try {
      if (this.received + b.length > this.maxBytes) throw new Error(`snapshot exceeds ${this.maxBytes} bytes`);
      this.received += b.length;
      if (!this.meta) this.readHead(b);
      const all = this.tail.length > 0 ? Buffer.concat([this.tail, b]) : b;
      const cut = Math.max(0, all.length - TRAILER_BYTES);
      this.crc = crc32(all.subarray(0, cut), this.crc);
      this.tail = Buffer.from(all.subarray(cut));
      this.file ??= mkdir(this.store.dir, { recursive: true }).then(() => TempFile.create(this.store.dir));
      await (await this.file).write(b);
    } catch (err) {
      await this.fail(err as Error);
      throw err;
    }
  }

  /** Checks magic and meta as soon as they have arrived, so a wrong stream is refused early. */
  private readHead(b: Buffer): void {
    let used = 0;
    const takeUpTo = (bytes: number) => {
      const n = Math.min(bytes - this.head.length, b.length - used);
      if (n <= 0) return;
      this.head = Buffer.concat([this.head, b.subarray(used, used + n)]);
      used += n;
    };
    takeUpTo(PREFIX_BYTES);
    if (this.head.length < PREFIX_BYTES) return;
    const headBytes = PREFIX_BYTES + checkPrefix(this.head);
    takeUpTo(headBytes);
    if (this.head.length < headBytes) return;
    const meta = parseMeta(this.head.subarray(PREFIX_BYTES));
    if (this.expected) this.checkMeta(meta, this.expected);
    this.meta = meta;
    this.bodyOffset = headBytes;
    this.head = Buffer.alloc(0);
  }

  private checkMeta(meta: SnapshotMeta, expected: { index: number; term: number }): void {
    if (meta.index !== expected.index || meta.term !== expected.term) {
      throw new Error(`expected snapshot term ${expected.term} index ${expected.index}, the stream holds term ${meta.term} index ${meta.index}`);
    }
  }

  private async fail(err: Error): Promise<void> {
    this.error ??= err;
    await this.discard();
  }

  private async discard(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    if (file) await file.then((f) => f.discard(), () => {});
  }
}

/** A file written under a temporary name, renamed into place when complete and synced. */
class TempFile {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private size = 0;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly tempPath: string,
    private readonly dir: string,
  ) {}

  static async create(dir: string): Promise<TempFile> {
    const tempPath = join(dir, `snap.tmp-${randomBytes(6).toString('hex')}`);
    return new TempFile(await open(tempPath, 'wx'), tempPath, dir);
  }

  /** Buffers small chunks into large writes; `chunk` must not change afterwards. */
  async write(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  /** Syncs the file and renames it to `path`, in the same directory. */
  async commit(path: string): Promise<void> {
    await this.flush();
    await this.fh.sync();
    await this.close();
    await rename(this.tempPath, path);
    await fsyncDir(this.dir);
  }

  async discard(): Promise<void> {
    await this.close();
    await unlink(this.tempPath).catch(() => {});
  }

  private async flush(): Promise<void> {
    const buffers = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.size += await writeFully(this.fh, buffers, this.size);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

function encodeHead(meta: SnapshotMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  if (json.length > MAX_META_BYTES) throw new RangeError(`snapshot meta of ${json.length} bytes exceeds ${MAX_META_BYTES}`);
  const head = Buffer.allocUnsafe(PREFIX_BYTES + json.length);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(json.length, MAGIC.length);
  json.copy(head, PREFIX_BYTES);
  return head;
}

/** Checks the magic; returns the meta's length. */
function checkPrefix(prefix: Buffer): number {
  if (!prefix.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a snapshot file (bad magic)');
  const metaBytes = prefix.readUInt32BE(MAGIC.length);
  if (metaBytes > MAX_META_BYTES) throw new Error(`meta length ${metaBytes} exceeds ${MAX_META_BYTES}`);
  return metaBytes;
}

function parseMeta(b: Buffer): SnapshotMeta {
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(b.toString('utf8')) as SnapshotMeta;
  } catch (err) {
    throw new Error(`meta is not JSON: ${(err as Error).message}`);
  }
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const ids = (v: unknown) => Array.isArray(v) && v.every(count);
  if (
    typeof meta !== 'object' ||
    meta === null ||
    !count(meta.index) ||
    !count(meta.term) ||
    !ids(meta.membership?.voters) ||
    !ids(meta.membership?.learners) ||
    typeof meta.contexts !== 'object' ||
    meta.contexts === null
  ) {
    throw new Error('meta lacks index, term, membership or contexts');
  }
  return meta;
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Fresh buffers (callers may keep them) covering [start, end) of a file. */
async function* readChunks(fh: FileHandle, start: number, end: number, chunkBytes: number): AsyncGenerator<Buffer> {
  for (let pos = start; pos < end; ) {
    const n = Math.min(chunkBytes, end - pos);
    const chunk = Buffer.allocUnsafe(n);
    await readFully(fh, chunk, 0, n, pos);
    pos += n;
    yield chunk;
  }
}
