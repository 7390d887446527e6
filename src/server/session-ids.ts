/**
 * Session ids and passwords. Ids follow ZooKeeper's layout (server id in the top
 * byte, a time-derived counter below) so they stay unique across restarts and
 * across the members of an ensemble. The password is random, chosen by the member
 * that creates the session and replicated with it, so any member can check a reattach.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export class SessionIds {
  private next: bigint;

  constructor(serverId: number, wallMs = Date.now()) {
    // Wall time only seeds uniqueness across restarts; liveness never reads it.
    const base = (BigInt(wallMs) << 24n) & 0x00ff_ffff_ffff_ffffn;
    this.next = (BigInt(serverId & 0xff) << 56n) | base;
  }

  nextId(): bigint {
    this.next = (this.next + 1n) & 0xffff_ffff_ffff_ffffn;
    return BigInt.asIntN(64, this.next);
  }

  /** Random bytes handed out 16 at a time: one allocation for many passwords instead of a buffer of its own each. */
  private slab = Buffer.alloc(0);
  private slabUsed = 0;

  newPassword(): Buffer {
    if (this.slabUsed === this.slab.length) {
      this.slab = randomBytes(PASSWORD_BYTES * 1024);
      this.slabUsed = 0;
    }
    this.slabUsed += PASSWORD_BYTES;
    return this.slab.subarray(this.slabUsed - PASSWORD_BYTES, this.slabUsed);
  }
}

const PASSWORD_BYTES = 16;

export function passwordMatches(stored: Buffer, given: Buffer): boolean {
  return given.length === stored.length && timingSafeEqual(given, stored);
}
