/**
 * Differential test: the same seeded operation sequences run against Apache
 * ZooKeeper 3.8, pulsekeeper (in memory), pulsekeeper on the durable log (what
 * `pulsekeeper start` runs) and a 3-member pulsekeeper ensemble whose sessions sit on
 * different members; every reply, Stat and watch event must match ZooKeeper's.
 * DIFF_SEED=n replays one seed; DIFF_SEEDS and DIFF_OPS size the run; the first
 * DIFF_DURABLE_SEEDS seeds (all by default) include the durable server and the first
 * DIFF_ENSEMBLE_SEEDS the ensemble (each starts afresh for every seed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeed, Target } from '../support/differential.js';
import { pulsekeeperDurableTarget, pulsekeeperEnsembleTarget, pulsekeeperTarget, zookeeperTarget, type ServerOptions, type TestServer } from '../support/servers.js';
import { skipWithoutZooKeeper } from '../support/zookeeper.js';

const skip = skipWithoutZooKeeper();
const seeds = process.env.DIFF_SEED ? [Number(process.env.DIFF_SEED)] : Array.from({ length: Number(process.env.DIFF_SEEDS ?? 20) }, (_, i) => Number(process.env.DIFF_FIRST_SEED ?? 1000) + i);
const opsPerSeed = Number(process.env.DIFF_OPS ?? 300);
// Steps run in lockstep, paced by ZooKeeper's replies: the durable server costs next to nothing on every seed.
const durableSeeds = Math.min(seeds.length, Number(process.env.DIFF_DURABLE_SEEDS ?? seeds.length));
const ensembleSeeds = Math.min(seeds.length, Number(process.env.DIFF_ENSEMBLE_SEEDS ?? 8));
const options: ServerOptions = { extendedTypesEnabled: true, tickTime: 2000 };

test(
  `pulsekeeper (${seeds.length} seeds), durable (${durableSeeds} seeds) and a pulsekeeper ensemble (${ensembleSeeds} seeds) answer like Apache ZooKeeper (${opsPerSeed} ops each)`,
  { skip },
  async () => {
    let total = 0;
    const failures: string[] = [];
    for (const [n, seed] of seeds.entries()) {
      // Fresh servers for every seed, so each starts from an empty tree.
      const kinds = [zookeeperTarget, pulsekeeperTarget];
      if (n < durableSeeds) kinds.push(pulsekeeperDurableTarget);
      if (n < ensembleSeeds) kinds.push(pulsekeeperEnsembleTarget);
      const servers = await Promise.all(kinds.map((t) => t.start(options)));
      try {
        const r = await runSeed(seed, opsPerSeed, async () => servers.map(differentialTarget));
        total += r.ops;
        for (const d of r.differences) {
          const logs = servers.find((s) => s.name === d.target)?.ensemble?.logs();
          failures.push(logs ? `${d.text}\n${logs}` : d.text);
        }
      } finally {
        await Promise.all(servers.map((s) => s.stop()));
      }
    }
    assert.deepEqual(failures, [], failures.join('\n\n'));
    assert.ok(total >= seeds.length * opsPerSeed);
  },
);

function differentialTarget(s: TestServer): Target {
  return new Target(s.name, s.ports, { ensembleConfig: s.ensemble !== undefined });
}
