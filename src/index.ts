/**
 * pulsekeeper's embedded API: run a server in-process, e.g. in an application's tests.
 *
 *   const server = await startServer({ port: 0 });
 *   // connect any ZooKeeper client to server.connectionString
 *   await server.close();
 *
 * Without a dataDir the server keeps its tree in memory (fast, nothing on disk, gone
 * when it closes); with one it is an ensemble of one on the durable log, as `pulsekeeper
 * start` runs it, and a later server on the same directory finds the same tree.
 */
import { resolveConfig, type ConfigOverrides } from './server/config.js';
import { startServer as startWithConfig, type RunningServer } from './server/server.js';
import { silentLogger, type Logger } from './util/log.js';
import type { Clock } from './util/clock.js';

export type EmbeddedServerOptions = ConfigOverrides & {
  /** Structured logger; silent by default for embedded use. */
  logger?: Logger;
  clock?: Clock;
};

export async function startServer(opts: EmbeddedServerOptions = {}): Promise<RunningServer> {
  const { logger, clock, ...overrides } = opts;
  const config = resolveConfig({ port: 0, ...overrides });
  if (opts.dataDir === undefined) return startWithConfig({ config, logger, clock });
  const { mkdirSync } = await import('node:fs');
  const { startMember } = await import('./ensemble/member.js');
  mkdirSync(config.dataDir, { recursive: true });
  return startMember({ config, logger: logger ?? silentLogger, clock });
}

export type { RunningServer } from './server/server.js';
export type { ServerConfig, ConfigOverrides } from './server/config.js';
export { resolveConfig, parseZooCfg } from './server/config.js';
