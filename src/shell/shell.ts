/**
 * `pulsekeeper shell [connection string] [-c "cmd; cmd"]`: the zkCli commands people
 * know, with history and tab completion of paths. With -c it runs the commands
 * and exits non-zero if any failed.
 */
import { createInterface, type Interface } from 'node:readline';
import { parseArgs } from 'node:util';
import { PulseClient, ZooKeeperError, type ACL, type Mode, type Stat } from '../client/index.js';
import { ErrorCode } from '../protocol/errors.js';

const PERMS = 'rwcda'; // READ=1, WRITE=2, CREATE=4, DELETE=8, ADMIN=16
const HELP = `commands:
  ls [-s] [-R] path            get [-s] [-w] path           stat path
  create [-e] [-s] [-c] [-t ttl] path [data]               set path data [-v version]
  delete [-v version] path     deleteall path               sync path
  getAcl path                  setAcl path acl (scheme:id:perms,...)
  addauth scheme auth          whoami                       config
  getEphemerals [path]         getAllChildrenNumber path
  addWatch [-m persistent|persistent_recursive] path        removewatches path [-c|-d|-a]
  help                         quit`;

const hex = (n: number | bigint) => '0x' + n.toString(16);

export function formatStat(s: Stat): string {
  const time = (t: number) => new Date(t).toString().replace(/ \(.*\)$/, '');
  return [
    `cZxid = ${hex(s.czxid)}`,
    `ctime = ${time(s.ctime)}`,
    `mZxid = ${hex(s.mzxid)}`,
    `mtime = ${time(s.mtime)}`,
    `pZxid = ${hex(s.pzxid)}`,
    `cversion = ${s.cversion}`,
    `dataVersion = ${s.version}`,
    `aclVersion = ${s.aversion}`,
    `ephemeralOwner = ${hex(BigInt.asUintN(64, s.ephemeralOwner))}`,
    `dataLength = ${s.dataLength}`,
    `numChildren = ${s.numChildren}`,
  ].join('\n');
}

function permString(perms: number): string {
  return [...'cdrwa'].filter((p) => perms & (1 << PERMS.indexOf(p))).join('');
}

function parseAcl(text: string): ACL[] {
  return text.split(',').map((entry) => {
    const last = entry.lastIndexOf(':');
    const first = entry.indexOf(':');
    if (first < 0 || last === first) throw new Error(`bad ACL entry "${entry}" (scheme:id:perms)`);
    let perms = 0;
    for (const ch of entry.slice(last + 1)) {
      const bit = PERMS.indexOf(ch);
      if (bit < 0) throw new Error(`bad permission "${ch}" in "${entry}"`);
      perms |= 1 << bit;
    }
    return { perms, id: { scheme: entry.slice(0, first), id: entry.slice(first + 1, last) } };
  });
}

/** The message zkCli prints for an error. */
export function describeError(e: unknown, path?: string): string {
  if (!(e instanceof ZooKeeperError)) return e instanceof Error ? e.message : String(e);
  const p = e.path ?? path ?? '';
  switch (e.code) {
    case ErrorCode.NONODE:
      return `Node does not exist: ${p}`;
    case ErrorCode.NODEEXISTS:
      return `Node already exists: ${p}`;
    case ErrorCode.BADVERSION:
      return `version No is not valid : ${p}`;
    case ErrorCode.NOAUTH:
      return `Insufficient permission : ${p}`;
    case ErrorCode.NOTEMPTY:
      return `Node not empty: ${p}`;
    case ErrorCode.NOCHILDRENFOREPHEMERALS:
      return `Ephemerals cannot have children: ${p}`;
    default:
      return e.message;
  }
}

/** Splits a command line into words, honouring single and double quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m; (m = re.exec(line)); ) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

export class Shell {
  constructor(
    readonly client: PulseClient,
    private readonly print: (text: string) => void,
  ) {}

  /** Runs one command line; resolves true when it succeeded. */
  async run(line: string): Promise<boolean> {
    const argv = words(line);
    if (argv.length === 0) return true;
    const [cmd, ...rest] = argv;
    const flags = new Set(rest.filter((a) => /^-[a-zA-Z]$/.test(a)));
    const valueOf = (flag: string) => {
      const i = rest.indexOf(flag);
      return i >= 0 ? rest[i + 1] : undefined;
    };
    const valued = new Set(['-v', '-t', '-m']);
    const args = rest.filter((a, i) => !/^-[a-zA-Z]$/.test(a) && !(i > 0 && valued.has(rest[i - 1])));
    const path = args[0];
    const c = this.client;
    try {
      switch (cmd) {
        case 'help':
          this.print(HELP);
          return true;
        case 'ls': {
          if (flags.has('-R')) {
            const walk = async (p: string): Promise<void> => {
              this.print(p);
              for (const child of (await c.getChildren(p)).sort()) await walk(p === '/' ? `/${child}` : `${p}/${child}`);
            };
            await walk(path ?? '/');
            return true;
          }
          const { children, stat } = await c.getChildren2(path ?? '/');
          this.print(`[${children.sort().join(', ')}]`);
          if (flags.has('-s')) this.print(formatStat(stat));
          return true;
        }
        case 'get': {
          const watch = flags.has('-w') ? (e: { type: string; path: string }) => this.print(watchedEvent(e)) : undefined;
          const { data, stat } = await c.getData(path, watch);
          this.print(data.length ? data.toString() : 'null');
          if (flags.has('-s')) this.print(formatStat(stat));
          return true;
        }
        case 'stat': {
          const stat = await c.exists(path);
          if (!stat) throw new ZooKeeperError(ErrorCode.NONODE, path);
          this.print(formatStat(stat));
          return true;
        }
        case 'create': {
          const ttl = valueOf('-t');
          const seq = flags.has('-s');
          const mode: Mode = flags.has('-c')
            ? 'container'
            : ttl !== undefined
              ? seq
                ? 'persistent-sequential-ttl'
                : 'persistent-ttl'
              : flags.has('-e')
                ? seq
                  ? 'ephemeral-sequential'
                  : 'ephemeral'
                : seq
                  ? 'persistent-sequential'
                  : 'persistent';
          const created = await c.create(path, Buffer.from(args[1] ?? ''), { mode, ttlMs: ttl ? Number(ttl) : undefined });
          this.print(`Created ${created}`);
          return true;
        }
        case 'set':
          await c.setData(path, Buffer.from(args[1] ?? ''), Number(valueOf('-v') ?? -1));
          return true;
        case 'delete':
          await c.delete(path, Number(valueOf('-v') ?? -1));
          return true;
        case 'deleteall': {
          const remove = async (p: string): Promise<void> => {
            for (const child of await c.getChildren(p)) await remove(p === '/' ? `/${child}` : `${p}/${child}`);
            if (p !== '/') await c.delete(p);
          };
          await remove(path);
          return true;
        }
        case 'sync':
          await c.sync(path ?? '/');
          this.print(`Sync is OK`);
          return true;
        case 'getAcl': {
          const { acl } = await c.getACL(path);
          for (const a of acl) this.print(`'${a.id.scheme},'${a.id.id}\n: ${permString(a.perms)}`);
          return true;
        }
        case 'setAcl':
          await c.setACL(path, parseAcl(args[1] ?? ''), Number(valueOf('-v') ?? -1));
          return true;
        case 'addauth':
          await c.addAuth(args[0], Buffer.from(args[1] ?? ''));
          return true;
        case 'whoami':
          this.print('Auth scheme: User');
          for (const i of await c.whoAmI()) this.print(`${i.authScheme}: ${i.user}`);
          return true;
        case 'config':
          this.print((await c.getData('/zookeeper/config')).data.toString() || '');
          return true;
        case 'getEphemerals':
          this.print(`[${(await c.getEphemerals(path ?? '/')).sort().join(', ')}]`);
          return true;
        case 'getAllChildrenNumber':
          this.print(String(await c.getAllChildrenNumber(path)));
          return true;
        case 'addWatch': {
          const mode = valueOf('-m') ?? 'persistent_recursive';
          await c.addWatch(path, (e) => this.print(watchedEvent(e)), { recursive: mode === 'persistent_recursive' });
          return true;
        }
        case 'removewatches':
          await c.removeWatches(path, flags.has('-c') ? 'children' : flags.has('-d') ? 'data' : 'any');
          return true;
        default:
          this.print(`unknown command "${cmd}"; try help`);
          return false;
      }
    } catch (e) {
      this.print(describeError(e, path));
      return false;
    }
  }

  /** Completes the path being typed from the children of its parent. */
  async complete(line: string): Promise<[string[], string]> {
    const last = line.split(/\s+/).pop() ?? '';
    if (!last.startsWith('/')) return [[], last];
    const slash = last.lastIndexOf('/');
    const parent = slash === 0 ? '/' : last.slice(0, slash);
    const prefix = last.slice(slash + 1);
    try {
      const children = (await this.client.getChildren(parent)).filter((c) => c.startsWith(prefix)).sort();
      return [children.map((c) => (parent === '/' ? `/${c}` : `${parent}/${c}`)), last];
    } catch {
      return [[], last];
    }
  }
}

function watchedEvent(e: { type: string; path: string }): string {
  const name = { created: 'NodeCreated', deleted: 'NodeDeleted', dataChanged: 'NodeDataChanged', childrenChanged: 'NodeChildrenChanged' }[e.type];
  return `\nWATCHER::\n\nWatchedEvent state:SyncConnected type:${name} path:${e.path}`;
}

export async function shellCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { command: { type: 'string', short: 'c' } }, allowPositionals: true });
  const target = positionals[0] ?? '127.0.0.1:2181';
  let client: PulseClient;
  try {
    client = await PulseClient.connect(target, { sessionTimeoutMs: 30_000 });
  } catch (e) {
    process.stderr.write(`cannot connect to ${target}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const shell = new Shell(client, (t) => process.stdout.write(t + '\n'));
  if (values.command !== undefined) {
    let ok = true;
    for (const cmd of values.command.split(';')) ok = (await shell.run(cmd.trim())) && ok;
    await client.close();
    return ok ? 0 : 1;
  }
  const rl: Interface = createInterface({
    input: process.stdin,
    output: process.stdout,
    historySize: 1000,
    completer: (line: string, done: (err: Error | null, result: [string[], string]) => void) => {
      shell.complete(line).then((r) => done(null, r), () => done(null, [[], line]));
    },
  });
  const prompt = () => {
    rl.setPrompt(`[pulsekeeper: ${target}(${client.state})] `);
    rl.prompt();
  };
  client.on('state', () => {
    if (client.state === 'expired') process.stdout.write('\nsession expired: reconnect to continue\n');
  });
  prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (trimmed === 'quit' || trimmed === 'exit') break;
    await shell.run(trimmed);
    prompt();
  }
  rl.close();
  await client.close();
  return 0;
}
