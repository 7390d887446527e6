/**
 * Shared-key encryption and authentication of membership packets: AES-256-GCM with
 * a random 96-bit nonce per packet and the packet header as additional data. The
 * primary key seals; every key in the ring is tried to open, so keys rotate
 * without downtime (add the new key everywhere, make it primary, remove the old).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const NONCE = 12;
const TAG = 16;

export class Keyring {
  private keys: Buffer[];

  constructor(keys: Buffer[]) {
    this.keys = checked(keys);
  }

  /** A key file holds base64 keys, one per line; the first is the primary. */
  static fromFile(file: string): Keyring {
    return new Keyring(readKeyFile(file));
  }

  /** Takes the keys of a key file again (a running member rotates keys when its file changes). */
  reload(file: string): void {
    this.keys = checked(readKeyFile(file));
  }

  static generateKey(): Buffer {
    return randomBytes(32);
  }

  get size(): number {
    return this.keys.length;
  }

  add(key: Buffer): void {
    if (key.length !== 32) throw new Error('membership keys are 32 bytes (AES-256)');
    if (!this.keys.some((k) => k.equals(key))) this.keys.push(key);
  }

  use(key: Buffer): void {
    this.add(key);
    this.keys = [key, ...this.keys.filter((k) => !k.equals(key))];
  }

  remove(key: Buffer): void {
    if (this.keys[0].equals(key)) throw new Error('the primary key cannot be removed; make another primary first');
    this.keys = this.keys.filter((k) => !k.equals(key));
  }

  seal(header: Buffer, plaintext: Buffer): Buffer {
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.keys[0], nonce);
    c.setAAD(header);
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([nonce, body, c.getAuthTag()]);
  }

  /** The plaintext, or null when no key authenticates the packet. */
  open(header: Buffer, sealed: Buffer): Buffer | null {
    if (sealed.length < NONCE + TAG) return null;
    const nonce = sealed.subarray(0, NONCE);
    const tag = sealed.subarray(sealed.length - TAG);
    const body = sealed.subarray(NONCE, sealed.length - TAG);
    for (const key of this.keys) {
      try {
        const d = createDecipheriv('aes-256-gcm', key, nonce);
        d.setAAD(header);
        d.setAuthTag(tag);
        return Buffer.concat([d.update(body), d.final()]);
      } catch {
        // not this key
      }
    }
    return null;
  }
}

function readKeyFile(file: string): Buffer[] {
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => Buffer.from(l, 'base64'));
}

function checked(keys: Buffer[]): Buffer[] {
  for (const k of keys) if (k.length !== 32) throw new Error('membership keys are 32 bytes (AES-256)');
  if (keys.length === 0) throw new Error('a key ring needs at least one key');
  return [...keys];
}
