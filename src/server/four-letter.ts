/**
 * Four-letter words: plain-text status commands sent instead of a ConnectRequest
 * on a fresh connection. Formats follow ZooKeeper's so existing tooling parses them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import type { ReplicationStatus } from '../pipeline/committer.js';
import type { ServerConfig } from './config.js';

export const VERSION = '0.1.0';
export const VERSION_LINE = `Zookeeper version: 3.8.0-pulsekeeper-${VERSION}, built for the ZooKeeper 3.8 client protocol`;

export interface LatencyStats {
  min: number;
  avg: number;
  max: number;
}

export interface ConnectionInfo {
  remote: string;
  /** What ZooKeeper's NIO server shows in brackets: 1 for a connection it reads from, 0 for the one answering. */
  interest: 0 | 1;
  queued: number;
  received: number;
  sent: number;
  sessionId?: bigint;
  timeoutMs?: number;
  lastOp: string;
  establishedAt: number;
  lastCxid: number;
  lastZxid: number;
  lastResponseAt: number;
  lastLatency: number;
  latency: LatencyStats;
  /** When the connection expires unless heard from again (wall-clock ms), for dump. */
  expiresAt: number;
}

/** What the four-letter words read from the server. */
export interface FourLetterSource {
  config: ServerConfig;
  /** The port clients connect to (config.port may be 0: any free one). */
  clientPort: number;
  /** Milliseconds since the server started. */
  uptimeMs: number;
  authFailures: number;
  connectionsRefused: number;
  mode: string;
  /** Replication's state, when the commit step is a replicated log. */
  replication: ReplicationStatus | undefined;
  readOnly: boolean;
  received: number;
  sent: number;
  outstanding: number;
  latency: LatencyStats;
  lastZxid: number;
  nodeCount: number;
  approximateDataSize: number;
  ephemeralCount: number;
  sessionCount: number;
  expiredSessions: number;
  connections(): ConnectionInfo[];
  watchSummary(): { connections: number; paths: number; total: number };
  watchCount: number;
  watchesByConnection(): Map<bigint, string[]>;
  watchesByPath(): Map<string, bigint[]>;
  /** expiresAt: wall-clock ms of the session's expiry bucket. */
  sessions(): { id: bigint; timeoutMs: number; expiresAt: number }[];
  ephemeralsBySession(): Map<bigint, string[]>;
  resetConnectionStats(): void;
  resetServerStats(): void;
}

export const hex = (v: bigint | number): string => '0x' + v.toString(16);

/** Pending connections the client port's listen queue holds. */
export const LISTEN_BACKLOG = 4096;

const FOUR_LETTER = new Set(['ruok', 'srvr', 'stat', 'mntr', 'cons', 'conf', 'envi', 'wchs', 'wchc', 'wchp', 'dump', 'isro', 'crst', 'srst']);

/** The command, if the first four bytes of a connection spell a known four-letter word. */
export function fourLetterWord(first4: Buffer): string | undefined {
  const word = first4.toString('latin1', 0, 4);
  return FOUR_LETTER.has(word) ? word : undefined;
}

export function answerFourLetterWord(word: string, src: FourLetterSource): string {
  const allowed = src.config.fourLetterWords;
  if (allowed !== '*' && !allowed.has(word)) {
    return `${word} is not executed because it is not in the whitelist.\n`;
  }
  switch (word) {
    case 'ruok':
      return 'imok';
    case 'srvr':
      return serverSummary(src, false);
    case 'stat':
      return serverSummary(src, true);
    case 'mntr':
      return monitor(src);
    case 'cons':
      return src.connections().map((c) => connectionLine(c, true)).join('') + '\n';
    case 'conf':
      return configText(src, src.replication);
    case 'envi':
      return environment(src.config);
    case 'wchs': {
      const s = src.watchSummary();
      return `${s.connections} connections watching ${s.paths} paths\nTotal watches:${s.total}\n`;
    }
    case 'wchc': {
      let out = '';
      for (const [sid, paths] of src.watchesByConnection()) out += `${hex(sid)}\n` + paths.map((p) => `\t${p}\n`).join('');
      return out + '\n';
    }
    case 'wchp': {
      let out = '';
      for (const [path, sids] of src.watchesByPath()) out += `${path}\n` + sids.map((s) => `\t${hex(s)}\n`).join('');
      return out + '\n';
    }
    case 'dump':
      return dump(src);
    case 'isro':
      return src.readOnly ? 'ro' : 'rw';
    case 'crst':
      src.resetConnectionStats();
      return 'Connection stats reset.\n';
    case 'srst':
      src.resetServerStats();
      return 'Server stats reset.\n';
  }
  return '';
}

/** An average as ZooKeeper prints it: rounded to 4 places, then Java's Double.toString ("1.5", "0.0", "1.8571"). */
function javaAverage(v: number): string {
  const r = Math.round(v * 10_000) / 10_000;
  return Number.isInteger(r) ? r.toFixed(1) : String(r);
}

function latencyLine(l: LatencyStats): string {
  return `Latency min/avg/max: ${l.min}/${javaAverage(l.avg)}/${l.max}\n`;
}

/** ZooKeeper's node count takes in the root twice (as "" and "/"). */
const nodeCount = (src: FourLetterSource): number => src.nodeCount + 1;

/** Modes in which a member answers clients; in the others ZooKeeper's srvr says it is not serving. */
const SERVING_MODES = new Set(['standalone', 'leader', 'follower', 'observer', 'read-only']);

function serverSummary(src: FourLetterSource, withClients: boolean): string {
  if (!SERVING_MODES.has(src.mode)) return 'This ZooKeeper instance is not currently serving requests\n';
  let out = VERSION_LINE + '\n';
  if (withClients) out += 'Clients:\n' + src.connections().map((c) => connectionLine(c, false)).join('') + '\n';
  out += latencyLine(src.latency);
  out += `Received: ${src.received}\nSent: ${src.sent}\nConnections: ${src.connections().length}\n`;
  out += `Outstanding: ${src.outstanding}\nZxid: ${hex(src.lastZxid)}\nMode: ${src.mode}\nNode count: ${nodeCount(src)}\n`;
  const r = src.replication;
  if (r) {
    out += `Server id: ${r.myid}\nLeader: ${r.leader}\nTerm: ${r.term}\nCommit index: ${r.commitIndex}\nApplied index: ${r.appliedIndex}\n`;
    for (const p of r.peers) {
      out += `Peer ${p.id}: ${p.voter ? 'participant' : 'observer'}, ${p.connected ? 'connected' : 'unreachable'}, heard ${p.heartbeatAgeMs} ms ago, lag ${p.lag}, ${p.state}\n`;
    }
  }
  return out;
}

/** A line of cons (full) or of stat (short), as ZooKeeper prints them. */
function connectionLine(c: ConnectionInfo, full: boolean): string {
  const base = ` /${c.remote}[${c.interest}](queued=${c.queued},recved=${c.received},sent=${c.sent}`;
  if (!full || c.sessionId === undefined) return base + ')\n';
  return (
    base +
    `,sid=${hex(c.sessionId)},lop=${c.lastOp},est=${Math.round(c.establishedAt)},to=${c.timeoutMs}` +
    `,lcxid=${hex(c.lastCxid)},lzxid=${hex(c.lastZxid)},lresp=${Math.round(c.lastResponseAt)},llat=${c.lastLatency}` +
    `,minlat=${c.latency.min},avglat=${Math.floor(c.latency.avg)},maxlat=${c.latency.max})\n`
  );
}

function monitor(src: FourLetterSource): string {
  const w = src.watchSummary();
  const rows: [string, string | number][] = [
    ['zk_version', VERSION_LINE.slice('Zookeeper version: '.length)],
    ['zk_server_state', src.mode],
    ['zk_ephemerals_count', src.ephemeralCount],
    ['zk_num_alive_connections', src.connections().length],
    ['zk_avg_latency', javaAverage(src.latency.avg)],
    ['zk_outstanding_requests', src.outstanding],
    ['zk_znode_count', nodeCount(src)],
    ['zk_global_sessions', src.sessionCount],
    ['zk_local_sessions', 0],
    ['zk_packets_sent', src.sent],
    ['zk_packets_received', src.received],
    ['zk_max_latency', src.latency.max],
    ['zk_min_latency', src.latency.min],
    ['zk_watch_count', src.watchCount],
    ...fileDescriptorRows(),
    ['zk_approximate_data_size', src.approximateDataSize],
    ['zk_uptime', Math.round(src.uptimeMs)],
    ['zk_auth_failed_count', src.authFailures],
    ['zk_connection_rejected', src.connectionsRefused],
    ['pk_expired_sessions', src.expiredSessions],
    ['pk_watched_paths', w.paths],
    ...replicationRows(src.replication),
    ['pk_heap_used_bytes', process.memoryUsage().heapUsed],
    ['pk_rss_bytes', process.memoryUsage.rss()],
  ];
  return rows.map(([k, v]) => `${k}\t${v}\n`).join('');
}

/** Open and allowed file descriptors, read from /proc as ZooKeeper's JVM reports them (absent elsewhere, as on Windows). */
function fileDescriptorRows(): [string, number][] {
  try {
    const max = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    // The listing itself holds one descriptor open.
    const open = readdirSync('/proc/self/fd').length - 1;
    return max ? [['zk_max_file_descriptor_count', Number(max[1])], ['zk_open_file_descriptor_count', open]] : [];
  } catch {
    return [];
  }
}

function replicationRows(r: ReplicationStatus | undefined): [string, string | number][] {
  if (!r) return [];
  const rows: [string, string | number][] = [];
  if (r.role === 'leader') {
    // As ZooKeeper counts them: followers include observers; synced ones are the voters in step.
    rows.push(['zk_followers', r.peers.length], ['zk_synced_followers', r.peers.filter((p) => p.voter && p.state === 'replicate').length]);
  }
  rows.push(['pk_server_id', r.myid], ['pk_leader', r.leader], ['pk_term', r.term], ['pk_commit_index', r.commitIndex], ['pk_applied_index', r.appliedIndex], ['pk_last_index', r.lastIndex]);
  for (const p of r.peers) {
    rows.push([`pk_peer_${p.id}_heartbeat_age_ms`, p.heartbeatAgeMs], [`pk_peer_${p.id}_lag`, p.lag], [`pk_peer_${p.id}_connected`, p.connected ? 1 : 0]);
  }
  rows.push(['pk_members', r.members.map((m) => `${m.id}:${m.role}:${m.clientAddress}`).join(',')]);
  return rows;
}

function configText(src: FourLetterSource, r: ReplicationStatus | undefined): string {
  const c = src.config;
  const dirSize = directorySize(c.dataDir);
  return (
    `clientPort=${src.clientPort}\nsecureClientPort=-1\ndataDir=${c.dataDir}\ndataDirSize=${dirSize}\n` +
    `dataLogDir=${c.dataDir}\ndataLogSize=${dirSize}\ntickTime=${c.tickTime}\nmaxClientCnxns=${c.maxClientCnxns}\n` +
    `minSessionTimeout=${c.minSessionTimeout}\nmaxSessionTimeout=${c.maxSessionTimeout}\n` +
    `clientPortListenBacklog=${LISTEN_BACKLOG}\nserverId=${c.serverId}\n` +
    `clientPortAddress=${c.host}\njute.maxbuffer=${c.maxBuffer}\nextendedTypesEnabled=${c.extendedTypesEnabled}\n` +
    (r ? r.members.map((m) => `server.${m.id}=${m.spec}\n`).join('') : '')
  );
}

/** Bytes in the files of a directory tree (0 if it does not exist: a server with its tree in memory). */
function directorySize(dir: string): number {
  let total = 0;
  try {
    for (const name of readdirSync(dir, { recursive: true }) as string[]) {
      const st = statSync(join(dir, name), { throwIfNoEntry: false });
      if (st?.isFile()) total += st.size;
    }
  } catch {
    // missing or unreadable
  }
  return total;
}

function environment(c: ServerConfig): string {
  const rows: [string, string][] = [
    ['zookeeper.version', VERSION_LINE.slice('Zookeeper version: '.length)],
    ['host.name', os.hostname()],
    ['node.version', process.version],
    ['os.name', os.type()],
    ['os.arch', os.arch()],
    ['os.version', os.release()],
    ['user.name', os.userInfo().username],
    ['user.dir', process.cwd()],
    ['process.pid', String(process.pid)],
    ['data.dir', c.dataDir],
  ];
  return 'Environment:\n' + rows.map(([k, v]) => `${k}=${v}\n`).join('');
}

function dump(src: FourLetterSource): string {
  const sessions = src.sessions();
  let out = `SessionTracker dump:\n` + expirySets('Session Sets', sessions.map((x) => [x.expiresAt, hex(x.id)]));
  const eph = src.ephemeralsBySession();
  out += `ephemeral nodes dump:\nSessions with Ephemerals (${eph.size}):\n`;
  for (const [sid, paths] of eph) out += `${hex(sid)}:\n` + paths.map((p) => `\t${p}\n`).join('');
  const conns = src.connections().map((c): [number, string] => [c.expiresAt, `ip: /${c.remote} sessionId: ${hex(c.sessionId ?? 0n)}`]);
  return out + 'Connections dump:\n' + expirySets('Connections Sets', conns);
}

/** ZooKeeper's listing of an expiry queue: one group per expiry time, earliest first. */
function expirySets(title: string, items: [number, string][]): string {
  const sets = new Map<number, string[]>();
  for (const [at, line] of items) {
    let set = sets.get(at);
    if (!set) sets.set(at, (set = []));
    set.push(line);
  }
  let out = `${title} (${sets.size})/(${items.length}):\n`;
  for (const at of [...sets.keys()].sort((a, b) => a - b)) {
    const lines = sets.get(at)!;
    out += `${lines.length} expire at ${javaDate(at)}:\n` + lines.map((l) => `\t${l}\n`).join('');
  }
  return out;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Java's Date.toString in UTC: "Wed Nov 25 04:40:50 UTC 2026". */
function javaDate(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} UTC ${d.getUTCFullYear()}`;
}
