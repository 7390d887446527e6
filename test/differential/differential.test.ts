/**
 * Differential test: the same seeded operation sequences run against Apache
 * ZooKeeper 3.8 and pulsekeeper; every reply, Stat and watch event must match.
 * DIFF_SEED=n replays one seed; DIFF_SEEDS and DIFF_OPS size the run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type RunningServer } from '../../src/index.js';
import { runSeed, Target } from '../support/differential.js';
import { skipWithoutZooKeeper, startZooKeeper, type RunningZooKeeper } from '../support/zookeeper.js';

const skip = skipWithoutZooKeeper();
const seeds = process.env.DIFF_SEED ? [Number(process.env.DIFF_SEED)] : Array.from({ length: Number(process.env.DIFF_SEEDS ?? 20) }, (_, i) => Number(process.env.DIFF_FIRST_SEED ?? 1000) + i);
const opsPerSeed = Number(process.env.DIFF_OPS ?? 300);

let zk: RunningZooKeeper;
let pk: RunningServer;

before(async () => {
  if (skip) return;
  zk = await startZooKeeper({ extendedTypesEnabled: true, forceSync: false, tickTime: 2000 });
  pk = await startServer({ extendedTypesEnabled: true, tickTime: 2000 });
});

after(async () => {
  await zk?.stop();
  await pk?.close();
});

test(`pulsekeeper answers like Apache ZooKeeper (${seeds.length} seeds x ${opsPerSeed} ops)`, { skip }, async () => {
  let total = 0;
  const failures: string[] = [];
  for (const seed of seeds) {
    // Each seed gets a fresh tree on both sides: the root path names are scoped by seed.
    const r = await runSeed(seed, opsPerSeed, async () => [new Target('zookeeper', zk.port), new Target('pulsekeeper', pk.port)]);
    total += r.ops;
    if (r.text) failures.push(r.text);
    await resetTrees();
  }
  assert.deepEqual(failures, [], failures.join('\n\n'));
  assert.ok(total >= seeds.length * opsPerSeed);
});

/** Restarts both servers so each seed starts from an empty tree. */
async function resetTrees(): Promise<void> {
  await zk.stop();
  await pk.close();
  zk = await startZooKeeper({ extendedTypesEnabled: true, forceSync: false, tickTime: 2000 });
  pk = await startServer({ extendedTypesEnabled: true, tickTime: 2000 });
}
