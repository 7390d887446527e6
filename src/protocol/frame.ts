/**
 * Length-prefixed framing (4-byte big-endian length, then the body) for a byte
 * stream. The length is checked before anything is buffered for it, so a peer
 * cannot make the server allocate more than maxFrameBytes.
 */
export class FrameError extends Error {
  override name = 'FrameError';
}

export class FrameDecoder {
  /** Bytes received and not yet taken as frames; `offset` is where the next frame starts. */
  private pending: Buffer | undefined;
  private offset = 0;
  /** Whether `pending` is a copy of its own rather than a view into a received chunk. */
  private owned = false;

  constructor(readonly maxFrameBytes: number) {}

  /** Bytes held: an incomplete frame, or complete ones not taken yet. */
  get buffered(): number {
    return this.pending ? this.pending.length - this.offset : 0;
  }

  /** Adds received bytes; frames are then taken one at a time with next(). */
  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (!this.pending) {
      this.pending = chunk;
      this.offset = 0;
      this.owned = false;
      return;
    }
    this.pending = Buffer.concat([this.pending.subarray(this.offset), chunk]);
    this.offset = 0;
    this.owned = true;
  }

  /**
   * The next complete frame body (a view, no copy), or undefined until more bytes
   * arrive. Throws FrameError as soon as a length prefix is out of range.
   */
  next(): Buffer | undefined {
    const buf = this.pending;
    if (!buf) return undefined;
    const off = this.offset;
    if (buf.length - off >= 4) {
      const len = buf.readInt32BE(off);
      if (len < 0 || len > this.maxFrameBytes) {
        throw new FrameError(`frame length ${len} outside 0..${this.maxFrameBytes}`);
      }
      if (buf.length - off - 4 >= len) {
        this.offset = off + 4 + len;
        if (this.offset === buf.length) this.pending = undefined;
        return buf.subarray(off + 4, off + 4 + len);
      }
    }
    // Keep a copy of the incomplete tail, so the chunk it came from can be freed.
    if (!this.owned) {
      this.pending = Buffer.from(buf.subarray(off));
      this.offset = 0;
      this.owned = true;
    }
    return undefined;
  }

  /** Adds a chunk and returns every complete frame body it finishes. */
  push(chunk: Buffer): Buffer[] {
    this.append(chunk);
    const frames: Buffer[] = [];
    for (let f = this.next(); f; f = this.next()) frames.push(f);
    return frames;
  }
}
