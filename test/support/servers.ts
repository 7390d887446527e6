/**
 * The servers a test can run against with one interface: Apache ZooKeeper (the
 * reference, proving the test itself right), the in-process pulsekeeper server (in
 * memory, and on the durable log as `pulsekeeper start` runs it) and a 3-member
 * pulsekeeper ensemble of real processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type EmbeddedServerOptions, type RunningServer } from '../../src/index.js';
import { TestEnsemble } from './ensemble.js';
import { fourLetter, startZooKeeper, zookeeperInstalled } from './zookeeper.js';

export interface TestServer {
  name: TargetName;
  /** The client port clients use unless a test spreads them: a follower's in an ensemble. */
  port: number;
  /** `127.0.0.1:port` only, so every client of a test lands on the same server unless it asks for another. */
  connectionString: string;
  /**
   * The client port of every server, `port` first; one entry for a single server. A test
   * that puts a client on `ports[1 % ports.length]` puts it on another member of an
   * ensemble and on the same server otherwise.
   */
  ports: number[];
  /** The member processes, for an ensemble (roles, logs). */
  ensemble?: TestEnsemble;
  stop(): Promise<void>;
}

export interface ServerOptions {
  tickTime?: number;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  extendedTypesEnabled?: boolean;
}

export type TargetName = 'zookeeper' | 'pulsekeeper' | 'pulsekeeper-durable' | 'pulsekeeper-ensemble';

export interface Target {
  name: TargetName;
  start(opts?: ServerOptions): Promise<TestServer>;
}

export const zookeeperTarget: Target = {
  name: 'zookeeper',
  async start(opts = {}) {
    const zk = await startZooKeeper({ forceSync: false, ...opts });
    return { name: 'zookeeper', port: zk.port, connectionString: zk.connectionString, ports: [zk.port], stop: () => zk.stop() };
  },
};

export const pulsekeeperTarget: Target = {
  name: 'pulsekeeper',
  async start(opts = {}) {
    const s = await startServer({ ...opts, fourLetterWords: '*' });
    return { name: 'pulsekeeper', port: s.port, connectionString: s.connectionString, ports: [s.port], stop: () => s.close() };
  },
};

/**
 * An in-process server with a data directory: an ensemble of one on the durable,
 * replicated log, what `pulsekeeper start` runs. The directory is a temporary one,
 * removed when the server closes; no fsync, as the other targets run without it.
 */
export async function startDurableServer(opts: EmbeddedServerOptions = {}): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pk-durable-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  let s: RunningServer;
  try {
    // forceSync is a zoo.cfg key the embedded options do not name: it goes where a config file's keys go.
    s = await startServer({ ...opts, dataDir: dir, extra: { forceSync: 'no' } } as EmbeddedServerOptions);
  } catch (e) {
    remove();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    host: s.host,
    port: s.port,
    connectionString: s.connectionString,
    server: s.server,
    close: () => (closing ??= s.close().finally(remove)),
  };
}

export const pulsekeeperDurableTarget: Target = {
  name: 'pulsekeeper-durable',
  async start(opts = {}) {
    const s = await startDurableServer({ ...opts, fourLetterWords: '*' });
    return { name: 'pulsekeeper-durable', port: s.port, connectionString: s.connectionString, ports: [s.port], stop: () => s.close() };
  },
};

/** How often followers pass the sessions they heard from to the leader, in the ensemble target. */
export const ENSEMBLE_HEARTBEAT_MS = 50;

/**
 * Three pulsekeeper members in their own processes. Clients go to a follower by default
 * (its writes, syncs and session touches travel to the leader and back); `ports` lists
 * the leader next, then the other follower.
 */
export const pulsekeeperEnsembleTarget: Target = {
  name: 'pulsekeeper-ensemble',
  async start(opts = {}) {
    const cfg: Record<string, string | number | boolean> = { forceSync: 'no', heartbeatIntervalMs: ENSEMBLE_HEARTBEAT_MS };
    for (const key of ['minSessionTimeout', 'maxSessionTimeout', 'extendedTypesEnabled'] as const) {
      if (opts[key] !== undefined) cfg[key] = opts[key];
    }
    // A port found free is bound by its member only once the member has started: another
    // process on the machine may take it first. Only that is tried again, with new ports.
    for (let attempt = 1; ; attempt++) {
      let ensemble: TestEnsemble | undefined;
      try {
        ensemble = await TestEnsemble.start({ size: 3, tickTime: opts.tickTime, cfg });
        await checkOwnPorts(ensemble);
        const leader = await ensemble.waitForLeader();
        const followers = [...ensemble.members.keys()].filter((id) => id !== leader);
        const ports = [followers[0], leader, ...followers.slice(1)].map((id) => ensemble!.member(id).clientPort);
        return {
          name: 'pulsekeeper-ensemble',
          port: ports[0],
          connectionString: `127.0.0.1:${ports[0]}`,
          ports,
          ensemble,
          stop: () => ensemble!.close(),
        };
      } catch (e) {
        await ensemble?.close();
        const portTaken = e instanceof PortTaken || String(e).includes('EADDRINUSE');
        if (!portTaken || attempt === 3) throw e;
      }
    }
  },
};

class PortTaken extends Error {}

/** Every member runs and answers on its own client port, not another server that took the port first. */
async function checkOwnPorts(e: TestEnsemble): Promise<void> {
  for (const m of e.members.values()) {
    if (!e.isRunning(m.id)) throw new Error(`member ${m.id} stopped after starting:\n${m.log.slice(-4000)}`);
    const conf = await fourLetter(m.clientPort, 'conf');
    if (!conf.split('\n').includes(`dataDir=${m.dataDir}`)) throw new PortTaken(`client port ${m.clientPort} of member ${m.id} is another server's`);
  }
}

/**
 * Apache ZooKeeper when installed (PULSEKEEPER_SKIP_ZK=1 allows running without it) and
 * the in-process pulsekeeper; with `durable`, the in-process one on the durable log too;
 * with `ensemble`, the pulsekeeper ensemble too.
 */
export function targets(opts: { ensemble?: boolean; durable?: boolean } = {}): Target[] {
  const pulsekeepers = [pulsekeeperTarget];
  if (opts.durable) pulsekeepers.push(pulsekeeperDurableTarget);
  if (opts.ensemble) pulsekeepers.push(pulsekeeperEnsembleTarget);
  if (zookeeperInstalled()) return [zookeeperTarget, ...pulsekeepers];
  if (process.env.PULSEKEEPER_SKIP_ZK === '1') return pulsekeepers;
  throw new Error('Apache ZooKeeper is not installed: apt-get install zookeeper (or set PULSEKEEPER_SKIP_ZK=1)');
}
