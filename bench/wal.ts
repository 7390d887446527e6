/**
 * The write-ahead log, measured in-process:
 *
 *   node --expose-gc --import tsx bench/wal.ts [--dir DIR] [--seconds 3] [--entry-bytes 128] [--entries 1000000]
 *
 * 1. Group commit: N concurrent appenders, each appending one entry and waiting for
 *    sync() before the next; records/s, fsyncs/s and records per fsync for several N,
 *    with forceSync on and off.
 * 2. Recovery: writes a log of --entries entries, then times WriteAheadLog.open with no
 *    snapshot (every entry returned) and with a snapshot near the end (the log streamed
 *    through, only the tail kept), with the heap each one leaves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Entry } from '../src/consensus/types.js';
import { WriteAheadLog } from '../src/storage/wal.js';
import { silentLogger } from '../src/util/log.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: tmpdir() },
    seconds: { type: 'string', default: '3' },
    'entry-bytes': { type: 'string', default: '128' },
    entries: { type: 'string', default: '1000000' },
  },
});
const SECONDS = Number(values.seconds);
const DATA = Buffer.alloc(Number(values['entry-bytes']), 'x');
const ENTRIES = Number(values.entries);

function entry(index: number): Entry {
  return { index, term: 1, kind: 'normal', data: DATA };
}

async function groupCommit(appenders: number, forceSync: boolean): Promise<void> {
  const dir = await mkdtemp(join(values.dir, 'pk-bench-wal-'));
  try {
    const { wal } = await WriteAheadLog.open(dir, { forceSync, logger: silentLogger });
    const deadline = performance.now() + SECONDS * 1000;
    const started = performance.now();
    let synced = 0;
    const latencies: number[] = [];
    const run = async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        wal.append([entry(wal.lastIndex + 1)], { term: 1, vote: 1, commit: wal.lastIndex });
        await wal.sync();
        latencies.push(performance.now() - t);
        synced++;
      }
    };
    await Promise.all(Array.from({ length: appenders }, run));
    const seconds = (performance.now() - started) / 1000;
    await wal.close();
    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
    console.log(
      `forceSync=${forceSync} appenders=${String(appenders).padStart(4)}: ${Math.round(synced / seconds)} entries/s, ` +
        `${Math.round(wal.stats.fsyncs / seconds)} fsyncs/s, ${(synced / Math.max(1, wal.stats.batches)).toFixed(1)} entries per write, ` +
        `sync latency p50 ${p(0.5)} ms p99 ${p(0.99)} ms`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function recovery(): Promise<void> {
  const dir = await mkdtemp(join(values.dir, 'pk-bench-wal-'));
  try {
    const { wal } = await WriteAheadLog.open(dir, { forceSync: false, logger: silentLogger });
    const batch = 1000;
    for (let i = 1; i <= ENTRIES; i += batch) {
      const list: Entry[] = [];
      for (let j = i; j < i + batch && j <= ENTRIES; j++) list.push(entry(j));
      wal.append(list, { term: 1, vote: 1, commit: list[list.length - 1].index });
      await wal.sync();
    }
    const bytes = wal.stats.bytes;
    const segments = wal.segmentFiles.length;
    await wal.close();
    console.log(`recovery: ${ENTRIES} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${segments} segments`);
    await timeOpen(dir, bytes, { index: ENTRIES - 10_000, term: 1 });
    await timeOpen(dir, bytes, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Times one recovery; the heap figure is what the recovered log holds (run with --expose-gc). */
async function timeOpen(dir: string, bytes: number, snapshot: { index: number; term: number } | undefined): Promise<void> {
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const t = performance.now();
  const opened = await WriteAheadLog.open(dir, { snapshot, logger: silentLogger });
  const ms = performance.now() - t;
  global.gc?.();
  const heap = process.memoryUsage().heapUsed - heapBefore;
  console.log(
    `  open ${snapshot ? `after a snapshot at ${snapshot.index}` : 'with no snapshot'}: ${ms.toFixed(0)} ms ` +
      `(${(bytes / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s), ${opened.recovered.entries.length} entries returned, ` +
      `heap +${(heap / 2 ** 20).toFixed(0)} MiB`,
  );
  await opened.wal.close();
}

for (const forceSync of [true, false]) {
  for (const n of [1, 8, 64, 512]) await groupCommit(n, forceSync);
}
await recovery();
