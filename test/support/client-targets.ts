/**
 * The servers the client and recipe suites run against, with the faults each can
 * take. Every target starts and stops; a target may also restart (the whole
 * service goes down and comes back on the same address with its state) or fail
 * over (the server the clients use dies and another serves them). A test that
 * needs a capability its target lacks is skipped, naming why.
 *
 * Adding a target is one more entry in clientTargets().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PulseClient, type ClientOptions } from '../../src/client/index.js';
import { TestEnsemble } from './ensemble.js';
import { pulsekeeperTarget, type ServerOptions } from './servers.js';
import { ZooKeeperEnsemble } from './zookeeper-ensemble.js';
import { startZooKeeper, zookeeperInstalled, type RunningZooKeeper } from './zookeeper.js';

export type Capability = 'restart' | 'failover';

export interface ClientTestServer {
  /** Every server of the service, as a client's connection string. */
  connectionString: string;
  /**
   * Options for every client of a test: on an ensemble they keep the host order, so
   * all clients use the same member (reads see each other's writes at once) until
   * it fails and they all move to the next.
   */
  clientOptions: ClientOptions;
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
      clientOptions: {},
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
    restart: 'the in-process test server keeps its tree in memory (restarts run on pulsekeeper-ensemble)',
    failover: 'a single server has no second one (failover runs on pulsekeeper-ensemble)',
  },
  async start(opts = {}) {
    const s = await pulsekeeperTarget.start(opts);
    return { connectionString: s.connectionString, clientOptions: {}, ports: [s.port], stop: () => s.stop() };
  },
};

/** What both ensemble harnesses offer. */
interface Ensemble {
  readonly members: Map<number, { clientPort: number }>;
  kill(id: number): Promise<void>;
  startMember(id: number): Promise<void>;
  waitForLeader(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Three members of real processes. Clients keep the host order, so a new client
 * uses the first member (the leader at start) while it is up. restart kills every
 * member and starts them again on their data; failover kills the first member,
 * waits for a leader among the others (clients move to them) and brings the killed
 * one back.
 */
function ensembleTarget(name: string, launch: (opts: ServerOptions) => Promise<Ensemble>): ClientTarget {
  return {
    name,
    lacks: {},
    async start(opts = {}) {
      const e = await launch(opts);
      const leader = await e.waitForLeader();
      const ids = [leader, ...[...e.members.keys()].filter((id) => id !== leader)];
      const ports = ids.map((id) => e.members.get(id)!.clientPort);
      return {
        connectionString: ports.map((p) => `127.0.0.1:${p}`).join(','),
        clientOptions: { random: () => 0.99 }, // a shuffle that keeps the order
        ports,
        stop: () => e.close(),
        async restart() {
          await Promise.all(ids.map((id) => e.kill(id)));
          await Promise.all(ids.map((id) => e.startMember(id)));
          await e.waitForLeader();
        },
        async failover() {
          await e.kill(ids[0]);
          await e.waitForLeader();
          await e.startMember(ids[0]);
        },
      };
    },
  };
}

export const pulsekeeperEnsembleClientTarget = ensembleTarget('pulsekeeper-ensemble', (opts) => {
  const cfg: Record<string, string | number | boolean> = { forceSync: 'no' };
  for (const key of ['minSessionTimeout', 'maxSessionTimeout', 'extendedTypesEnabled'] as const) if (opts[key] !== undefined) cfg[key] = opts[key];
  return TestEnsemble.start({ size: 3, tickTime: opts.tickTime, cfg });
});

export const zookeeperEnsembleClientTarget = ensembleTarget('zookeeper-ensemble', (opts) => {
  const cfg: Record<string, string | number> = {};
  for (const key of ['minSessionTimeout', 'maxSessionTimeout'] as const) if (opts[key] !== undefined) cfg[key] = opts[key];
  return ZooKeeperEnsemble.start({
    tickTime: opts.tickTime,
    forceSync: false,
    cfg,
    jvmArgs: ['-Xmx256m', `-Dzookeeper.extendedTypesEnabled=${opts.extendedTypesEnabled ? 'true' : 'false'}`],
  });
});

/** A client of a test server, with the server's client options under the test's own. */
export function connectTo(server: ClientTestServer, opts: ClientOptions = {}): Promise<PulseClient> {
  return PulseClient.connect(server.connectionString, { ...server.clientOptions, ...opts });
}

/**
 * Apache ZooKeeper (the reference, proving each test right) and pulsekeeper, single
 * servers; with `ensemble`, a pulsekeeper ensemble too, and with `zookeeperEnsemble`
 * a ZooKeeper ensemble (to prove the tests that need one right).
 */
export function clientTargets(opts: { ensemble?: boolean; zookeeperEnsemble?: boolean } = {}): ClientTarget[] {
  const zk = zookeeperInstalled();
  if (!zk && process.env.PULSEKEEPER_SKIP_ZK !== '1') {
    throw new Error('Apache ZooKeeper is not installed: apt-get install zookeeper (or set PULSEKEEPER_SKIP_ZK=1)');
  }
  return [
    ...(zk ? [zookeeperClientTarget] : []),
    pulsekeeperClientTarget,
    ...(opts.zookeeperEnsemble && zk ? [zookeeperEnsembleClientTarget] : []),
    ...(opts.ensemble ? [pulsekeeperEnsembleClientTarget] : []),
  ];
}
