/**
 * Data tree snapshots and the transaction codec, measured in-process:
 *
 *   node --import tsx bench/snapshot.ts [--parents 1000] [--children 1000] [--value-bytes 100]
 *
 * Builds parents × children znodes, then reports: snapshot time and size with no writes,
 * the pauses next() causes at several chunk sizes, a snapshot with writes applied
 * between chunks, load time, and encode+decode rate of a typical create txn.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CreateMode, OpCode } from '../src/protocol/opcodes.js';
import { DataTree } from '../src/tree/data-tree.js';
import { beginSnapshot, DEFAULT_CHUNK_BYTES, SnapshotLoader } from '../src/tree/snapshot.js';
import { decodeTxn, encodeTxn, type TxnRecord } from '../src/tree/txn-codec.js';
import type { Txn, WriteBody } from '../src/tree/txn.js';

const { values } = parseArgs({
  options: {
    parents: { type: 'string', default: '1000' },
    children: { type: 'string', default: '1000' },
    'value-bytes': { type: 'string', default: '100' },
  },
});
const PARENTS = Number(values.parents);
const CHILDREN = Number(values.children);
const VALUE = Buffer.alloc(Number(values['value-bytes']), 'v');
const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

const mb = (n: number) => (n / 1024 / 1024).toFixed(1) + ' MiB';
const ms = (n: number) => n.toFixed(1) + ' ms';

let zxid = 0;
function apply(tree: DataTree, body: WriteBody): void {
  const txn: Txn = { zxid: ++zxid, time: 1_700_000_000_000 + zxid, sessionId: 1n, auth: [], body };
  const r = tree.apply(txn);
  if (r.err !== 0) throw new Error(`write failed with ${r.err}`);
}

const parentPath = (p: number) => `/services/svc-${String(p).padStart(4, '0')}`;
const childPath = (p: number, c: number) => `${parentPath(p)}/instance-${String(c).padStart(6, '0')}`;

function build(): DataTree {
  const tree = new DataTree();
  apply(tree, { type: OpCode.createSession, timeoutMs: 30_000, password: Buffer.alloc(16, 1) });
  apply(tree, { type: OpCode.create, path: '/services', data: Buffer.alloc(0), acl: OPEN, flags: CreateMode.PERSISTENT });
  for (let p = 0; p < PARENTS; p++) {
    apply(tree, { type: OpCode.create, path: parentPath(p), data: VALUE, acl: OPEN, flags: CreateMode.PERSISTENT });
    for (let c = 0; c < CHILDREN; c++) {
      apply(tree, { type: OpCode.create, path: childPath(p, c), data: VALUE, acl: OPEN, flags: CreateMode.PERSISTENT });
    }
  }
  return tree;
}

interface Run {
  chunks: Buffer[];
  bytes: number;
  totalMs: number;
  /** Start and length of every next() call. */
  calls: [number, number][];
  writes: number;
}

// Full collections of a heap this size stop everything for a long time wherever they land:
// pauses are reported with and without the next() calls one fell in.
const majorGCs: [number, number][] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGCs.push([e.startTime, e.duration]);
  }
}).observe({ entryTypes: ['gc'] });

/** Drains a snapshot, timing every next(); `between` runs after each chunk (not timed as pause). */
function snapshot(tree: DataTree, chunkBytes: number, keep: boolean, between?: () => number): Run {
  const calls: [number, number][] = [];
  const chunks: Buffer[] = [];
  let bytes = 0;
  let writes = 0;
  const start = performance.now();
  const producer = beginSnapshot(tree);
  for (;;) {
    const t = performance.now();
    const chunk = producer.next(chunkBytes);
    calls.push([t, performance.now() - t]);
    if (chunk === null) break;
    bytes += chunk.length;
    if (keep) chunks.push(chunk);
    if (between) writes += between();
  }
  return { chunks, bytes, totalMs: performance.now() - start, calls, writes };
}

async function pauseSummary(run: Run): Promise<string> {
  await sleep(20); // GC entries arrive asynchronously
  const sorted = run.calls.map((c) => c[1]).sort((a, b) => a - b);
  const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const hit = (c: [number, number]) => majorGCs.some(([s, d]) => s < c[0] + c[1] && s + d > c[0]);
  const clean = run.calls.filter((c) => !hit(c)).map((c) => c[1]);
  const gc = run.calls.filter(hit).map((c) => ms(c[1]));
  const gcText = gc.length ? `; ${gc.length} call(s) with a full GC in them: ${gc.join(', ')}` : '';
  return `median ${ms(p(0.5))}, p99 ${ms(p(0.99))}, max ${ms(Math.max(...clean))} without a full GC${gcText}`;
}

function codecRate(): void {
  const txn: TxnRecord = {
    time: Date.now(),
    sessionId: 0x0100_0000_0000_0001n,
    auth: [],
    origin: 1,
    seq: 0,
    body: { type: OpCode.create, path: '/services/svc-0042/instance-000123', data: Buffer.alloc(100, 'v'), acl: OPEN, flags: 0 },
  };
  const size = encodeTxn(txn).length;
  const N = 1_000_000;
  for (let i = 0; i < 100_000; i++) decodeTxn(encodeTxn(txn)); // warm up
  let t = performance.now();
  for (let i = 0; i < N; i++) {
    txn.seq = i;
    decodeTxn(encodeTxn(txn));
  }
  const both = N / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < N; i++) encodeTxn(txn);
  const enc = N / ((performance.now() - t) / 1000);
  const bytes = encodeTxn(txn);
  t = performance.now();
  for (let i = 0; i < N; i++) decodeTxn(bytes);
  const dec = N / ((performance.now() - t) / 1000);
  const k = (n: number) => Math.round(n / 1000) + 'k/s';
  console.log(`txn codec, create of 100 bytes (${size} bytes encoded): encode+decode ${k(both)}, encode ${k(enc)}, decode ${k(dec)}`);
}

codecRate();

/** Builds the tree and snapshots it in several ways; returns the chunks of the last run. */
async function snapshots(): Promise<Run> {
  const t = performance.now();
  const tree = build();
  console.log(
    `built ${tree.nodeCount.toLocaleString()} znodes (${PARENTS} × ${CHILDREN}, ${VALUE.length}-byte values) in ${ms(performance.now() - t)}; heap ${mb(process.memoryUsage().heapUsed)}`,
  );
  // The first snapshot in a process also pays for compiling the code.
  for (const chunkBytes of [DEFAULT_CHUNK_BYTES, 64 * 1024, DEFAULT_CHUNK_BYTES, 1024 * 1024]) {
    const run = snapshot(tree, chunkBytes, false);
    const mark = chunkBytes === DEFAULT_CHUNK_BYTES ? ' (default)' : '';
    console.log(
      `snapshot, no writes, ${chunkBytes / 1024} KiB chunks${mark}: ${ms(run.totalMs)}, ${mb(run.bytes)} in ${run.calls.length - 1} chunks; next() ${await pauseSummary(run)}`,
    );
  }
  // Writes between chunks: setData on nodes spread over the tree (most not yet emitted), and a create.
  let seq = 0;
  const writing = snapshot(tree, DEFAULT_CHUNK_BYTES, true, () => {
    for (let i = 0; i < 200; i++) {
      seq++;
      apply(tree, { type: OpCode.setData, path: childPath((seq * 7919) % PARENTS, (seq * 104_729) % CHILDREN), data: VALUE, version: -1 });
    }
    apply(tree, { type: OpCode.create, path: `/new-${seq}`, data: VALUE, acl: OPEN, flags: 0 });
    return 201;
  });
  console.log(
    `snapshot, ${writing.writes.toLocaleString()} writes between chunks: ${ms(writing.totalMs)} including the writes; next() ${await pauseSummary(writing)}`,
  );
  return writing;
}

const taken = await snapshots();
// The source tree is garbage now, as on a member that replaces its tree with a received one.
const heapBefore = process.memoryUsage().heapUsed;
const t = performance.now();
const loader = new SnapshotLoader();
for (const chunk of taken.chunks) loader.push(chunk);
const loaded = loader.finish();
const loadMs = performance.now() - t;
console.log(`load: ${ms(loadMs)} for ${loaded.nodeCount.toLocaleString()} znodes (${mb(taken.bytes)}); heap ${mb(process.memoryUsage().heapUsed)} after (${mb(heapBefore)} before)`);
