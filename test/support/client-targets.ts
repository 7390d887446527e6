/**
 * The servers the client and recipe suites run against, with the faults each can
 * take. Every target starts and stops; a target may also restart (the whole
 * service goes down and comes back on the same address with its state) or fail
 * over (the server the clients use dies and another serves them). A test that
 * needs a capability its target lacks is skipped, naming why.
 *
 * Adding a target (the replicated pulsekeeper ensemble, say) is one more entry in
 * clientTargets().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pulsekeeperTarget, type ServerOptions } from './servers.js';
import { startZooKeeper, zookeeperInstalled, type RunningZooKeeper } from './zookeeper.js';

export type Capability = 'restart' | 'failover';

export interface ClientTestServer {
  /** Every server of the service, as a client's connection string. */
  connectionString: string;
  /** The client port of each server (to put a fault-injecting proxy in front). */
  ports: number[];
  stop(): Promise<void>;
  /** Kills every server (SIGKILL) and starts them again on the same ports and data. */
  restart?(): Promise<void>;
  /** Kills the server serving clients; another one takes over. */
  failover?(): Promise<void>;
}

export interface ClientTarget {
  name: string;
  start(opts?: ServerOptions): Promise<ClientTestServer>;
  /** Why each missing capability is missing. */
  lacks: Partial<Record<Capability, string>>;
}

/** The skip reason for a test that needs `cap` on `target`, or false to run it. */
export function skipUnless(target: ClientTarget, cap: Capability): string | false {
  const why = target.lacks[cap];
  return why ? `${target.name} cannot ${cap}: ${why}` : false;
}

export const zookeeperClientTarget: ClientTarget = {
  name: 'zookeeper',
  lacks: { failover: 'a standalone Apache ZooKeeper has no second server' },
  async start(opts = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), 'zk-client-'));
    const zkOpts = { forceSync: false, ...opts, dataDir };
    let zk: RunningZooKeeper = await startZooKeeper(zkOpts);
    const port = zk.port;
    return {
      connectionString: zk.connectionString,
      ports: [port],
      async stop() {
        await zk.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
      async restart() {
        process.kill(zk.pid, 'SIGKILL');
        await zk.stop();
        zk = await startZooKeeper({ ...zkOpts, port });
      },
    };
  },
};

export const pulsekeeperClientTarget: ClientTarget = {
  name: 'pulsekeeper',
  lacks: {
    restart: 'the single server keeps its tree in memory (the durable ensemble is not built yet)',
    failover: 'the single server has no second server (the replicated ensemble is not built yet)',
  },
  async start(opts = {}) {
    const s = await pulsekeeperTarget.start(opts);
    return { connectionString: s.connectionString, ports: [s.port], stop: () => s.stop() };
  },
};

/** Apache ZooKeeper (the reference, proving each test right) and pulsekeeper. */
export function clientTargets(): ClientTarget[] {
  if (zookeeperInstalled()) return [zookeeperClientTarget, pulsekeeperClientTarget];
  if (process.env.PULSEKEEPER_SKIP_ZK === '1') return [pulsekeeperClientTarget];
  throw new Error('Apache ZooKeeper is not installed: apt-get install zookeeper (or set PULSEKEEPER_SKIP_ZK=1)');
}
