/**
 * `pulsekeeper shell [connection string] [--timeout MS] [-c "cmd; cmd"]`: the zkCli
 * commands people know, with history (kept across runs) and tab completion of
 * commands and paths. With -c it runs the commands in order, stops at the first
 * that fails and exits 1 (0 when all succeed). Errors are printed to stderr in
 * zkCli's words.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { PulseClient, ZooKeeperError, type ACL, type Mode, type Stat, type WatchEvent } from '../client/index.js';
import { ErrorCode } from '../protocol/errors.js';

const PERMS = 'rwcda'; // READ=1, WRITE=2, CREATE=4, DELETE=8, ADMIN=16
const HISTORY_LINES = 1000;

const hex = (n: number | bigint) => '0x' + n.toString(16);

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A time as zkCli prints it (Java's Date.toString): "Wed Nov 25 03:50:36 UTC 2026", in local time. */
export function javaDate(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
  return `${WEEKDAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone} ${d.getFullYear()}`;
}

export function formatStat(s: Stat): string {
  const time = javaDate;
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

/** scheme:id:perms[,scheme:id:perms...], as zkCli reads ACLs. */
export function parseAcl(text: string): ACL[] {
  return text.split(',').map((entry) => {
    const first = entry.indexOf(':');
    const last = entry.lastIndexOf(':');
    if (first < 0 || last === first) throw new UsageError(`bad ACL entry "${entry}" (scheme:id:perms expected)`);
    let perms = 0;
    for (const ch of entry.slice(last + 1)) {
      const bit = PERMS.indexOf(ch);
      if (bit < 0) throw new UsageError(`bad permission "${ch}" in "${entry}" (one of ${PERMS})`);
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
    case ErrorCode.NOWATCHER:
      return `KeeperErrorCode = No such watcher for ${p}`;
    default:
      return e.message;
  }
}

/** A command used wrongly: its usage is printed with the message. */
class UsageError extends Error {}

/** Splits a command line into words; quotes group words and may make an empty one. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  let inWord = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = '';
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote`);
  if (inWord) out.push(cur);
  return out;
}

/** A script's commands: `;`-separated, quotes kept for the word split. */
export function splitScript(script: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  for (const ch of script) {
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ';') {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote`);
  if (cur.trim()) out.push(cur.trim());
  return out;
}

interface Parsed {
  flags: Map<string, string | true>;
  args: string[];
}

interface Command {
  usage: string;
  /** Flags: true for switches, 'value' for flags taking a value. */
  flags?: Record<string, true | 'value'>;
  /** Positional arguments required, and allowed at most. */
  args: [number, number];
  run(p: Parsed): Promise<void>;
}

export class Shell {
  private readonly commands: Record<string, Command>;
  readonly history: string[] = [];

  constructor(
    readonly client: PulseClient,
    private readonly print: (text: string) => void,
    private readonly printError: (text: string) => void = print,
  ) {
    const c = client;
    const out = (t: string) => this.print(t);
    const watcher = (e: WatchEvent) => out(watchedEvent(e));
    const num = (p: Parsed, flag: string, fallback: number): number => {
      const v = p.flags.get(flag);
      if (v === undefined) return fallback;
      const n = Number(v);
      if (typeof v !== 'string' || !Number.isInteger(n)) throw new UsageError(`${flag} needs an integer, got "${v}"`);
      return n;
    };
    const child = (parent: string, name: string) => (parent === '/' ? `/${name}` : `${parent}/${name}`);
    this.commands = {
      ls: {
        usage: 'ls [-s] [-w] [-R] path',
        flags: { '-s': true, '-w': true, '-R': true },
        args: [0, 1],
        run: async (p) => {
          const path = p.args[0] ?? '/';
          if (p.flags.has('-R')) {
            const walk = async (at: string): Promise<void> => {
              out(at);
              for (const name of (await c.getChildren(at)).sort()) await walk(child(at, name));
            };
            await walk(path);
            return;
          }
          const { children, stat } = await c.getChildren2(path, p.flags.has('-w') ? watcher : undefined);
          out(`[${children.sort().join(', ')}]`);
          if (p.flags.has('-s')) out(formatStat(stat));
        },
      },
      get: {
        usage: 'get [-s] [-w] path',
        flags: { '-s': true, '-w': true },
        args: [1, 1],
        run: async (p) => {
          const { data, stat } = await c.getData(p.args[0], p.flags.has('-w') ? watcher : undefined);
          out(data.length ? data.toString() : 'null');
          if (p.flags.has('-s')) out(formatStat(stat));
        },
      },
      stat: {
        usage: 'stat [-w] path',
        flags: { '-w': true },
        args: [1, 1],
        run: async (p) => {
          const stat = await c.exists(p.args[0], p.flags.has('-w') ? watcher : undefined);
          if (!stat) throw new ZooKeeperError(ErrorCode.NONODE, p.args[0]);
          out(formatStat(stat));
        },
      },
      create: {
        usage: 'create [-s] [-e] [-c] [-t ttl] path [data] [acl]',
        flags: { '-s': true, '-e': true, '-c': true, '-t': 'value' },
        args: [1, 3],
        run: async (p) => {
          const seq = p.flags.has('-s');
          const eph = p.flags.has('-e');
          const ttl = p.flags.has('-t') ? num(p, '-t', 0) : undefined;
          if (p.flags.has('-c') && (seq || eph || ttl !== undefined)) throw new UsageError('-c (container) cannot be combined with -s, -e or -t');
          if (eph && ttl !== undefined) throw new UsageError('TTLs cannot be used with Ephemeral znodes');
          let mode: Mode = eph ? (seq ? 'ephemeral-sequential' : 'ephemeral') : seq ? 'persistent-sequential' : 'persistent';
          if (p.flags.has('-c')) mode = 'container';
          if (ttl !== undefined) mode = seq ? 'persistent-sequential-ttl' : 'persistent-ttl';
          const acl = p.args[2] !== undefined ? parseAcl(p.args[2]) : undefined;
          out(`Created ${await c.create(p.args[0], Buffer.from(p.args[1] ?? ''), { mode, ttlMs: ttl, acl })}`);
        },
      },
      set: {
        usage: 'set [-s] [-v version] path data',
        flags: { '-s': true, '-v': 'value' },
        args: [2, 2],
        run: async (p) => {
          const stat = await c.setData(p.args[0], Buffer.from(p.args[1]), num(p, '-v', -1));
          if (p.flags.has('-s')) out(formatStat(stat));
        },
      },
      delete: {
        usage: 'delete [-v version] path',
        flags: { '-v': 'value' },
        args: [1, 1],
        run: async (p) => c.delete(p.args[0], num(p, '-v', -1)),
      },
      deleteall: {
        usage: 'deleteall path [-b batch size]',
        flags: { '-b': 'value' },
        args: [1, 1],
        run: async (p) => {
          const batch = num(p, '-b', 1000);
          if (batch < 1) throw new UsageError('-b must be at least 1');
          // Breadth first from the top, deleted deepest first, a multi per batch.
          const order = [p.args[0]];
          for (let i = 0; i < order.length; i++) for (const name of await c.getChildren(order[i])) order.push(child(order[i], name));
          const victims = order.filter((x) => x !== '/' && x !== '/zookeeper' && !x.startsWith('/zookeeper/')).reverse();
          for (let i = 0; i < victims.length; i += batch) await c.multi(victims.slice(i, i + batch).map((path) => ({ op: 'delete' as const, path })));
        },
      },
      sync: {
        usage: 'sync path',
        args: [1, 1],
        run: async (p) => {
          await c.sync(p.args[0]);
          out('Sync is OK');
        },
      },
      getAcl: {
        usage: 'getAcl [-s] path',
        flags: { '-s': true },
        args: [1, 1],
        run: async (p) => {
          const { acl, stat } = await c.getACL(p.args[0]);
          for (const a of acl) out(`'${a.id.scheme},'${a.id.id}\n: ${permString(a.perms)}`);
          if (p.flags.has('-s')) out(formatStat(stat));
        },
      },
      setAcl: {
        usage: 'setAcl [-s] [-v version] [-R] path acl',
        flags: { '-s': true, '-v': 'value', '-R': true },
        args: [2, 2],
        run: async (p) => {
          const acl = parseAcl(p.args[1]);
          if (p.flags.has('-R')) {
            const apply = async (at: string): Promise<void> => {
              await c.setACL(at, acl);
              for (const name of await c.getChildren(at)) await apply(child(at, name));
            };
            await apply(p.args[0]);
            return;
          }
          const stat = await c.setACL(p.args[0], acl, num(p, '-v', -1));
          if (p.flags.has('-s')) out(formatStat(stat));
        },
      },
      addauth: {
        usage: 'addauth scheme auth',
        args: [2, 2],
        run: async (p) => c.addAuth(p.args[0], Buffer.from(p.args[1])),
      },
      whoami: {
        usage: 'whoami',
        args: [0, 0],
        run: async () => {
          out('Auth scheme: User');
          for (const i of await c.whoAmI()) out(`${i.authScheme}: ${i.user}`);
        },
      },
      config: {
        usage: 'config [-c] [-s]',
        flags: { '-c': true, '-s': true },
        args: [0, 0],
        run: async (p) => {
          const { data, stat } = await c.getConfig();
          const text = data.toString();
          out(p.flags.has('-c') ? clientConfig(text) : text);
          if (p.flags.has('-s')) out(formatStat(stat));
        },
      },
      getEphemerals: {
        usage: 'getEphemerals [path]',
        args: [0, 1],
        run: async (p) => out(`[${(await c.getEphemerals(p.args[0] ?? '/')).sort().join(', ')}]`),
      },
      getAllChildrenNumber: {
        usage: 'getAllChildrenNumber path',
        args: [1, 1],
        run: async (p) => out(String(await c.getAllChildrenNumber(p.args[0]))),
      },
      addWatch: {
        usage: 'addWatch [-m PERSISTENT|PERSISTENT_RECURSIVE] path',
        flags: { '-m': 'value' },
        args: [1, 1],
        run: async (p) => {
          const mode = String(p.flags.get('-m') ?? 'persistent_recursive').toLowerCase();
          if (mode !== 'persistent' && mode !== 'persistent_recursive') throw new UsageError(`-m is PERSISTENT or PERSISTENT_RECURSIVE, not "${p.flags.get('-m')}"`);
          await c.addWatch(p.args[0], watcher, { recursive: mode === 'persistent_recursive' });
        },
      },
      removewatches: {
        usage: 'removewatches path [-c|-d|-a] [-l]',
        flags: { '-c': true, '-d': true, '-a': true, '-l': true },
        args: [1, 1],
        run: async (p) => {
          const kinds = ['-c', '-d', '-a'].filter((f) => p.flags.has(f));
          if (kinds.length > 1) throw new UsageError('only one of -c, -d and -a');
          const kind = kinds[0] === '-c' ? 'children' : kinds[0] === '-d' ? 'data' : 'any';
          await c.removeWatches(p.args[0], kind, { local: p.flags.has('-l') });
        },
      },
      history: {
        usage: 'history',
        args: [0, 0],
        run: async () => {
          // The last ten before this one, numbered for redo.
          for (let i = Math.max(0, this.history.length - 11); i < this.history.length - 1; i++) out(`${i} - ${this.history[i]}`);
        },
      },
      redo: {
        usage: 'redo cmdno',
        args: [1, 1],
        run: async (p) => {
          const n = Number(p.args[0]);
          const line = Number.isInteger(n) ? this.history[n] : undefined;
          if (line === undefined) throw new UsageError(`no command number ${p.args[0]} in the history`);
          if (!(await this.run(line))) throw new UsageError(`"${line}" failed`);
        },
      },
      help: {
        usage: 'help',
        args: [0, 0],
        run: async () => out(this.help()),
      },
    };
  }

  /** Every command's usage, one a line. */
  help(): string {
    return ['commands:', ...Object.values(this.commands).map((cmd) => `  ${cmd.usage}`), '  quit'].join('\n');
  }

  get commandNames(): string[] {
    return [...Object.keys(this.commands), 'quit'];
  }

  /** Runs one command line; resolves true when it succeeded. Errors are printed, never thrown. */
  async run(line: string): Promise<boolean> {
    let argv: string[];
    try {
      argv = words(line);
    } catch (e) {
      this.printError(describeError(e));
      return false;
    }
    if (argv.length === 0) return true;
    const [name, ...rest] = argv;
    // redo is recorded as the command it runs again.
    if (name !== 'redo') this.history.push(line.trim());
    const cmd = Object.hasOwn(this.commands, name) ? this.commands[name] : undefined;
    if (!cmd) {
      this.printError(`unknown command "${name}"; "help" lists them`);
      return false;
    }
    let parsed: Parsed | undefined;
    try {
      parsed = parse(cmd, rest);
      await cmd.run(parsed);
      return true;
    } catch (e) {
      this.printError(e instanceof UsageError ? `${e.message}\nusage: ${cmd.usage}` : describeError(e, parsed?.args[0]));
      return false;
    }
  }

  /** Completes the word being typed: a command name first, a path after. */
  async complete(line: string): Promise<[string[], string]> {
    const parts = line.split(/\s+/);
    const last = parts.at(-1) ?? '';
    if (parts.length === 1) return [this.commandNames.filter((n) => n.startsWith(last)).map((n) => n + ' '), last];
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

/**
 * What zkCli's `config -c` prints: the configuration's version, a space, then the
 * servers' client addresses (what follows ';' in each server line), comma-separated.
 */
export function clientConfig(config: string): string {
  const version = /^version=(.*)$/m.exec(config)?.[1] ?? '';
  const hosts = config.split('\n').flatMap((l) => (/^server\.\d+=.*;(.+)$/.exec(l) ?? []).slice(1));
  return `${version} ${hosts.join(',')}`;
}

function parse(cmd: Command, words: string[]): Parsed {
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (/^-[a-zA-Z]$/.test(w)) {
      const kind = cmd.flags?.[w];
      if (!kind) throw new UsageError(`unknown option ${w}`);
      if (kind === 'value') {
        if (i + 1 >= words.length) throw new UsageError(`${w} needs a value`);
        flags.set(w, words[++i]);
      } else flags.set(w, true);
    } else args.push(w);
  }
  const [min, max] = cmd.args;
  if (args.length < min) throw new UsageError(min === 1 && max <= 1 ? 'path required' : 'missing arguments');
  if (args.length > max) throw new UsageError(`too many arguments: ${args.slice(max).join(' ')}`);
  return { flags, args };
}

function watchedEvent(e: WatchEvent): string {
  const name = {
    created: 'NodeCreated',
    deleted: 'NodeDeleted',
    dataChanged: 'NodeDataChanged',
    childrenChanged: 'NodeChildrenChanged',
    dataWatchRemoved: 'DataWatchRemoved',
    childWatchRemoved: 'ChildWatchRemoved',
    persistentWatchRemoved: 'PersistentWatchRemoved',
  }[e.type];
  return `\nWATCHER::\n\nWatchedEvent state:SyncConnected type:${name} path:${e.path}`;
}

/** Where history is kept: $PULSEKEEPER_HISTORY, else ~/.pulsekeeper_history. */
function historyFile(): string {
  return process.env.PULSEKEEPER_HISTORY ?? join(homedir(), '.pulsekeeper_history');
}

function loadHistory(file: string): string[] {
  try {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-HISTORY_LINES);
  } catch {
    return [];
  }
}

function saveHistory(file: string, lines: string[]): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, lines.slice(-HISTORY_LINES).join('\n') + '\n');
  } catch {
    // history is a convenience: an unwritable home must not fail the shell
  }
}

export async function shellCommand(argv: string[]): Promise<number> {
  let values: { command?: string; timeout?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { command: { type: 'string', short: 'c' }, timeout: { type: 'string' } },
      allowPositionals: true,
    }));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\nusage: pulsekeeper shell [HOST:PORT,...[/chroot]] [--timeout MS] [-c "cmd; cmd"]\n`);
    return 2;
  }
  if (positionals.length > 1) {
    process.stderr.write(`one connection string expected, got: ${positionals.join(' ')}\n`);
    return 2;
  }
  const timeout = Number(values.timeout ?? 30_000);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    process.stderr.write(`--timeout must be a positive number of milliseconds, got "${values.timeout}"\n`);
    return 2;
  }
  let script: string[] | undefined;
  try {
    script = values.command === undefined ? undefined : splitScript(values.command);
  } catch (e) {
    process.stderr.write(`bad script: ${describeError(e)}\n`);
    return 2;
  }
  const target = positionals[0] ?? '127.0.0.1:2181';
  let client: PulseClient;
  try {
    client = await PulseClient.connect(target, { sessionTimeoutMs: timeout, connectTimeoutMs: Math.min(timeout, 10_000) });
  } catch (e) {
    process.stderr.write(`cannot connect to ${target}: ${describeError(e)}\n`);
    return 1;
  }
  const shell = new Shell(
    client,
    (t) => process.stdout.write(t + '\n'),
    (t) => process.stderr.write(t + '\n'),
  );
  if (script !== undefined) {
    let ok = true;
    for (const cmd of script) if (!(ok = await shell.run(cmd))) break;
    await client.close();
    return ok ? 0 : 1;
  }
  const file = historyFile();
  const previous = loadHistory(file);
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    history: [...previous].reverse(),
    historySize: HISTORY_LINES,
    removeHistoryDuplicates: true,
    completer: (line: string, done: (err: Error | null, result: [string[], string]) => void) => {
      shell.complete(line).then((r) => done(null, r), () => done(null, [[], line]));
    },
  });
  const prompt = () => {
    rl.setPrompt(`[pulsekeeper: ${target}(${client.state}) ${shell.history.length}] `);
    rl.prompt();
  };
  client.on('state', (s) => {
    if (s === 'expired') process.stdout.write('\nsession expired: ephemeral nodes and watches are gone; a new session follows\n');
    else if (s === 'suspended') process.stdout.write('\nconnection lost: reconnecting\n');
  });
  // Ctrl-C clears the line being typed; on an empty line it quits.
  rl.on('SIGINT', () => {
    if (rl.line.length === 0) rl.close();
    else {
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
    }
  });
  prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (trimmed === 'quit' || trimmed === 'exit') break;
    if (trimmed) await shell.run(trimmed);
    prompt();
  }
  rl.close();
  saveHistory(file, [...previous, ...shell.history.filter(Boolean)]);
  await client.close();
  return 0;
}
