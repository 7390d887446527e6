/**
 * Starts a real Apache ZooKeeper 3.8 (the Debian `zookeeper` package) on a
 * loopback port, for differential, interop and benchmark runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

const JAVA_DIR = '/usr/share/java';

export interface ZooKeeperOptions {
  tickTime?: number;
  forceSync?: boolean;
  extendedTypesEnabled?: boolean;
  maxClientCnxns?: number;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  superDigest?: string;
  /** Extra JVM flags (heap size for benchmarks, say). */
  jvmArgs?: string[];
  /** 'test' (default) starts fast with a small JIT; 'server' runs as in production, for benchmarks. */
  tuning?: 'test' | 'server';
  /** Client port (default: a free one); a restart passes the previous one. */
  port?: number;
  /** Data directory to use and keep after stop (default: a temporary one, removed on stop), so a restart keeps the tree and sessions. */
  dataDir?: string;
}

export interface RunningZooKeeper {
  host: string;
  port: number;
  connectionString: string;
  pid: number;
  stop(): Promise<void>;
}

export function zookeeperInstalled(): boolean {
  return existsSync(join(JAVA_DIR, 'zookeeper.jar'));
}

/** True when tests that need Apache ZooKeeper should be skipped (only when asked to). */
export function skipWithoutZooKeeper(): string | false {
  if (zookeeperInstalled()) return false;
  if (process.env.PULSEKEEPER_SKIP_ZK === '1') return 'Apache ZooKeeper is not installed (PULSEKEEPER_SKIP_ZK=1)';
  throw new Error('Apache ZooKeeper is not installed: apt-get install zookeeper (or set PULSEKEEPER_SKIP_ZK=1 to skip these tests)');
}

function classpath(): string {
  const jars = readdirSync(JAVA_DIR).filter((f) =>
    /^(zookeeper|zookeeper-jute|netty-(buffer|codec|common|handler|resolver|transport|transport-native-epoll|transport-native-unix-common)|slf4j-api|slf4j-nop|metrics-core|snappy-java|commons-cli|commons-io|commons-lang3)\.jar$/.test(f),
  );
  return jars.map((j) => join(JAVA_DIR, j)).join(':');
}

const FAST_START = ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto'];

export function javaCommand(mainClass: string, args: string[], jvmArgs: string[] = [], tuning: 'test' | 'server' = 'test'): { cmd: string; args: string[] } {
  return {
    cmd: 'java',
    args: [...(tuning === 'test' ? FAST_START : []), ...jvmArgs, '-cp', classpath(), mainClass, ...args],
  };
}

export async function fourLetter(port: number, word: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port }, () => sock.write(word));
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    sock.on('error', reject);
    sock.setTimeout(5000, () => {
      sock.destroy();
      reject(new Error(`${word}: no answer`));
    });
  });
}

export async function startZooKeeper(opts: ZooKeeperOptions = {}): Promise<RunningZooKeeper> {
  const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'zk-'));
  const port = opts.port ?? (await freePort());
  const tickTime = opts.tickTime ?? 2000;
  const cfg = [
    `tickTime=${tickTime}`,
    `dataDir=${join(dir, 'data')}`,
    `clientPort=${port}`,
    'clientPortAddress=127.0.0.1',
    `maxClientCnxns=${opts.maxClientCnxns ?? 0}`,
    'admin.enableServer=false',
    '4lw.commands.whitelist=*',
    `forceSync=${opts.forceSync === false ? 'no' : 'yes'}`,
    opts.minSessionTimeout ? `minSessionTimeout=${opts.minSessionTimeout}` : '',
    opts.maxSessionTimeout ? `maxSessionTimeout=${opts.maxSessionTimeout}` : '',
  ].join('\n');
  writeFileSync(join(dir, 'zoo.cfg'), cfg + '\n');
  const jvm = [
    `-Dzookeeper.extendedTypesEnabled=${opts.extendedTypesEnabled ? 'true' : 'false'}`,
    '-Dzookeeper.admin.enableServer=false',
    ...(opts.superDigest ? [`-Dzookeeper.DigestAuthenticationProvider.superDigest=${opts.superDigest}`] : []),
    ...(opts.jvmArgs ?? ['-Xmx512m']),
  ];
  const { cmd, args } = javaCommand('org.apache.zookeeper.server.ZooKeeperServerMain', [join(dir, 'zoo.cfg')], jvm, opts.tuning);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => {
    if (stderr.length < 20000) stderr += c;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`ZooKeeper exited at start: ${stderr}`);
    try {
      // ruok answers before the server serves requests; srvr shows a Mode only once it does.
      if ((await fourLetter(port, 'srvr')).includes('Mode:')) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ZooKeeper did not start within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: '127.0.0.1',
    port,
    connectionString: `127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (!opts.dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
