/**
 * Ensemble configuration in ZooKeeper's terms: `server.N=host:peerPort:electionPort[:role][;[clientHost:]clientPort]`
 * lines, myid in the data directory, and the keys that tune replication. The member
 * list from the file only bootstraps a new ensemble: once a member has a log, its
 * membership is what the log says (reconfig changes it), as with ZooKeeper's dynamic config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerConfig } from '../server/config.js';

export interface MemberSpec {
  id: number;
  host: string;
  /** Replication traffic between members. */
  peerPort: number;
  /** Kept for ZooKeeper compatibility of the config line; replication uses peerPort for everything. */
  electionPort: number;
  role: 'participant' | 'observer';
  clientHost: string;
  clientPort: number;
}

export interface EnsembleConfig {
  myid: number;
  /** The bootstrap membership: used only when this member's log is empty. */
  members: MemberSpec[];
  /** Whether clients may change the membership with reconfig (ZooKeeper's reconfigEnabled). */
  reconfigEnabled: boolean;
  /** Serve read-only sessions while cut off from the quorum (ZooKeeper's readonlymode.enabled). */
  readOnlyMode: boolean;
  /** fsync the log before acknowledging (ZooKeeper's forceSync). */
  forceSync: boolean;
  /** Log entries between snapshots (ZooKeeper's snapCount). */
  snapCount: number;
  /** Leader heartbeat interval: the consensus core's tick. */
  heartbeatIntervalMs: number;
  /** Silence from the leader after which a follower stands for election (randomised up to twice this). */
  electionTimeoutMs: number;
  initLimit: number;
  syncLimit: number;
}

const ROLES = new Set(['participant', 'observer']);

function port(text: string, what: string, line: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new Error(`${line}: ${what} must be a port number, got "${text}"`);
  return n;
}

/** Parses the value of a `server.N` line; `line` names it in errors. */
export function parseServerSpec(id: number, value: string, line = `server.${id}`): MemberSpec {
  const [peerPart, clientPart] = value.split(';', 2).map((s) => s.trim());
  // host:peerPort:electionPort[:role]; IPv6 hosts come in brackets.
  const m = /^(\[[^\]]+\]|[^:]+):(\d+):(\d+)(?::(\w+))?$/.exec(peerPart);
  if (!m) throw new Error(`${line}: expected host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort], got "${value}"`);
  const role = (m[4] ?? 'participant').toLowerCase();
  if (!ROLES.has(role)) throw new Error(`${line}: role must be participant or observer, got "${m[4]}"`);
  const host = m[1].replace(/^\[|\]$/g, '');
  let clientHost = '0.0.0.0';
  let clientPort = 0;
  if (clientPart !== undefined && clientPart !== '') {
    const c = clientPart.lastIndexOf(':');
    if (c >= 0) {
      clientHost = clientPart.slice(0, c).replace(/^\[|\]$/g, '');
      clientPort = port(clientPart.slice(c + 1), 'client port', line);
    } else {
      clientPort = port(clientPart, 'client port', line);
    }
  }
  return {
    id,
    host,
    peerPort: port(m[2], 'peer port', line),
    electionPort: port(m[3], 'election port', line),
    role: role as MemberSpec['role'],
    clientHost,
    clientPort,
  };
}

const bracket = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** The value of a server.N line, as /zookeeper/config shows it. */
export function formatServerSpec(s: MemberSpec): string {
  return `${bracket(s.host)}:${s.peerPort}:${s.electionPort}:${s.role};${bracket(s.clientHost)}:${s.clientPort}`;
}

/** The members' lines of /zookeeper/config (the tree adds the version line), ordered by id. */
export function configMembersText(members: MemberSpec[]): string {
  return [...members].sort((a, b) => a.id - b.id).map((s) => `server.${s.id}=${formatServerSpec(s)}`).join('\n');
}

/** Where a client reaches a member: its client address, or the peer host when that is a wildcard. */
export function clientAddress(s: MemberSpec): string {
  const host = s.clientHost === '0.0.0.0' || s.clientHost === '::' ? s.host : s.clientHost;
  return `${bracket(host)}:${s.clientPort}`;
}

function bool(v: string | undefined, dflt: boolean, key: string): boolean {
  if (v === undefined) return dflt;
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === 'yes') return true;
  if (t === 'false' || t === 'no') return false;
  throw new Error(`${key} must be true/false or yes/no, got "${v}"`);
}

function int(v: string | undefined, dflt: number, key: string, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${key} must be an integer >= ${min}, got "${v}"`);
  return n;
}

/** Reads myid: the file dataDir/myid, as ZooKeeper does. */
export function readMyid(dataDir: string): number | undefined {
  const file = join(dataDir, 'myid');
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8').trim();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 255) throw new Error(`${file}: myid must be an integer 1-255, got "${text}"`);
  return n;
}

/**
 * The ensemble part of a server's configuration. Without server.N lines this is a
 * single-member ensemble (id 1 unless myid says otherwise) on this server's client port.
 */
export function ensembleConfig(cfg: ServerConfig, myidOverride?: number): EnsembleConfig {
  const x = cfg.extra;
  const members: MemberSpec[] = [];
  for (const [key, value] of Object.entries(x)) {
    const m = /^server\.(\d+)$/.exec(key);
    if (!m) continue;
    const id = Number(m[1]);
    if (id < 1 || id > 255) throw new Error(`${key}: server ids must be 1-255 (they are the top byte of session ids)`);
    members.push(parseServerSpec(id, value, key));
  }
  members.sort((a, b) => a.id - b.id);
  let myid = myidOverride ?? readMyid(cfg.dataDir);
  if (members.length === 0) {
    myid ??= 1;
    members.push({ id: myid, host: cfg.host, peerPort: 0, electionPort: 0, role: 'participant', clientHost: cfg.host, clientPort: cfg.port });
  } else {
    if (myid === undefined) throw new Error(`server.N lines are given but ${join(cfg.dataDir, 'myid')} does not exist: write this member's id there`);
    const me = members.find((s) => s.id === myid);
    if (!me) throw new Error(`myid is ${myid} but there is no server.${myid} line`);
    if (!members.some((s) => s.role === 'participant')) throw new Error('at least one server must be a participant');
  }
  const heartbeatIntervalMs = int(x['heartbeatIntervalMs'], 50, 'heartbeatIntervalMs');
  const electionTimeoutMs = int(x['electionTimeoutMs'], 300, 'electionTimeoutMs');
  if (electionTimeoutMs < 2 * heartbeatIntervalMs) throw new Error('electionTimeoutMs must be at least twice heartbeatIntervalMs');
  return {
    myid,
    members,
    reconfigEnabled: bool(x['reconfigEnabled'], false, 'reconfigEnabled'),
    readOnlyMode: bool(x['readonlymode.enabled'] ?? x['zookeeper.readonlymode.enabled'], false, 'readonlymode.enabled'),
    forceSync: bool(x['forceSync'] ?? x['zookeeper.forceSync'], true, 'forceSync'),
    snapCount: int(x['snapCount'] ?? x['zookeeper.snapCount'], 100_000, 'snapCount', 10),
    heartbeatIntervalMs,
    electionTimeoutMs,
    initLimit: int(x['initLimit'], 10, 'initLimit'),
    syncLimit: int(x['syncLimit'], 5, 'syncLimit'),
  };
}
