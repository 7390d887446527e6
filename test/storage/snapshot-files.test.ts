import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotMeta } from '../../src/consensus/types.js';
import { SnapshotStore, type StoredSnapshot } from '../../src/storage/snapshot-files.js';
import { silentLogger } from '../../src/util/log.js';
import { capturingLogger, tempDir } from './helpers.js';

function meta(index: number, term = 1): SnapshotMeta {
  return { index, term, membership: { voters: [1, 2, 3], learners: [4] }, contexts: { 1: 'a:1', 2: 'b:2', 3: 'c:3', 4: 'd:4' } };
}

/** A body of `chunks` chunks of varied sizes, produced lazily as a live tree would. */
async function* body(seed: number, chunks: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < chunks; i++) {
    const b = Buffer.alloc(1 + ((seed * 31 + i * 7919) % 70_000));
    for (let j = 0; j < b.length; j += 97) b[j] = (seed + i + j) & 0xff;
    yield b;
    await new Promise((r) => setImmediate(r));
  }
}

async function collect(it: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

test('a snapshot streamed from a generator is written, found by latest() and read back', async () => {
  const dir = await tempDir();
  const store = await SnapshotStore.open(dir, { logger: silentLogger, chunkBytes: 10_000 });
  assert.equal(await store.latest(), undefined);
  const written = await store.write(meta(120, 3), body(1, 40));
  assert.equal(written.path, join(dir, 'snap-0000000000000003-0000000000000120.snap'));
  assert.deepEqual(await files(dir), ['snap-0000000000000003-0000000000000120.snap']);
  const latest = (await store.latest())!;
  assert.deepEqual(latest.meta, meta(120, 3));
  assert.equal(latest.bodyBytes, written.bodyBytes);
  const expected = await collect(body(1, 40));
  let chunks = 0;
  const got: Buffer[] = [];
  for await (const c of latest.body()) {
    assert.ok(c.length <= 10_000);
    got.push(c);
    chunks++;
  }
  assert.ok(chunks > 1);
  assert.ok(Buffer.concat(got).equals(expected));
  // an empty body, from a plain iterable
  const empty = await store.write(meta(121, 3), []);
  assert.equal(empty.bodyBytes, 0);
  assert.equal((await collect((await store.latest())!.body())).length, 0);
});

test('a body that fails midway leaves no file behind', async () => {
  const dir = await tempDir();
  const store = await SnapshotStore.open(dir, { logger: silentLogger });
  async function* failing() {
    yield* body(3, 30);
    throw new Error('tree went away');
  }
  await assert.rejects(store.write(meta(3), failing()), /tree went away/);
  assert.deepEqual(await files(dir), []);
});

test('only the newest two snapshots are kept', async () => {
  const dir = await tempDir();
  const store = await SnapshotStore.open(dir, { logger: silentLogger });
  for (const i of [10, 20, 30, 40]) await store.write(meta(i, 2), body(i, 3));
  assert.deepEqual(await files(dir), ['snap-0000000000000002-0000000000000030.snap', 'snap-0000000000000002-0000000000000040.snap']);
  assert.deepEqual((await store.list()).map((s) => s.index), [40, 30]);
});

test('a damaged or truncated newest snapshot is logged and the one before it is used', async () => {
  const dir = await tempDir();
  const { logger, lines } = capturingLogger();
  const store = await SnapshotStore.open(dir, { logger });
  await store.write(meta(10), body(10, 5));
  const newest = await store.write(meta(20), body(20, 5));
  const pristine = await readFile(newest.path);
  for (const at of [3, 20, newest.bodyOffset + 100, pristine.length - 10, pristine.length - 1]) {
    const damaged = Buffer.from(pristine);
    damaged[at] ^= 0x10;
    await writeFile(newest.path, damaged);
    lines.length = 0;
    const latest = (await store.latest())!;
    assert.equal(latest.meta.index, 10, `byte ${at} damaged`);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].file, newest.path);
  }
  await writeFile(newest.path, pristine);
  await truncate(newest.path, pristine.length - 5);
  assert.equal((await store.latest())!.meta.index, 10);
  await writeFile(newest.path, pristine);
  assert.equal((await store.latest())!.meta.index, 20);
});

test('body() fails at the end if the file changed after it was checked', async () => {
  const dir = await tempDir();
  const store = await SnapshotStore.open(dir, { logger: silentLogger });
  const s = await store.write(meta(5), body(5, 4));
  const checked = (await store.latest())!;
  const data = await readFile(s.path);
  data[checked.bodyOffset + 1] ^= 1;
  await writeFile(s.path, data);
  await assert.rejects(collect(checked.body()), /checksum mismatch/);
});

async function send(from: StoredSnapshot, write: (c: Buffer) => Promise<void>, pieces: number[]): Promise<void> {
  // re-cut the leader's chunks into odd sizes, as a network would
  const whole = await collect(from.transfer());
  let at = 0;
  for (let i = 0; at < whole.length; i++) {
    const n = pieces[i % pieces.length];
    await write(whole.subarray(at, at + n));
    at += n;
  }
}

test('a follower receives the leader file in chunks of any size, checked and renamed into place', async () => {
  const leader = await SnapshotStore.open(await tempDir(), { logger: silentLogger, chunkBytes: 4096 });
  const sent = await leader.write(meta(77, 5), body(77, 20));
  const dir = await tempDir();
  const follower = await SnapshotStore.open(dir, { logger: silentLogger });
  const rx = follower.beginReceive(meta(77, 5));
  await send(sent, (c) => rx.write(c), [1, 3, 5000, 11, 65536, 7]);
  const path = await rx.finish(meta(77, 5));
  assert.equal(path, join(dir, 'snap-0000000000000005-0000000000000077.snap'));
  assert.deepEqual(await files(dir), ['snap-0000000000000005-0000000000000077.snap']);
  const got = (await follower.latest())!;
  assert.deepEqual(got.meta, meta(77, 5));
  assert.ok((await collect(got.body())).equals(await collect(sent.body())));

  // without waiting for each write, and without saying beforehand which snapshot comes
  const dir2 = await tempDir();
  const other = await SnapshotStore.open(dir2, { logger: silentLogger });
  const rx2 = other.beginReceive();
  const whole = await collect(sent.transfer());
  for (let at = 0; at < whole.length; at += 1000) void rx2.write(whole.subarray(at, at + 1000));
  assert.equal(await rx2.finish(), join(dir2, 'snap-0000000000000005-0000000000000077.snap'));
  assert.ok((await collect((await other.latest())!.body())).equals(await collect(sent.body())));
});

test('receive: abort, damage, a short stream, the wrong snapshot and an oversized one leave nothing behind', async () => {
  const leader = await SnapshotStore.open(await tempDir(), { logger: silentLogger });
  const sent = await leader.write(meta(50, 2), body(50, 10));
  const whole = await collect(sent.transfer());
  const dir = await tempDir();
  const store = await SnapshotStore.open(dir, { logger: silentLogger, maxSnapshotBytes: whole.length + 100 });

  const aborted = store.beginReceive(meta(50, 2));
  await aborted.write(whole.subarray(0, 1000));
  await aborted.abort();
  await assert.rejects(aborted.write(whole.subarray(1000, 2000)), /finished or aborted/);
  await assert.rejects(aborted.finish(), /finished or aborted/);

  const damaged = Buffer.from(whole);
  damaged[whole.length >> 1] ^= 4;
  const rx1 = store.beginReceive(meta(50, 2));
  await rx1.write(damaged);
  await assert.rejects(rx1.finish(), /checksum mismatch/);

  const rx2 = store.beginReceive(meta(50, 2));
  await rx2.write(whole.subarray(0, whole.length - 1));
  await assert.rejects(rx2.finish(), /trailer says|checksum/);

  const rx3 = store.beginReceive(meta(51, 2));
  await assert.rejects(rx3.write(whole), /expected snapshot term 2 index 51/);
  await assert.rejects(rx3.finish(), /expected snapshot term 2 index 51/);

  const rx4 = store.beginReceive();
  await rx4.write(whole);
  await assert.rejects(rx4.finish(meta(50, 3)), /expected snapshot term 3/);

  const rx5 = store.beginReceive();
  await rx5.write(whole);
  await assert.rejects(rx5.write(Buffer.alloc(200)), /exceeds/);

  const rx6 = store.beginReceive();
  await assert.rejects(rx6.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')), /bad magic/);
  await assert.rejects(store.beginReceive().finish(), /before its meta/);

  assert.deepEqual(await files(dir), []);
  assert.equal(await store.latest(), undefined);
});

test('files left half-written by a crash are removed on open; a foreign file is skipped', async () => {
  const dir = await tempDir();
  const store = await SnapshotStore.open(dir, { logger: silentLogger });
  await store.write(meta(9), body(9, 2));
  await writeFile(join(dir, 'snap.tmp-0123abcd'), 'partial');
  await writeFile(join(dir, 'snap-0000000000000001-0000000000000099.snap'), 'not a snapshot at all');
  const { logger, lines } = capturingLogger();
  const again = await SnapshotStore.open(dir, { logger });
  assert.ok(!(await files(dir)).includes('snap.tmp-0123abcd'));
  assert.equal((await again.latest())!.meta.index, 9);
  assert.match(String(lines[0].problem), /too short|bad magic/);
});
