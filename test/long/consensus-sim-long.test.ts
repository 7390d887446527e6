/**
 * The long Raft simulation (npm run test:long): 10,000 seeds with faults two and a half times
 * as long as the default suite's, on seeds the default suite does not run. Any seed replays
 * with the command its failure prints; more with npm run sim:raft.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeeds } from '../consensus/simulator.js';

const SEEDS = Number(process.env.RAFT_SIM_LONG_SEEDS ?? 10_000);
const FAULT_TICKS = 1500;

for (const members of [3, 5] as const) {
  test(`${SEEDS / 2} seeds of ${members} members with ${FAULT_TICKS} ticks of faults each`, (t) => {
    const { failures, stats } = runSeeds(1_000_000 + members * 100_000, SEEDS / 2, { members, faultTicks: FAULT_TICKS });
    assert.equal(failures.length, 0, `${failures.length} seeds failed:\n${failures.slice(0, 5).join('\n')}`);
    t.diagnostic(
      `${stats.events} events, ${stats.elections} elections, ${stats.applied} entries applied, ${stats.configChanges} membership changes, ` +
        `${stats.snapshotsInstalled} snapshots installed, ${stats.crashes} crashes; worst ${stats.ticksToLeader} ticks to a leader and ` +
        `${stats.ticksToCommit} to commit everywhere after healing`,
    );
  });
}
