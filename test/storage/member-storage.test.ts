import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotMeta } from '../../src/consensus/types.js';
import { openMemberStorage } from '../../src/storage/member-storage.js';
import { silentLogger } from '../../src/util/log.js';
import { capturingLogger, entries, tempDir } from './helpers.js';

const opts = { logger: silentLogger, segmentBytes: 2048 };

function meta(index: number, term = 1): SnapshotMeta {
  return { index, term, membership: { voters: [1], learners: [] }, contexts: { 1: '127.0.0.1:2888:3888' } };
}

function stateAt(index: number): Buffer[] {
  return [Buffer.from(`tree as of ${index}`)];
}

async function text(it: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts).toString();
}

test('a new member starts empty; a restarted one gets its newest snapshot, the entries after it and its hard state', async () => {
  const dir = await tempDir();
  const s1 = await openMemberStorage(dir, opts);
  assert.deepEqual(s1.restored, { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [], applied: 0 });
  await s1.persist({ entries: entries(1, 60), hardState: { term: 1, vote: 1, commit: 60 } });
  await s1.saveSnapshot(meta(50), stateAt(50));
  await s1.persist({ entries: entries(61, 70), hardState: { term: 1, vote: 1, commit: 70 } });
  await s1.close();
  assert.deepEqual((await readdir(dir)).sort(), ['snap', 'wal']);

  const s2 = await openMemberStorage(dir, opts);
  const r = s2.restored;
  assert.deepEqual(r.hardState, { term: 1, vote: 1, commit: 70 });
  assert.deepEqual(r.snapshot?.meta, meta(50));
  assert.equal(await text(r.snapshot!.body()), 'tree as of 50');
  assert.deepEqual(r.entries, entries(51, 70));
  assert.equal(r.applied, 50);
  await s2.close();
});

test('the log is kept back to the older snapshot, so a damaged newest one falls back without losing entries', async () => {
  const dir = await tempDir();
  const s = await openMemberStorage(dir, opts);
  for (let i = 1; i <= 400; i += 20) await s.persist({ entries: entries(i, i + 19), hardState: { term: 1, vote: 1, commit: i + 19 } });
  await s.saveSnapshot(meta(100), stateAt(100));
  await s.saveSnapshot(meta(200), stateAt(200));
  const segmentsBefore = (await readdir(join(dir, 'wal'))).length;
  await s.saveSnapshot(meta(300), stateAt(300));
  const walFiles = (await readdir(join(dir, 'wal'))).sort();
  assert.ok(walFiles.length < segmentsBefore, 'segments covered by the older snapshot are gone');
  assert.ok(Number(walFiles[0].slice(17, 33)) <= 201, 'the log still reaches back to the older snapshot');
  await s.close();

  const newest = join(dir, 'snap', 'snap-0000000000000001-0000000000000300.snap');
  const data = await readFile(newest);
  data[data.length - 20] ^= 1;
  await writeFile(newest, data);
  const { logger, lines } = capturingLogger();
  const s2 = await openMemberStorage(dir, { ...opts, logger });
  assert.equal(s2.restored.snapshot?.meta.index, 200);
  assert.equal(await text(s2.restored.snapshot!.body()), 'tree as of 200');
  assert.deepEqual(s2.restored.entries, entries(201, 400));
  assert.equal(lines.length, 1);
  assert.equal(lines[0].file, newest);
  await s2.close();
});

test('a snapshot received from the leader replaces the log and the member restarts from it', async () => {
  const leaderDir = await tempDir();
  const leader = await openMemberStorage(leaderDir, opts);
  await leader.persist({ entries: entries(1, 500, 2), hardState: { term: 2, vote: 1, commit: 500 } });
  const sent = await leader.saveSnapshot(meta(500, 2), stateAt(500));

  const dir = await tempDir();
  const follower = await openMemberStorage(dir, opts);
  await follower.persist({ entries: entries(1, 30, 1), hardState: { term: 1, vote: 1, commit: 20 } });
  await assert.rejects(follower.persist({ snapshot: meta(500, 2), entries: [] }), /must be received/);
  const rx = follower.snapshots.beginReceive(meta(500, 2));
  for await (const chunk of sent.transfer()) await rx.write(chunk);
  await rx.finish();
  await follower.persist({ snapshot: meta(500, 2), entries: entries(501, 505, 2), hardState: { term: 2, vote: 0, commit: 500 } });
  await follower.close();

  const again = await openMemberStorage(dir, opts);
  assert.equal(again.restored.snapshot?.meta.index, 500);
  assert.equal(await text(again.restored.snapshot!.body()), 'tree as of 500');
  assert.deepEqual(again.restored.entries, entries(501, 505, 2));
  assert.deepEqual(again.restored.hardState, { term: 2, vote: 0, commit: 500 });
  await again.close();
  await leader.close();
});

test('the log can live in its own directory', async () => {
  const dir = await tempDir();
  const walDir = join(await tempDir(), 'txnlog');
  const s = await openMemberStorage(dir, { ...opts, walDir });
  await s.persist({ entries: entries(1, 3) });
  await s.close();
  assert.deepEqual(await readdir(dir), ['snap']);
  assert.equal((await readdir(walDir)).length, 1);
  const again = await openMemberStorage(dir, { ...opts, walDir });
  assert.deepEqual(again.restored.entries, entries(1, 3));
  await again.close();
});
