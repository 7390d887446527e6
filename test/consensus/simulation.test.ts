/**
 * The Raft core in the deterministic simulator: 1,000 seeds of 3- and 5-member ensembles under
 * crashes, lossy storage, partitions and a misbehaving network, checked for safety after every
 * event and for liveness once the faults stop; runs replay exactly from their seed; and
 * injected bugs are caught, so the checks can fail. Longer runs: test/long and npm run sim:raft.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUGS, runSeeds, simulate, type SimResult } from './simulator.js';

const SEEDS = Number(process.env.RAFT_SIM_SEEDS ?? 1000);
const FAULT_TICKS = 600;

test(`${SEEDS} seeds: safe after every event, live once the faults stop`, (t) => {
  const { failures, stats } = runSeeds(1, SEEDS, { faultTicks: FAULT_TICKS });
  assert.equal(failures.length, 0, `${failures.length} of ${SEEDS} seeds failed:\n${failures.slice(0, 5).join('\n')}`);
  // The runs exercised what they are meant to.
  for (const k of ['elections', 'proposals', 'readsAnswered', 'configChanges', 'transfers', 'snapshotsInstalled', 'crashes', 'partitions'] as const) {
    assert.ok(stats[k] > SEEDS / 10, `${k}: ${stats[k]}`);
  }
  t.diagnostic(
    `${stats.events} events, ${stats.elections} elections, ${stats.applied} entries applied, ${stats.readsAnswered} reads, ` +
      `${stats.configChanges} membership changes, ${stats.transfers} transfers, ${stats.snapshotsInstalled} snapshots installed, ` +
      `${stats.crashes} crashes, ${stats.partitions} partitions; after healing, worst ${stats.ticksToLeader} ticks to a leader ` +
      `and ${stats.ticksToCommit} ticks to commit everywhere`,
  );
});

test('a seed replays exactly: the same trace twice, a different one for another seed', () => {
  const run = (seed: number): SimResult => simulate({ seed, members: 5, faultTicks: 200, trace: true });
  const a = run(7);
  const b = run(7);
  assert.ok(a.trace.length > 1000);
  assert.deepEqual(a.trace, b.trace);
  assert.equal(a.traceHash, b.traceHash);
  assert.notEqual(run(8).traceHash, a.traceHash);
});

test('injected bugs are caught by the check each one breaks; the failure names the seed and how to replay it', () => {
  const expected: Record<(typeof BUGS)[number], RegExp> = {
    'forge-votes': /election safety: members \d+ and \d+ both lead term/,
    'skip-log-check': /leader completeness: leader \d+ of term \d+ lacks entry/,
    'forge-read-acks': /read \d+ at member \d+ got index \d+, below \d+ applied before it was asked/,
    'inflate-heartbeat-commit': /state machine safety: member \d+ applies a different entry/,
    // A disk that loses acknowledged writes loses committed entries, or wedges a follower whose match went back.
    'lose-fsync': /leader completeness|state machine safety|liveness: proposals made/,
  };
  for (const bug of BUGS) {
    let caught: SimResult | undefined;
    for (let seed = 1; seed <= 300 && !caught; seed++) {
      const r = simulate({ seed, members: seed % 2 === 0 ? 3 : 5, faultTicks: 300, bug });
      if (r.failure && expected[bug].test(r.failure)) caught = r;
    }
    assert.ok(caught, `bug ${bug} went unnoticed for 300 seeds`);
    assert.match(caught.failure!, new RegExp(`seed ${caught.seed} .*bug ${bug}`));
    assert.ok(caught.failure!.includes(`npm run sim:raft -- --members ${caught.members} --start ${caught.seed} --seeds 1 --trace --bug ${bug} --fault-ticks 300`));
    // The replay fails the same way.
    assert.equal(simulate({ seed: caught.seed, members: caught.members as 3 | 5, faultTicks: 300, bug }).failure, caught.failure);
  }
});
