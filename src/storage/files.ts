/** File helpers shared by the write-ahead log and the snapshot store. */
import { open, type FileHandle } from 'node:fs/promises';

/** Makes a directory's entries (files created, renamed or removed in it) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `buffers` at `position`, retrying short writes. */
export async function writeFully(fh: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = 0;
  let rest = buffers;
  while (done < total) {
    const { bytesWritten } = await fh.writev(rest, position + done);
    if (bytesWritten <= 0) throw new Error(`write made no progress at byte ${position + done}`);
    done += bytesWritten;
    if (done < total) rest = skip(rest, bytesWritten);
  }
  return total;
}

function skip(buffers: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (n >= buffers[i].length) n -= buffers[i++].length;
  return [buffers[i].subarray(n), ...buffers.slice(i + 1)];
}

/** Reads exactly `length` bytes at `position` into `into[offset..]`; throws if the file is shorter. */
export async function readFully(fh: FileHandle, into: Buffer, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(into, offset + done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`file ended at byte ${position + done}, expected ${length - done} more bytes`);
    done += bytesRead;
  }
}

/**
 * A window over a file of known size for reading it front to back in large
 * reads: view(offset, n) returns bytes [offset, offset + n), valid until the next
 * call, or null when the file is shorter. Memory stays at max(chunk, largest n).
 */
export class FileWindow {
  private buf: Buffer;
  private start = 0;
  private length = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly chunkBytes = 1 << 20,
  ) {
    this.buf = Buffer.allocUnsafe(Math.min(chunkBytes, size));
  }

  /** The bytes if they are already loaded: lets a reader skip an await per record. */
  cached(offset: number, n: number): Buffer | undefined {
    if (offset >= this.start && offset + n <= this.start + this.length) return this.buf.subarray(offset - this.start, offset - this.start + n);
    return undefined;
  }

  async view(offset: number, n: number): Promise<Buffer | null> {
    if (offset + n > this.size) return null;
    const hit = this.cached(offset, n);
    if (hit) return hit;
    const end = this.start + this.length;
    const want = Math.min(Math.max(n, this.chunkBytes), this.size - offset);
    const kept = offset >= this.start && offset < end ? end - offset : 0;
    const target = this.buf.length >= want ? this.buf : Buffer.allocUnsafe(want);
    if (kept > 0) this.buf.copy(target, 0, offset - this.start, end);
    this.buf = target;
    this.start = offset;
    this.length = kept;
    await readFully(this.fh, target, kept, want - kept, offset + kept);
    this.length = want;
    return target.subarray(0, n);
  }
}
