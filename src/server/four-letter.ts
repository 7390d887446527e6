/**
 * Four-letter words: plain-text status commands sent instead of a ConnectRequest
 * on a fresh connection. Formats follow ZooKeeper's so existing tooling parses them.
 */
import * as os from 'node:os';
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
}

/** What the four-letter words read from the server. */
export interface FourLetterSource {
  config: ServerConfig;
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
  watchesByConnection(): Map<bigint, string[]>;
  watchesByPath(): Map<string, bigint[]>;
  sessions(): { id: bigint; timeoutMs: number; expiresAt: number }[];
  ephemeralsBySession(): Map<bigint, string[]>;
  resetConnectionStats(): void;
  resetServerStats(): void;
}

export const hex = (v: bigint | number): string => '0x' + v.toString(16);

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
      return src.connections().map(connectionLine).join('') + '\n';
    case 'conf':
      return configText(src.config, src.replication);
    case 'envi':
      return environment(src.config);
    case 'wchs': {
      const s = src.watchSummary();
      return `${s.connections} connections watching ${s.paths} paths\nTotal watches:${s.total}\n`;
    }
    case 'wchc': {
      let out = '';
      for (const [sid, paths] of src.watchesByConnection()) out += `${hex(sid)}\n` + paths.map((p) => `\t${p}\n`).join('');
      return out;
    }
    case 'wchp': {
      let out = '';
      for (const [path, sids] of src.watchesByPath()) out += `${path}\n` + sids.map((s) => `\t${hex(s)}\n`).join('');
      return out;
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

function latencyLine(l: LatencyStats): string {
  return `Latency min/avg/max: ${l.min}/${l.avg.toFixed(4)}/${l.max}\n`;
}

/** Modes in which a member answers clients; in the others ZooKeeper's srvr says it is not serving. */
const SERVING_MODES = new Set(['standalone', 'leader', 'follower', 'observer', 'read-only']);

function serverSummary(src: FourLetterSource, withClients: boolean): string {
  if (!SERVING_MODES.has(src.mode)) return 'This ZooKeeper instance is not currently serving requests\n';
  let out = VERSION_LINE + '\n';
  if (withClients) out += 'Clients:\n' + src.connections().map(connectionLine).join('') + '\n';
  out += latencyLine(src.latency);
  out += `Received: ${src.received}\nSent: ${src.sent}\nConnections: ${src.connections().length}\n`;
  out += `Outstanding: ${src.outstanding}\nZxid: ${hex(src.lastZxid)}\nMode: ${src.mode}\nNode count: ${src.nodeCount}\n`;
  const r = src.replication;
  if (r) {
    out += `Server id: ${r.myid}\nLeader: ${r.leader}\nTerm: ${r.term}\nCommit index: ${r.commitIndex}\nApplied index: ${r.appliedIndex}\n`;
    for (const p of r.peers) {
      out += `Peer ${p.id}: ${p.voter ? 'participant' : 'observer'}, ${p.connected ? 'connected' : 'unreachable'}, heard ${p.heartbeatAgeMs} ms ago, lag ${p.lag}, ${p.state}\n`;
    }
  }
  return out;
}

function connectionLine(c: ConnectionInfo): string {
  const base = ` /${c.remote}[1](queued=${c.queued},recved=${c.received},sent=${c.sent}`;
  if (c.sessionId === undefined) return base + ')\n';
  return (
    base +
    `,sid=${hex(c.sessionId)},lop=${c.lastOp},est=${Math.round(c.establishedAt)},to=${c.timeoutMs}` +
    `,lcxid=${hex(c.lastCxid)},lzxid=${hex(c.lastZxid)},lresp=${Math.round(c.lastResponseAt)},llat=${c.lastLatency}` +
    `,minlat=${c.latency.min},avglat=${c.latency.avg.toFixed(4)},maxlat=${c.latency.max})\n`
  );
}

function monitor(src: FourLetterSource): string {
  const w = src.watchSummary();
  const rows: [string, string | number][] = [
    ['zk_version', VERSION_LINE.slice('Zookeeper version: '.length)],
    ['zk_server_state', src.mode],
    ['zk_avg_latency', src.latency.avg.toFixed(4)],
    ['zk_max_latency', src.latency.max],
    ['zk_min_latency', src.latency.min],
    ['zk_packets_received', src.received],
    ['zk_packets_sent', src.sent],
    ['zk_num_alive_connections', src.connections().length],
    ['zk_outstanding_requests', src.outstanding],
    ['zk_znode_count', src.nodeCount],
    ['zk_watch_count', w.total],
    ['zk_ephemerals_count', src.ephemeralCount],
    ['zk_approximate_data_size', src.approximateDataSize],
    ['zk_global_sessions', src.sessionCount],
    ['zk_max_file_descriptor_count', 0],
    ['pk_expired_sessions', src.expiredSessions],
    ...replicationRows(src.replication),
    ['pk_heap_used_bytes', process.memoryUsage().heapUsed],
    ['pk_rss_bytes', process.memoryUsage.rss()],
  ];
  return rows.map(([k, v]) => `${k}\t${v}\n`).join('');
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

function configText(c: ServerConfig, r: ReplicationStatus | undefined): string {
  return (
    `clientPort=${c.port}\nclientPortAddress=${c.host}\ndataDir=${c.dataDir}\ntickTime=${c.tickTime}\n` +
    `maxClientCnxns=${c.maxClientCnxns}\nminSessionTimeout=${c.minSessionTimeout}\n` +
    `maxSessionTimeout=${c.maxSessionTimeout}\nserverId=${c.serverId}\n` +
    `jute.maxbuffer=${c.maxBuffer}\nextendedTypesEnabled=${c.extendedTypesEnabled}\n` +
    (r ? r.members.map((m) => `server.${m.id}=${m.spec}\n`).join('') : '')
  );
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
  let out = `SessionTracker dump:\nGlobal Sessions(${sessions.length}):\n`;
  for (const s of sessions) out += `${hex(s.id)}\t${s.timeoutMs}ms\n`;
  const eph = src.ephemeralsBySession();
  out += `ephemeral nodes dump:\nSessions with Ephemerals (${eph.size}):\n`;
  for (const [sid, paths] of eph) out += `${hex(sid)}:\n` + paths.map((p) => `\t${p}\n`).join('');
  return out;
}
