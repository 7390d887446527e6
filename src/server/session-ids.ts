/**
 * Session ids and passwords. Ids follow ZooKeeper's layout (server id in the top
 * byte, a time-derived counter below) so they stay unique across restarts. The
 * password is an HMAC of the id under a per-server secret: nothing per session
 * needs storing to check a reattach.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export class SessionIds {
  private next: bigint;
  private readonly secret: Buffer;

  constructor(serverId: number, secret: Buffer = randomBytes(32), wallMs = Date.now()) {
    // Wall time only seeds uniqueness across restarts; liveness never reads it.
    const base = (BigInt(wallMs) << 24n) & 0x00ff_ffff_ffff_ffffn;
    this.next = (BigInt(serverId & 0xff) << 56n) | base;
    this.secret = secret;
  }

  nextId(): bigint {
    this.next = (this.next + 1n) & 0xffff_ffff_ffff_ffffn;
    return BigInt.asIntN(64, this.next);
  }

  password(id: bigint): Buffer {
    const idBytes = Buffer.alloc(8);
    idBytes.writeBigInt64BE(BigInt.asIntN(64, id));
    return createHmac('sha256', this.secret).update(idBytes).digest().subarray(0, 16);
  }

  checkPassword(id: bigint, passwd: Buffer): boolean {
    const want = this.password(id);
    return passwd.length === want.length && timingSafeEqual(passwd, want);
  }
}
