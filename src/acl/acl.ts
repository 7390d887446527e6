/**
 * ZooKeeper's ACL model: schemes world, auth, digest and ip; permission checks;
 * super user by digest; authentication of auth packets.
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { ErrorCode } from '../protocol/errors.js';
import { Perms } from '../protocol/opcodes.js';
import type { ACL, ClientInfo } from '../protocol/records.js';

/** An identity a connection has proven (ZooKeeper's authInfo entries). */
export interface AuthId {
  scheme: string;
  id: string;
}

export const OPEN_ACL_UNSAFE: ACL[] = [{ perms: Perms.ALL, id: { scheme: 'world', id: 'anyone' } }];
export const READ_ACL_UNSAFE: ACL[] = [{ perms: Perms.READ, id: { scheme: 'world', id: 'anyone' } }];

/** `user:base64(sha1("user:password"))`, ZooKeeper's DigestAuthenticationProvider.generateDigest. */
export function generateDigest(userPassword: string): string {
  const user = userPassword.split(':', 1)[0];
  return user + ':' + createHash('sha1').update(userPassword, 'utf8').digest('base64');
}

/**
 * Handles an auth packet. Returns the ids to add to the connection, or null when
 * the scheme is unknown (the server answers AUTHFAILED and closes the connection).
 */
export function authenticate(scheme: string, auth: Buffer, clientIp: string, superDigest?: string): AuthId[] | null {
  switch (scheme) {
    case 'digest': {
      const id = generateDigest(auth.toString('utf8'));
      const ids: AuthId[] = [{ scheme: 'digest', id }];
      if (superDigest !== undefined && id === superDigest) ids.push({ scheme: 'super', id: '' });
      return ids;
    }
    case 'ip':
      return [{ scheme: 'ip', id: clientIp }];
    default:
      return null;
  }
}

/** whoAmI's answer: each id with the user part a provider shows (the super digest adds ("super", ""), as in ZooKeeper). */
export function clientInfo(auth: readonly AuthId[]): ClientInfo[] {
  return auth.map((a) => ({ authScheme: a.scheme, user: a.scheme === 'digest' ? a.id.split(':', 1)[0] : a.id }));
}

function ipBytes(addr: string): Buffer | null {
  if (isIPv4(addr)) return Buffer.from(addr.split('.').map(Number));
  if (isIPv6(addr)) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
    if (mapped) return ipBytes(mapped[1]);
    // Expand "::" and parse 8 hex groups.
    const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8) return null;
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return out;
  }
  return null;
}

function validIpAclId(id: string): boolean {
  const slash = id.indexOf('/');
  const addr = ipBytes(slash < 0 ? id : id.slice(0, slash));
  if (!addr) return false;
  if (slash < 0) return true;
  const bitsText = id.slice(slash + 1);
  if (!/^[+-]?\d+$/.test(bitsText)) return false;
  const bits = Number(bitsText);
  return bits >= 0 && bits <= addr.length * 8;
}

function ipMatches(clientIp: string, aclId: string): boolean {
  const slash = aclId.indexOf('/');
  const want = ipBytes(slash < 0 ? aclId : aclId.slice(0, slash));
  const have = ipBytes(clientIp);
  if (!want || !have || want.length !== have.length) return false;
  const bits = slash < 0 ? want.length * 8 : Number(aclId.slice(slash + 1));
  for (let i = 0; i < want.length; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
    if ((want[i] & mask) !== (have[i] & mask)) return false;
  }
  return true;
}

/** Java's String.split(":").length == 2, which is what a digest ACL id must satisfy. */
function validDigestAclId(id: string): boolean {
  const parts = id.split(':');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.length === 2;
}

/**
 * ZooKeeper's fixupACL: removes duplicates, expands the auth scheme into the
 * connection's authenticated ids, and rejects what no provider accepts.
 */
export function fixupAcl(acl: readonly ACL[] | null, auth: readonly AuthId[]): ACL[] | typeof ErrorCode.INVALIDACL {
  if (!acl || acl.length === 0) return ErrorCode.INVALIDACL;
  const seen = new Set<string>();
  const out: ACL[] = [];
  const add = (a: ACL) => {
    const key = `${a.perms}\u0000${a.id.scheme}\u0000${a.id.id}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(a);
    }
  };
  for (const a of acl) {
    const { scheme, id } = a.id;
    if (scheme === 'world' && id === 'anyone') add(a);
    else if (scheme === 'auth') {
      let any = false;
      for (const cid of auth) {
        if (cid.scheme === 'digest') {
          add({ perms: a.perms, id: { scheme: cid.scheme, id: cid.id } });
          any = true;
        }
      }
      if (!any) return ErrorCode.INVALIDACL;
    } else if (scheme === 'digest' && validDigestAclId(id)) add(a);
    else if (scheme === 'ip' && validIpAclId(id)) add(a);
    else return ErrorCode.INVALIDACL;
  }
  return out;
}

/** ZooKeeper's checkACL: true when some entry grants any bit of perm to one of the ids. */
export function checkPerm(acl: readonly ACL[], perm: number, auth: readonly AuthId[]): boolean {
  if (acl.length === 0) return true;
  for (const a of auth) if (a.scheme === 'super') return true;
  for (const a of acl) {
    if ((a.perms & perm) === 0) continue;
    const { scheme, id } = a.id;
    if (scheme === 'world' && id === 'anyone') return true;
    for (const cid of auth) {
      if (cid.scheme !== scheme) continue;
      if (scheme === 'digest' && cid.id === id) return true;
      if (scheme === 'ip' && ipMatches(cid.id, id)) return true;
    }
  }
  return false;
}

/** getACL without ADMIN shows digest ids with the hash replaced, as ZooKeeper does. */
export function redactDigests(acl: readonly ACL[]): ACL[] {
  return acl.map((a) => (a.id.scheme === 'digest' ? { perms: a.perms, id: { scheme: 'digest', id: a.id.id.replace(/:.*/s, ':x') } } : a));
}
