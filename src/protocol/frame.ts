/**
 * Length-prefixed framing (4-byte big-endian length, then the body) for a byte
 * stream. The length is checked before anything is buffered for it, so a peer
 * cannot make the server allocate more than maxFrameBytes.
 */
export class FrameError extends Error {
  override name = 'FrameError';
}

export class FrameDecoder {
  private pending: Buffer | undefined;

  constructor(readonly maxFrameBytes: number) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }

  /** The first four bytes seen, if at least four have arrived and no frame was taken yet. */
  peek4(): Buffer | undefined {
    return this.pending && this.pending.length >= 4 ? this.pending.subarray(0, 4) : undefined;
  }

  /**
   * Adds a chunk and returns the complete frame bodies it finishes. Bodies that lie
   * wholly in the chunk are views into it (no copy).
   */
  push(chunk: Buffer): Buffer[] {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const frames: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readInt32BE(off);
      if (len < 0 || len > this.maxFrameBytes) {
        throw new FrameError(`frame length ${len} outside 0..${this.maxFrameBytes}`);
      }
      if (buf.length - off - 4 < len) break;
      frames.push(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    if (off < buf.length) {
      // Keep a copy of the incomplete tail so the chunk it came from can be freed.
      this.pending = Buffer.from(buf.subarray(off));
    }
    return frames;
  }
}
