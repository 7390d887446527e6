/**
 * The data tree's session table: each live session's timeout and password, as the
 * createSession and closeSession transactions leave them.
 *
 * Kept in columns by slot (a map from id to slot, timeouts in an Int32Array, the
 * 16-byte passwords side by side in one byte array) rather than an object and a Buffer
 * per session: a server holding tens of thousands of idle heartbeating sessions pays
 * about 30 bytes for each here instead of about 130. Values handed out are copies, so a
 * caller (a snapshot in progress) keeps what it read even after the slot is reused.
 */
import { SESSION_PASSWORD_BYTES } from './txn-codec.js';

export interface SessionInfo {
  timeoutMs: number;
  password: Buffer;
}

/** Sessions side by side: the k-th session's id, timeout and password (16 bytes from k * 16). */
export interface SessionColumns {
  ids: BigInt64Array;
  timeouts: Int32Array;
  passwords: Uint8Array;
}

export class SessionTable implements Iterable<[bigint, SessionInfo]> {
  private readonly slotOf = new Map<bigint, number>();
  private timeouts = new Int32Array(0);
  private passwords = new Uint8Array(0);
  /** Slots given back by closed sessions. */
  private readonly freeSlots: number[] = [];
  private used = 0;

  get size(): number {
    return this.slotOf.size;
  }

  has(id: bigint): boolean {
    return this.slotOf.has(id);
  }

  get(id: bigint): SessionInfo | undefined {
    const i = this.slotOf.get(id);
    return i === undefined ? undefined : this.info(i);
  }

  set(id: bigint, info: SessionInfo): this {
    if (info.password.length !== SESSION_PASSWORD_BYTES) {
      throw new RangeError(`session password must be ${SESSION_PASSWORD_BYTES} bytes, got ${info.password.length}`);
    }
    let i = this.slotOf.get(id);
    if (i === undefined) {
      i = this.allocate();
      this.slotOf.set(id, i);
    }
    this.timeouts[i] = info.timeoutMs;
    this.passwords.set(info.password, i * SESSION_PASSWORD_BYTES);
    return this;
  }

  delete(id: bigint): boolean {
    const i = this.slotOf.get(id);
    if (i === undefined) return false;
    this.slotOf.delete(id);
    this.passwords.fill(0, i * SESSION_PASSWORD_BYTES, (i + 1) * SESSION_PASSWORD_BYTES);
    this.freeSlots.push(i);
    return true;
  }

  /**
   * A copy of the whole table as it is now, in three columns (28 bytes a session), for a
   * snapshot written while sessions come and go: no object per session to outlive the
   * young generation while the snapshot is being written.
   */
  copy(): SessionColumns {
    const n = this.slotOf.size;
    const out: SessionColumns = { ids: new BigInt64Array(n), timeouts: new Int32Array(n), passwords: new Uint8Array(n * SESSION_PASSWORD_BYTES) };
    let k = 0;
    for (const [id, i] of this.slotOf) {
      out.ids[k] = id;
      out.timeouts[k] = this.timeouts[i];
      out.passwords.set(this.passwords.subarray(i * SESSION_PASSWORD_BYTES, (i + 1) * SESSION_PASSWORD_BYTES), k * SESSION_PASSWORD_BYTES);
      k++;
    }
    return out;
  }

  *[Symbol.iterator](): IterableIterator<[bigint, SessionInfo]> {
    for (const [id, i] of this.slotOf) yield [id, this.info(i)];
  }

  private info(i: number): SessionInfo {
    const at = i * SESSION_PASSWORD_BYTES;
    return { timeoutMs: this.timeouts[i], password: Buffer.from(this.passwords.subarray(at, at + SESSION_PASSWORD_BYTES)) };
  }

  private allocate(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.used === this.timeouts.length) {
      // Grown by half at a time: these columns are much of what an idle session costs.
      const capacity = Math.max(1024, Math.ceil(this.used * 1.5));
      const timeouts = new Int32Array(capacity);
      timeouts.set(this.timeouts);
      const passwords = new Uint8Array(capacity * SESSION_PASSWORD_BYTES);
      passwords.set(this.passwords);
      this.timeouts = timeouts;
      this.passwords = passwords;
    }
    return this.used++;
  }
}
