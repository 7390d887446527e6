/**
 * Server configuration: defaults, zoo.cfg parsing and command-line overrides.
 * Key names follow ZooKeeper's zoo.cfg so an existing file works unchanged.
 */
import { readFileSync } from 'node:fs';

export interface ServerConfig {
  /** Address the client port binds to (zoo.cfg clientPortAddress). */
  host: string;
  port: number;
  dataDir: string;
  /** Base time unit in ms; session timeouts and the expiry sweep are counted in ticks. */
  tickTime: number;
  minSessionTimeout: number;
  maxSessionTimeout: number;
  /** Concurrent connections allowed from one client IP; 0 means unlimited (as in ZooKeeper). */
  maxClientCnxns: number;
  /** Four-letter words answered on the client port; '*' allows all. */
  fourLetterWords: ReadonlySet<string> | '*';
  /** jute.maxbuffer: largest request body and znode data accepted, in bytes. */
  maxBuffer: number;
  /** Container and TTL nodes need this, as in ZooKeeper. */
  extendedTypesEnabled: boolean;
  /** `super:<base64 sha1>` digest whose holder passes every ACL. */
  superDigest?: string;
  /** Requests a connection may have in flight before the server stops reading from it. */
  maxPendingPerConnection: number;
  /** Server id (myid); the top byte of session ids. */
  serverId: number;
  /** How often empty containers and expired TTL nodes are looked for, in ms. */
  containerCheckIntervalMs: number;
  /** Keys read from a config file that this server does not use (kept for later parts). */
  extra: Record<string, string>;
}

export const ALL_FOUR_LETTER_WORDS = [
  'ruok', 'srvr', 'stat', 'mntr', 'cons', 'conf', 'envi', 'wchs', 'wchc', 'wchp', 'dump', 'isro', 'crst', 'srst',
] as const;

export function defaultConfig(): ServerConfig {
  const tickTime = 2000;
  return {
    host: '127.0.0.1',
    port: 2181,
    dataDir: './data',
    tickTime,
    minSessionTimeout: 2 * tickTime,
    maxSessionTimeout: 20 * tickTime,
    maxClientCnxns: 60,
    fourLetterWords: new Set(['srvr']),
    maxBuffer: 0xfffff,
    extendedTypesEnabled: false,
    maxPendingPerConnection: 1000,
    serverId: 0,
    containerCheckIntervalMs: 60_000,
    extra: {},
  };
}

export type ConfigOverrides = Partial<Omit<ServerConfig, 'fourLetterWords' | 'extra'>> & {
  fourLetterWords?: Iterable<string> | '*';
};

/** Parses the text of a zoo.cfg-style file (key=value lines, # comments). */
export function parseZooCfg(text: string): ConfigOverrides & { extra: Record<string, string> } {
  const out: ConfigOverrides & { extra: Record<string, string> } = { extra: {} };
  let minSet = false;
  let maxSet = false;
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`config line ${n + 1}: expected key=value, got "${line}"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const int = () => {
      const v = Number(value);
      if (!Number.isInteger(v)) throw new Error(`config line ${n + 1}: ${key} must be an integer, got "${value}"`);
      return v;
    };
    switch (key) {
      case 'tickTime': out.tickTime = int(); break;
      case 'dataDir': out.dataDir = value; break;
      case 'clientPort': out.port = int(); break;
      case 'clientPortAddress': out.host = value; break;
      case 'maxClientCnxns': out.maxClientCnxns = int(); break;
      case 'minSessionTimeout': out.minSessionTimeout = int(); minSet = true; break;
      case 'maxSessionTimeout': out.maxSessionTimeout = int(); maxSet = true; break;
      case '4lw.commands.whitelist':
        out.fourLetterWords = value === '*' ? '*' : value.split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case 'jute.maxbuffer': out.maxBuffer = int(); break;
      case 'extendedTypesEnabled':
      case 'zookeeper.extendedTypesEnabled':
        out.extendedTypesEnabled = value === 'true';
        break;
      case 'superDigest':
      case 'zookeeper.DigestAuthenticationProvider.superDigest':
        out.superDigest = value;
        break;
      case 'maxPendingPerConnection': out.maxPendingPerConnection = int(); break;
      case 'znode.container.checkIntervalMs': out.containerCheckIntervalMs = int(); break;
      default: out.extra[key] = value;
    }
  }
  // -1 (or unset) means "derive from tickTime", as in ZooKeeper.
  if (minSet && out.minSessionTimeout! < 0) delete out.minSessionTimeout;
  if (maxSet && out.maxSessionTimeout! < 0) delete out.maxSessionTimeout;
  return out;
}

export function loadZooCfg(file: string): ConfigOverrides & { extra: Record<string, string> } {
  return parseZooCfg(readFileSync(file, 'utf8'));
}

/**
 * Builds a full config: defaults, then a config file's values, then explicit overrides.
 * Session timeout bounds not given anywhere follow tickTime (2 and 20 ticks).
 */
export function resolveConfig(...layers: (ConfigOverrides & { extra?: Record<string, string> })[]): ServerConfig {
  const cfg = defaultConfig();
  let minGiven = false;
  let maxGiven = false;
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      if (k === 'fourLetterWords') {
        cfg.fourLetterWords = v === '*' ? '*' : new Set(v as Iterable<string>);
      } else if (k === 'extra') {
        Object.assign(cfg.extra, v);
      } else {
        (cfg as unknown as Record<string, unknown>)[k] = v;
        if (k === 'minSessionTimeout') minGiven = true;
        if (k === 'maxSessionTimeout') maxGiven = true;
      }
    }
  }
  if (!minGiven) cfg.minSessionTimeout = 2 * cfg.tickTime;
  if (!maxGiven) cfg.maxSessionTimeout = 20 * cfg.tickTime;
  validateConfig(cfg);
  return cfg;
}

function validateConfig(cfg: ServerConfig): void {
  const problems: string[] = [];
  if (!(cfg.tickTime > 0)) problems.push('tickTime must be positive');
  if (!(cfg.port >= 0 && cfg.port <= 65535)) problems.push('clientPort must be 0-65535');
  if (cfg.minSessionTimeout > cfg.maxSessionTimeout) problems.push('minSessionTimeout must not exceed maxSessionTimeout');
  if (!(cfg.maxBuffer > 0)) problems.push('jute.maxbuffer must be positive');
  if (cfg.maxClientCnxns < 0) problems.push('maxClientCnxns must be >= 0');
  if (!(cfg.maxPendingPerConnection > 0)) problems.push('maxPendingPerConnection must be positive');
  if (problems.length) throw new Error('invalid configuration: ' + problems.join('; '));
}
