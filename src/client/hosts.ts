/** Connection strings ("host:port,host:port/chroot") and the order hosts are tried in. */
import { invalidPathReason } from '../tree/path.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface ConnectionString {
  hosts: HostPort[];
  /** '' when there is none. */
  chroot: string;
}

/** A connection string can name at most this many hosts. */
const MAX_HOSTS = 256;

function parseHost(text: string, whole: string): HostPort {
  // [v6addr]:port, or host:port; a missing port means ZooKeeper's default.
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`bad host "${text}" in connection string "${whole}" (host:port expected)`);
  const port = m[2] === undefined ? 2181 : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port in "${text}" of connection string "${whole}"`);
  return { host: m[1], port };
}

export function parseConnectionString(s: string): ConnectionString {
  const slash = s.indexOf('/');
  const hostPart = slash >= 0 ? s.slice(0, slash) : s;
  let chroot = slash >= 0 ? s.slice(slash) : '';
  if (chroot === '/') chroot = '';
  if (chroot) {
    const reason = invalidPathReason(chroot);
    if (reason) throw new Error(`bad chroot "${chroot}" in connection string "${s}": ${reason}`);
  }
  const names = hostPart.split(',').map((h) => h.trim()).filter(Boolean);
  if (names.length === 0) throw new Error(`no hosts in connection string "${s}"`);
  if (names.length > MAX_HOSTS) throw new Error(`connection string names ${names.length} hosts; at most ${MAX_HOSTS}`);
  return { hosts: names.map((h) => parseHost(h, s)), chroot };
}

/** A uniformly random permutation (Fisher-Yates), so clients spread over the ensemble. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
