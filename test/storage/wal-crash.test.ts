/**
 * Crash durability with real processes: a child appends and syncs, reporting each
 * synced index; it is SIGKILLed at random points (sometimes during its own
 * recovery), and every index it reported must then be in the log with its content,
 * and the log must take new entries. SIGKILL loses the process, not the page cache:
 * this checks the sync protocol and recovery, not the disk's fsync.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WriteAheadLog } from '../../src/storage/wal.js';
import { silentLogger } from '../../src/util/log.js';
import { Rng } from '../support/random.js';
import { entries } from './entries.js';
import { tempDir } from './helpers.js';

const ROUNDS = Number(process.env.WAL_CRASH_ROUNDS ?? 8);
const SEED = Number(process.env.WAL_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CHILD = fileURLToPath(new URL('./wal-crash-child.ts', import.meta.url));

interface Round {
  synced: number;
  opened: boolean;
  stderr: string;
  exit: string;
}

/** Runs the child until it is killed `killAfterMs` after it opened the log (or after spawn, if `early`). */
function runChild(dir: string, floor: number, seed: number, killAfterMs: number, early: boolean): Promise<Round> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(floor), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const round: Round = { synced: 0, opened: false, stderr: '', exit: '' };
    const kill = () => child.kill('SIGKILL');
    let timer = early ? setTimeout(kill, killAfterMs) : setTimeout(kill, 30_000);
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [word, n] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (word === 'open' && !round.opened) {
          round.opened = true;
          if (!early) {
            clearTimeout(timer);
            timer = setTimeout(kill, killAfterMs);
          }
        } else if (word === 'synced') round.synced = Math.max(round.synced, Number(n));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (round.stderr += c).length > 10_000 && (round.stderr = round.stderr.slice(-5000)));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      round.exit = signal ?? `code ${code}`;
      resolve(round);
    });
  });
}

test(`SIGKILL at random points never loses a synced entry (${ROUNDS} rounds)`, { timeout: 60_000 + ROUNDS * 5_000 }, async (t) => {
  const rng = new Rng(SEED);
  const dir = await tempDir('pk-wal-crash-');
  let floor = 0;
  let synced = 0;
  let kills = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const early = rng.chance(0.25);
    const r = await runChild(dir, floor, rng.int(2 ** 31), early ? 150 + rng.int(500) : rng.int(400), early);
    const where = `seed ${SEED} round ${round}`;
    assert.equal(r.exit, 'SIGKILL', `${where}: the child ended by itself (${r.exit}): ${r.stderr}`);
    kills++;
    synced = Math.max(synced, r.synced);

    const { wal, recovered } = await WriteAheadLog.open(dir, { snapshot: floor > 0 ? { index: floor, term: 1 } : undefined, logger: silentLogger });
    assert.ok(wal.lastIndex >= synced, `${where}: log ends at ${wal.lastIndex}, ${synced} was reported synced`);
    assert.equal(recovered.entries.length, wal.lastIndex - floor, `${where}: entries after the snapshot`);
    assert.deepEqual(recovered.entries, entries(floor + 1, wal.lastIndex), `${where}: entry content`);
    assert.ok(recovered.hardState.commit >= synced && recovered.hardState.commit <= wal.lastIndex, `${where}: hard state ${JSON.stringify(recovered.hardState)}`);
    await wal.close();
    floor = Math.max(0, synced - 200);
  }
  assert.equal(kills, ROUNDS);
  assert.ok(synced > 0, `seed ${SEED}: some entries were synced`);
  t.diagnostic(`seed ${SEED}: ${kills} kills, ${synced} entries synced`);

  const { wal } = await WriteAheadLog.open(dir, { snapshot: { index: floor, term: 1 }, logger: silentLogger });
  const last = wal.lastIndex;
  wal.append(entries(last + 1, last + 10));
  await wal.close();
  const again = await WriteAheadLog.open(dir, { snapshot: { index: floor, term: 1 }, logger: silentLogger });
  assert.deepEqual(again.recovered.entries, entries(floor + 1, last + 10));
  await again.wal.close();
});
