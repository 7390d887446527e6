import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry, HardState } from '../../src/consensus/types.js';
import { WalCorruptError, WriteAheadLog, type WalOptions } from '../../src/storage/wal.js';
import { decodeRecord, encodeEntry } from '../../src/storage/records.js';
import { JuteWriter } from '../../src/protocol/jute.js';
import { silentLogger } from '../../src/util/log.js';
import { capturingLogger, entries, entry, tempDir } from './helpers.js';

const SEGMENT_HEADER = 16;

async function open(dir: string, opts: WalOptions = {}) {
  return WriteAheadLog.open(dir, { logger: silentLogger, ...opts });
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
}

/** Start offsets of the records in a segment file. */
function recordOffsets(file: Buffer): number[] {
  const out: number[] = [];
  for (let p = SEGMENT_HEADER; p < file.length; p += 8 + file.readUInt32BE(p)) out.push(p);
  return out;
}

async function write(dir: string, list: Entry[], hs?: HardState, opts: WalOptions = {}): Promise<void> {
  const { wal } = await open(dir, opts);
  wal.append(list, hs);
  await wal.close();
}

test('entries of every kind and the hard state survive a reopen exactly', async () => {
  const dir = await tempDir();
  const list: Entry[] = [
    { index: 1, term: 1, kind: 'empty' },
    { index: 2, term: 1, kind: 'normal', data: Buffer.from('hello') },
    { index: 3, term: 1, kind: 'normal', data: Buffer.alloc(0) },
    { index: 4, term: 2, kind: 'normal' },
    { index: 5, term: 2, kind: 'config', change: { op: 'add-learner', id: 7, context: '127.0.0.1:2888:3888;2181 ü' } },
    { index: 6, term: 2 ** 40, kind: 'config', change: { op: 'remove', id: 2 ** 33, context: '' } },
    {
      index: 7,
      term: 2 ** 40,
      kind: 'config',
      change: { op: 'add-voter', id: 4, context: 'd:4' },
      config: { membership: { voters: [1, 4], learners: [9] }, contexts: { 1: 'a:1', 4: 'd:4', 9: 'i:9' } },
    },
  ];
  const hs = { term: 2 ** 40, vote: 3, commit: 5 };
  const { wal, recovered } = await open(dir);
  assert.deepEqual(recovered, { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] });
  wal.append(list.slice(0, 3));
  wal.append(list.slice(3), hs);
  await wal.sync();
  await wal.close();
  const again = await open(dir);
  assert.deepEqual(again.recovered.entries, list);
  assert.deepEqual(again.recovered.hardState, hs);
  assert.equal(again.wal.lastIndex, 7);
  await again.wal.close();
});

test('an append at or below the last index overwrites the log from that index on, in a batch and across reopens', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir);
  wal.append(entries(1, 10));
  await wal.sync();
  wal.append(entries(6, 8, 2));
  assert.equal(wal.lastIndex, 8);
  wal.append(entries(9, 9, 2));
  wal.append(entries(4, 4, 3)); // in the same unsynced batch
  await wal.sync();
  await wal.close();
  const { wal: w2, recovered } = await open(dir);
  assert.deepEqual(recovered.entries, [...entries(1, 3), ...entries(4, 4, 3)]);
  assert.equal(w2.lastIndex, 4);
  w2.append(entries(5, 6, 3));
  await w2.close();
  const { wal: w3, recovered: r3 } = await open(dir, { snapshot: { index: 2, term: 1 } });
  assert.deepEqual(r3.entries, [...entries(3, 3), ...entries(4, 6, 3)]);
  await w3.close();
});

test('appends that would leave a gap, reach into the snapshot or exceed the record bound are refused and buffer nothing', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { maxRecordBytes: 1024, snapshot: { index: 0, term: 0 } });
  wal.append(entries(1, 3));
  assert.throws(() => wal.append(entries(5, 6)), /gap/);
  assert.throws(() => wal.append([entry(4), entry(6)]), /gap/);
  assert.throws(() => wal.append([entry(4), { index: 5, term: 1, kind: 'normal', data: Buffer.alloc(2000) }]), /maxRecordBytes/);
  wal.installSnapshot({ index: 3, term: 1 });
  assert.throws(() => wal.append(entries(3, 4)), /at or below the snapshot/);
  wal.append(entries(4, 5));
  await wal.close();
  const { wal: w2, recovered } = await open(dir, { snapshot: { index: 3, term: 1 } });
  assert.deepEqual(recovered.entries, entries(4, 5));
  await w2.close();
});

test('the log rolls over to a new segment at the size limit, and replays across segments and overwrites between them', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { segmentBytes: 2048 });
  for (let i = 1; i <= 200; i += 10) {
    wal.append(entries(i, i + 9), { term: 1, vote: 1, commit: i });
    await wal.sync();
  }
  const names = await segments(dir);
  assert.ok(names.length >= 5, `${names.length} segments`);
  names.forEach((n, i) => assert.match(n, new RegExp(`^${String(i + 1).padStart(16, '0')}-\\d{16}\\.log$`)));
  const firstIndexes = names.map((n) => Number(n.slice(17, 33)));
  assert.equal(firstIndexes[0], 1);
  assert.deepEqual([...firstIndexes].sort((a, b) => a - b), firstIndexes);
  for (const n of names.slice(0, -1)) {
    const size = (await readFile(join(dir, n))).length;
    // at most one record (here under 400 bytes) past the limit
    assert.ok(size >= 2048 && size < 2048 + 400, `${n} is ${size} bytes`);
  }
  wal.append(entries(50, 60, 2)); // index 50 lives in an earlier segment
  await wal.close();
  const { wal: w2, recovered } = await open(dir, { segmentBytes: 2048 });
  assert.deepEqual(recovered.entries, [...entries(1, 49), ...entries(50, 60, 2)]);
  assert.deepEqual(recovered.hardState, { term: 1, vote: 1, commit: 191 });
  await w2.close();
});

test('releaseTo deletes the oldest segments whose entries are all covered, never the current one, and keeps the hard state', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { segmentBytes: 1024 });
  wal.append([], { term: 4, vote: 2, commit: 0 }); // written once, before any entry
  for (let i = 1; i <= 300; i += 20) {
    wal.append(entries(i, i + 19, 4));
    await wal.sync();
  }
  const before = await segments(dir);
  assert.equal(await wal.releaseTo(0), 0);
  const removed = await wal.releaseTo(150);
  const after = await segments(dir);
  assert.equal(before.length - after.length, removed);
  assert.ok(removed >= 2, `${removed} removed`);
  assert.deepEqual(after, before.slice(removed));
  assert.ok(Number(after[0].slice(17, 33)) <= 151, 'the remaining log still reaches back to index 151');
  assert.equal(await wal.releaseTo(10_000), after.length - 1, 'everything but the current segment');
  assert.equal((await segments(dir)).length, 1);
  wal.append(entries(301, 301, 4));
  await wal.close();
  const { wal: w2, recovered } = await open(dir, { snapshot: { index: 300, term: 4 } });
  assert.deepEqual(recovered.hardState, { term: 4, vote: 2, commit: 0 });
  assert.deepEqual(recovered.entries, entries(301, 301, 4));
  await w2.close();
});

test('concurrent syncs share fsyncs: calls made during a sync share exactly one more', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir);
  wal.append(entries(1, 1));
  const first = wal.sync();
  await new Promise((r) => setImmediate(r));
  const rest: Promise<void>[] = [];
  for (let i = 2; i <= 50; i++) {
    wal.append(entries(i, i));
    rest.push(wal.sync());
  }
  assert.equal(new Set(rest).size, 1, 'one promise for all calls made together');
  await Promise.all([first, ...rest]);
  assert.equal(wal.stats.batches, 2);
  assert.equal(wal.stats.fsyncs, 2);
  assert.equal(wal.stats.records, 50);
  await wal.sync();
  assert.equal(wal.stats.fsyncs, 2, 'nothing new to write: no fsync');
  await wal.close();
  const again = await open(dir);
  assert.equal(again.recovered.entries.length, 50);
  await again.wal.close();
});

test('forceSync false writes without fsync', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { forceSync: false, segmentBytes: 1024 });
  for (let i = 1; i <= 100; i += 10) {
    wal.append(entries(i, i + 9));
    await wal.sync();
  }
  assert.equal(wal.stats.fsyncs, 0);
  await wal.close();
  const { wal: w2, recovered } = await open(dir);
  assert.deepEqual(recovered.entries, entries(1, 100));
  await w2.close();
});

test('a snapshot marker replaces the log; a snapshot past the end of the log restarts it there', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir);
  wal.append(entries(1, 10));
  wal.installSnapshot({ index: 100, term: 3 });
  wal.append(entries(101, 102, 3));
  await wal.close();
  await assert.rejects(open(dir), (err: Error) => err instanceof WalCorruptError && /replaced by a snapshot at index 100/.test(err.message));
  const { wal: w2, recovered } = await open(dir, { snapshot: { index: 100, term: 3 } });
  assert.deepEqual(recovered.entries, entries(101, 102, 3));
  await w2.close();

  const other = await tempDir();
  await write(other, entries(1, 10));
  const { wal: w3, recovered: r3 } = await open(other, { snapshot: { index: 50, term: 2 } });
  assert.deepEqual(r3.entries, []);
  assert.equal(w3.lastIndex, 50);
  w3.append(entries(51, 52, 2));
  await w3.close();
  const { wal: w4, recovered: r4 } = await open(other, { snapshot: { index: 50, term: 2 } });
  assert.deepEqual(r4.entries, entries(51, 52, 2));
  await w4.close();
});

test('entries that disagree with the snapshot at its index are dropped, with a log line', async () => {
  const dir = await tempDir();
  await write(dir, entries(1, 10, 1));
  const { logger, lines } = capturingLogger();
  const { wal, recovered } = await open(dir, { snapshot: { index: 8, term: 2 }, logger });
  assert.deepEqual(recovered.entries, []);
  assert.equal(lines.length, 1);
  assert.match(String(lines[0].msg), /another term/);
  wal.append(entries(9, 9, 2));
  await wal.close();
  const { wal: w2, recovered: r2 } = await open(dir, { snapshot: { index: 8, term: 2 } });
  assert.deepEqual(r2.entries, entries(9, 9, 2));
  await w2.close();
});

test('a torn last record, cut at every byte offset, is truncated with one log line and the log stays appendable', async () => {
  const pristine = await tempDir();
  await write(pristine, entries(1, 5), { term: 1, vote: 1, commit: 4 });
  const name = (await segments(pristine))[0];
  const full = await readFile(join(pristine, name));
  const offsets = recordOffsets(full);
  const lastStart = offsets[offsets.length - 1]; // the hard state record
  const entryStart = offsets[offsets.length - 2]; // entry 5
  for (let cut = entryStart + 1; cut < full.length; cut++) {
    if (cut === lastStart) continue; // a clean cut between records: nothing torn
    const dir = await tempDir();
    await writeFile(join(dir, name), full.subarray(0, cut));
    const { logger, lines } = capturingLogger();
    const { wal, recovered } = await open(dir, { logger });
    const torn = cut < lastStart ? entryStart : lastStart;
    assert.deepEqual(recovered.entries, cut < lastStart ? entries(1, 4) : entries(1, 5), `cut at ${cut}`);
    assert.equal(lines.length, 1, `one log line for cut at ${cut}`);
    assert.equal(lines[0].file, join(dir, name));
    assert.equal(lines[0].offset, torn);
    assert.equal((await readFile(join(dir, name))).length, torn, 'file truncated at the torn record');
    wal.append(entries(5, 6, 2), { term: 2, vote: 1, commit: 5 });
    await wal.close();
    const again = await open(dir);
    assert.deepEqual(again.recovered.entries, [...entries(1, 4), ...entries(5, 6, 2)]);
    assert.deepEqual(again.recovered.hardState, { term: 2, vote: 1, commit: 5 });
    await again.wal.close();
    await rm(dir, { recursive: true });
  }
});

test('a zero-filled or absurd-length tail is torn, not corrupt', async () => {
  for (const tail of [Buffer.alloc(4096), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5])]) {
    const dir = await tempDir();
    await write(dir, entries(1, 3));
    const file = join(dir, (await segments(dir))[0]);
    const size = (await readFile(file)).length;
    await writeFile(file, tail, { flag: 'a' });
    const { logger, lines } = capturingLogger();
    const { wal, recovered } = await open(dir, { logger });
    assert.deepEqual(recovered.entries, entries(1, 3));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].offset, size);
    await wal.close();
  }
});

test('a bit flip in any record before the last refuses to start, naming the file and the record offset', async () => {
  const pristine = await tempDir();
  await write(pristine, entries(1, 8), { term: 1, vote: 1, commit: 8 });
  const name = (await segments(pristine))[0];
  const full = await readFile(join(pristine, name));
  const offsets = recordOffsets(full);
  const dir = await tempDir();
  const file = join(dir, name);
  let damaged = full;
  for (const start of offsets.slice(0, -1)) {
    const end = offsets[offsets.indexOf(start) + 1];
    // the length field, the crc field, the type byte, and payload bytes
    for (const at of [start, start + 2, start + 5, start + 8, start + 12, end - 1]) {
      for (const bit of [0, 7]) {
        damaged = Buffer.from(full);
        damaged[at] ^= 1 << bit;
        await writeFile(file, damaged);
        await assert.rejects(open(dir), (err: Error) => {
          assert.ok(err instanceof WalCorruptError, String(err));
          assert.equal(err.file, file);
          assert.equal(err.offset, start, `flip at ${at} bit ${bit}: ${err.message}`);
          assert.ok(err.message.includes(file) && err.message.includes(`byte ${start}`), err.message);
          return true;
        });
      }
    }
  }
  assert.deepEqual(await readFile(file), damaged, 'a refused log is left as it was');
});

test('damage in a segment that is not the last, a missing segment and a gap in indexes are refused', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { segmentBytes: 1024 });
  for (let i = 1; i <= 100; i += 10) {
    wal.append(entries(i, i + 9));
    await wal.sync();
  }
  await wal.close();
  const names = await segments(dir);
  assert.ok(names.length >= 3);

  // the final record of the first segment, cut short
  const first = join(dir, names[0]);
  const pristine = await readFile(first);
  const offsets = recordOffsets(pristine);
  await truncate(first, pristine.length - 3);
  await assert.rejects(open(dir), (err: Error) => err instanceof WalCorruptError && err.file === first && err.offset === offsets[offsets.length - 1] && /not the last/.test(err.message));
  await writeFile(first, pristine);

  const middle = join(dir, names[1]);
  const saved = await readFile(middle);
  await unlink(middle);
  await assert.rejects(open(dir), /segments in between are missing/);
  await writeFile(middle, saved);
  const ok = await open(dir);
  assert.deepEqual(ok.recovered.entries, entries(1, 100));
  await ok.wal.close();

  // a well-formed record whose index skips ahead
  const gap = await tempDir();
  await write(gap, entries(1, 3));
  const seg = join(gap, (await segments(gap))[0]);
  const end = (await readFile(seg)).length;
  await writeFile(seg, Buffer.concat([encodeEntry(entry(5)), encodeEntry(entry(6))]), { flag: 'a' });
  await assert.rejects(open(gap), (err: Error) => err instanceof WalCorruptError && err.offset === end && /entries 4\.\.4 are missing/.test(err.message));
});

test('a log whose first segment starts after the snapshot is refused', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { segmentBytes: 1024 });
  for (let i = 1; i <= 100; i += 10) {
    wal.append(entries(i, i + 9));
    await wal.sync();
  }
  await wal.releaseTo(60);
  await wal.close();
  await assert.rejects(open(dir, { snapshot: { index: 10, term: 1 } }), /snapshot covers only up to 10: entries 11\.\./);
  const { wal: w2, recovered } = await open(dir, { snapshot: { index: 60, term: 1 } });
  assert.deepEqual(recovered.entries, entries(61, 100));
  await w2.close();
});

test('a segment torn before its header reached the disk is rewritten and the hard state kept', async () => {
  const dir = await tempDir();
  const { wal } = await open(dir, { segmentBytes: 1024 });
  wal.append([], { term: 9, vote: 1, commit: 0 });
  for (let i = 1; i <= 60; i += 10) {
    wal.append(entries(i, i + 9, 9));
    await wal.sync();
  }
  await wal.close();
  const names = await segments(dir);
  const lastName = names[names.length - 1];
  const seq = Number(lastName.slice(0, 16)) + 1;
  const torn = `${String(seq).padStart(16, '0')}-${'61'.padStart(16, '0')}.log`;
  await writeFile(join(dir, torn), Buffer.alloc(7));
  const { logger, lines } = capturingLogger();
  const { wal: w2, recovered } = await open(dir, { logger, segmentBytes: 1024 });
  assert.deepEqual(recovered.entries, entries(1, 60, 9));
  assert.equal(lines.length, 1);
  assert.equal(lines[0].file, join(dir, torn));
  w2.append(entries(61, 61, 9));
  await w2.sync();
  await w2.releaseTo(60);
  assert.deepEqual(await segments(dir), [torn]);
  await w2.close();
  const { wal: w3, recovered: r3 } = await open(dir, { snapshot: { index: 60, term: 9 } });
  assert.deepEqual(r3.hardState, { term: 9, vote: 1, commit: 0 });
  assert.deepEqual(r3.entries, entries(61, 61, 9));
  await w3.close();
});

test('a file that is not a segment is refused; other files in the directory are ignored', async () => {
  const dir = await tempDir();
  await write(dir, entries(1, 2));
  await writeFile(join(dir, 'notes.txt'), 'hello');
  const ok = await open(dir);
  assert.deepEqual(ok.recovered.entries, entries(1, 2));
  await ok.wal.close();
  const name = (await segments(dir))[0];
  const data = await readFile(join(dir, name));
  data.write('XXXXX', 0);
  await writeFile(join(dir, name), data);
  await assert.rejects(open(dir), /bad magic/);
});

test('a record whose checksum matches but whose counts are absurd is refused before anything is allocated', () => {
  // entry 1, kind normal, no data, no change, a config whose voter count claims a billion members
  const payload = new JuteWriter().long(1).long(1).int(0).buffer(null).bool(false).bool(true).int(1_000_000_000).take();
  assert.throws(() => decodeRecord(Buffer.concat([Buffer.of(1), payload])), /vector of 1000000000 elements exceeds/);
  assert.throws(() => decodeRecord(Buffer.of(1, 0, 0)), /truncated/);
  assert.throws(() => decodeRecord(Buffer.of(9)), /unknown record type 9/);
  assert.throws(() => encodeEntry({ index: -1, term: 1, kind: 'empty' }), RangeError);
});

test('nonsensical options are refused with a clear error', async () => {
  const dir = await tempDir();
  await assert.rejects(open(dir, { segmentBytes: 0 }), /segmentBytes must be a positive integer/);
  await assert.rejects(open(dir, { maxRecordBytes: 2 ** 33 }), /32-bit/);
});
