/**
 * Starts a server whose writes go through the replicated, durable log: an ensemble
 * member when the configuration has server.N lines, an ensemble of one otherwise.
 */
import type { ServerConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/server.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { ensembleConfig, type EnsembleConfig } from './config.js';
import { ReplicatedCommitter } from './replicated-committer.js';

export interface MemberStartOptions {
  config: ServerConfig;
  logger: Logger;
  clock?: Clock;
  /** The ensemble part; read from config (server.N lines, myid) when not given. */
  ensemble?: EnsembleConfig;
}

export async function startMember(opts: MemberStartOptions): Promise<RunningServer> {
  const ensemble = opts.ensemble ?? ensembleConfig(opts.config);
  let config = opts.config;
  // ZooKeeper 3.5's server line may carry this member's client address; it wins over clientPort.
  const me = ensemble.members.find((m) => m.id === ensemble.myid)!;
  if (me.clientPort !== 0 && ensemble.members.length > 1) {
    config = { ...config, port: me.clientPort, host: me.clientHost === '0.0.0.0' ? config.host : me.clientHost };
  }
  config = { ...config, serverId: ensemble.myid };
  const committer = await ReplicatedCommitter.open({ config, ensemble, logger: opts.logger, clock: opts.clock });
  return startServer({ config, logger: opts.logger, clock: opts.clock, committer, tree: committer.tree });
}
