/**
 * Jute, ZooKeeper's binary record encoding: big-endian ints and longs, booleans as
 * one byte, strings and buffers with an int length prefix (-1 = null), vectors with
 * an int count prefix (-1 = null).
 */

export class DecodeError extends Error {
  override name = 'DecodeError';
}

/** Reads jute values from a buffer; every length is checked before anything is allocated. */
export class JuteReader {
  offset: number;
  readonly end: number;

  constructor(
    readonly buf: Buffer,
    offset = 0,
    end = buf.length,
  ) {
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (this.offset + n > this.end) {
      throw new DecodeError(`truncated ${what}: need ${n} bytes at offset ${this.offset}, have ${this.end - this.offset}`);
    }
  }

  int(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** A 64-bit value as a JS number: exact up to 2^53, which zxids, times and versions stay within. */
  long(): number {
    this.need(8, 'long');
    const hi = this.buf.readInt32BE(this.offset);
    const lo = this.buf.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  longBig(): bigint {
    this.need(8, 'long');
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  bool(): boolean {
    this.need(1, 'boolean');
    return this.buf[this.offset++] !== 0;
  }

  private length(what: string): number {
    const n = this.int();
    if (n < -1) throw new DecodeError(`negative ${what} length ${n}`);
    if (n > this.end - this.offset) {
      throw new DecodeError(`${what} length ${n} exceeds the ${this.end - this.offset} bytes left`);
    }
    return n;
  }

  ustring(): string | null {
    const n = this.length('string');
    if (n < 0) return null;
    const s = this.buf.toString('utf8', this.offset, this.offset + n);
    this.offset += n;
    return s;
  }

  /** A string where null is not meaningful (paths): null reads as "". */
  string(): string {
    return this.ustring() ?? '';
  }

  buffer(): Buffer | null {
    const n = this.length('buffer');
    if (n < 0) return null;
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  /** A vector: count checked against the bytes left (each element takes at least minElementBytes). */
  vector<T>(read: (r: JuteReader) => T, minElementBytes = 4): T[] | null {
    const n = this.int();
    if (n === -1) return null;
    // As ZooKeeper's jute reads it: any other negative count is an empty vector.
    if (n < 0) return [];
    if (n * minElementBytes > this.end - this.offset) {
      throw new DecodeError(`vector of ${n} elements exceeds the ${this.end - this.offset} bytes left`);
    }
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) out[i] = read(this);
    return out;
  }

  stringVector(): string[] {
    return this.vector((r) => r.string()) ?? [];
  }
}

const INITIAL = 256;

/**
 * Writes jute values into a growing buffer. A frame starts with 4 bytes reserved
 * for its length so a whole reply is built with one allocation and no concatenation.
 */
export class JuteWriter {
  buf: Buffer;
  offset = 0;

  constructor(initial = INITIAL) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.offset + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  int(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.offset);
    this.offset += 4;
    return this;
  }

  long(v: number): this {
    this.ensure(8);
    const hi = Math.floor(v / 0x1_0000_0000);
    this.buf.writeInt32BE(hi | 0, this.offset);
    this.buf.writeUInt32BE(v - hi * 0x1_0000_0000, this.offset + 4);
    this.offset += 8;
    return this;
  }

  longBig(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.offset);
    this.offset += 8;
    return this;
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.offset++] = v ? 1 : 0;
    return this;
  }

  ustring(v: string | null | undefined): this {
    if (v == null) return this.int(-1);
    const n = Buffer.byteLength(v, 'utf8');
    this.ensure(4 + n);
    this.buf.writeInt32BE(n, this.offset);
    this.buf.write(v, this.offset + 4, n, 'utf8');
    this.offset += 4 + n;
    return this;
  }

  buffer(v: Uint8Array | null | undefined): this {
    if (v == null) return this.int(-1);
    this.ensure(4 + v.length);
    this.buf.writeInt32BE(v.length, this.offset);
    this.buf.set(v, this.offset + 4);
    this.offset += 4 + v.length;
    return this;
  }

  vector<T>(items: readonly T[] | null | undefined, write: (w: JuteWriter, item: T) => void): this {
    if (items == null) return this.int(-1);
    this.int(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  stringVector(items: readonly string[] | null | undefined): this {
    return this.vector(items, (w, s) => w.ustring(s));
  }

  /** Starts a length-prefixed frame at the current offset; returns its start for endFrame. */
  beginFrame(): number {
    const start = this.offset;
    this.ensure(4);
    this.offset += 4;
    return start;
  }

  endFrame(start: number): void {
    this.buf.writeInt32BE(this.offset - start - 4, start);
  }

  /** Copies out everything written so far and starts over. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.offset));
    this.offset = 0;
    return out;
  }

  /** The bytes written so far, without copying (valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.offset);
  }

  reset(): void {
    this.offset = 0;
  }
}
