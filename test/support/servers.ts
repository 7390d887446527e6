/**
 * The servers a test can run against with one interface: Apache ZooKeeper (the
 * reference, proving the test itself right) and pulsekeeper.
 */
import { startServer } from '../../src/index.js';
import { startZooKeeper, zookeeperInstalled } from './zookeeper.js';

export interface TestServer {
  name: string;
  port: number;
  connectionString: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  tickTime?: number;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  extendedTypesEnabled?: boolean;
}

export interface Target {
  name: 'zookeeper' | 'pulsekeeper';
  start(opts?: ServerOptions): Promise<TestServer>;
}

export const zookeeperTarget: Target = {
  name: 'zookeeper',
  async start(opts = {}) {
    const zk = await startZooKeeper({ forceSync: false, ...opts });
    return { name: 'zookeeper', port: zk.port, connectionString: zk.connectionString, stop: () => zk.stop() };
  },
};

export const pulsekeeperTarget: Target = {
  name: 'pulsekeeper',
  async start(opts = {}) {
    const s = await startServer({ ...opts, fourLetterWords: '*' });
    return { name: 'pulsekeeper', port: s.port, connectionString: s.connectionString, stop: () => s.close() };
  },
};

/** Both servers when Apache ZooKeeper is installed (PULSEKEEPER_SKIP_ZK=1 allows running without it). */
export function targets(): Target[] {
  if (zookeeperInstalled()) return [zookeeperTarget, pulsekeeperTarget];
  if (process.env.PULSEKEEPER_SKIP_ZK === '1') return [pulsekeeperTarget];
  throw new Error('Apache ZooKeeper is not installed: apt-get install zookeeper (or set PULSEKEEPER_SKIP_ZK=1)');
}
