/**
 * Operator commands for ensembles:
 *  - `pulsekeeper ensemble --size N`: a local development ensemble on loopback, one
 *    member process each, printing the connection string;
 *  - `pulsekeeper status [HOST:PORT,...]`: the ensemble's health as one member's mntr
 *    names the members and each member's mntr tells its part.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** Sends a four-letter word and returns the answer ('' if the member does not answer in time). */
export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 3000): Promise<string> {
  return new Promise((done) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host, port }, () => sock.write(word));
    const finish = () => done(Buffer.concat(chunks).toString('utf8'));
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', finish);
    sock.on('error', () => done(''));
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      done('');
    });
  });
}

function parseHostPort(s: string, what: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${what} must be HOST:PORT, got "${s}"`);
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

function mntrRows(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l.includes('\t'))
      .map((l) => l.split('\t', 2) as [string, string]),
  );
}

export async function ensembleCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: 'string', default: '3' },
      'base-port': { type: 'string', default: '2181' },
      'peer-port': { type: 'string', default: '2888' },
      'data-dir': { type: 'string', default: './data/ensemble' },
      'tick-time': { type: 'string', default: '2000' },
    },
    strict: true,
  });
  const size = Number(values.size);
  const basePort = Number(values['base-port']);
  const peerBase = Number(values['peer-port']);
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new Error('--size must be 1-9');
  for (const [name, v] of [['base-port', basePort], ['peer-port', peerBase]] as const) {
    if (!Number.isInteger(v) || v < 1 || v + size > 65535) throw new Error(`--${name} must be a port number`);
  }
  const root = resolve(values['data-dir']!);
  const servers = Array.from({ length: size }, (_, i) => `server.${i + 1}=127.0.0.1:${peerBase + i}:${peerBase + 1000 + i}:participant;127.0.0.1:${basePort + i}`);
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  for (let id = 1; id <= size; id++) {
    const dir = join(root, `m${id}`);
    mkdirSync(dir, { recursive: true });
    const cfg = join(dir, 'zoo.cfg');
    // An existing member keeps its config: its log, not the file, holds the membership now.
    if (!existsSync(cfg)) {
      writeFileSync(join(dir, 'myid'), `${id}\n`);
      writeFileSync(cfg, [`tickTime=${values['tick-time']}`, `dataDir=${dir}`, '4lw.commands.whitelist=*', 'reconfigEnabled=true', ...servers].join('\n') + '\n');
    }
    const log = createWriteStream(join(dir, 'server.log'), { flags: 'a' });
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], 'start', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.pipe(log);
    child.on('exit', (code, signal) => {
      children.delete(id);
      if (!stopping) process.stderr.write(`member ${id} exited (${signal ?? code}); see ${join(dir, 'server.log')}\n`);
    });
    children.set(id, child);
  }
  const connectionString = servers.map((_, i) => `127.0.0.1:${basePort + i}`).join(',');
  // Wait until the members answer, then say how to use them.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const answers = await Promise.all(servers.map((_, i) => fourLetterWord('127.0.0.1', basePort + i, 'ruok', 500)));
    if (answers.every((a) => a === 'imok')) break;
    if (children.size < size) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  process.stdout.write(
    `pulsekeeper ensemble of ${size} on loopback (data under ${root}, logs in each member's server.log)\n` +
      `connection string: ${connectionString}\n` +
      `health: pulsekeeper status ${connectionString}\n` +
      `stop with Ctrl-C\n`,
  );
  await new Promise<void>((done) => {
    const stop = () => {
      stopping = true;
      for (const c of children.values()) c.kill('SIGTERM');
      const check = setInterval(() => {
        if (children.size === 0) {
          clearInterval(check);
          done();
        }
      }, 50);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

interface MemberHealth {
  id: number;
  address: string;
  role: string;
  answered: boolean;
  rows: Map<string, string>;
}

/**
 * Prints the ensemble's health. Exit status 0 when a leader is serving and every member
 * answers; 1 when a member does not answer or lags; 2 when there is no leader (no quorum).
 */
export async function statusCommand(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  const seeds = (positionals[0] ?? '127.0.0.1:2181').split('/')[0].split(',').map((s) => parseHostPort(s.trim(), 'server'));
  let members: { id: number; role: string; address: string }[] | undefined;
  for (const seed of seeds) {
    const rows = mntrRows(await fourLetterWord(seed.host, seed.port, 'mntr'));
    const list = rows.get('pk_members');
    if (list) {
      members = list.split(',').map((m) => {
        const [id, role, ...addr] = m.split(':');
        return { id: Number(id), role, address: addr.join(':') };
      });
      break;
    }
  }
  if (!members) {
    process.stderr.write(`no member answered mntr at ${seeds.map((s) => `${s.host}:${s.port}`).join(',')} (is mntr in 4lw.commands.whitelist?)\n`);
    return 2;
  }
  const health: MemberHealth[] = await Promise.all(
    members.map(async (m) => {
      const a = parseHostPort(m.address, 'member address');
      const rows = mntrRows(await fourLetterWord(a.host, a.port, 'mntr'));
      return { id: m.id, address: m.address, role: m.role, answered: rows.size > 0, rows };
    }),
  );
  const leader = health.find((h) => h.rows.get('zk_server_state') === 'leader' || h.rows.get('zk_server_state') === 'standalone');
  const cell = (h: MemberHealth, key: string) => h.rows.get(key) ?? '-';
  const table: string[][] = [['id', 'address', 'kind', 'state', 'term', 'commit', 'applied', 'heard (ms ago)', 'lag']];
  for (const h of health) {
    const fromLeader = (key: string) => (leader && leader !== h ? (leader.rows.get(`pk_peer_${h.id}_${key}`) ?? '-') : '-');
    table.push([
      String(h.id),
      h.address,
      h.role,
      h.answered ? cell(h, 'zk_server_state') : 'no answer',
      cell(h, 'pk_term'),
      cell(h, 'pk_commit_index'),
      cell(h, 'pk_applied_index'),
      fromLeader('heartbeat_age_ms'),
      fromLeader('lag'),
    ]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const r of table) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
  if (!leader) {
    process.stdout.write('no leader: the ensemble has no quorum and takes no writes\n');
    return 2;
  }
  const lagging = health.filter((h) => !h.answered || (leader !== h && Number(leader.rows.get(`pk_peer_${h.id}_lag`) ?? 0) > 1000));
  process.stdout.write(lagging.length === 0 ? `healthy: leader is ${leader.id}\n` : `degraded: ${lagging.map((h) => h.id).join(', ')} not answering or behind; leader is ${leader.id}\n`);
  return lagging.length === 0 ? 0 : 1;
}
