/**
 * Runs the Raft simulator over many seeds and prints every failure with the command that
 * replays it:
 *   npm run sim:raft -- --seeds N [--start S] [--members 3|5] [--fault-ticks T] [--bug NAME] [--trace]
 * Without --members, seeds alternate between 3 and 5 members. --trace prints each run's events.
 */
import { parseArgs } from 'node:util';
import { BUGS, simulate, type Bug, type SimStats } from './simulator.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '100' },
    start: { type: 'string', default: '1' },
    members: { type: 'string' },
    'fault-ticks': { type: 'string' },
    bug: { type: 'string' },
    trace: { type: 'boolean', default: false },
  },
});

const seeds = Number(values.seeds);
const start = Number(values.start);
const members = values.members === undefined ? undefined : Number(values.members);
const faultTicks = values['fault-ticks'] === undefined ? undefined : Number(values['fault-ticks']);
const bug = values.bug as Bug | undefined;
if (!Number.isSafeInteger(seeds) || seeds < 1 || !Number.isSafeInteger(start) || start < 0) throw new Error('--seeds and --start take whole numbers');
if (members !== undefined && members !== 3 && members !== 5) throw new Error('--members is 3 or 5');
if (faultTicks !== undefined && !(Number.isSafeInteger(faultTicks) && faultTicks >= 0)) throw new Error('--fault-ticks takes a whole number');
if (bug !== undefined && !BUGS.includes(bug)) throw new Error(`--bug is one of ${BUGS.join(', ')}`);

const began = performance.now();
const totals: Partial<Record<keyof SimStats, number>> = {};
const worst = { ticksToLeader: 0, ticksToCommit: 0 };
let failures = 0;
for (let seed = start; seed < start + seeds; seed++) {
  const n = members ?? (seed % 2 === 0 ? 3 : 5);
  const r = simulate({ seed, members: n as 3 | 5, faultTicks, bug, trace: values.trace });
  if (values.trace) console.log(r.trace.join('\n'));
  for (const [k, v] of Object.entries(r.stats) as [keyof SimStats, number][]) totals[k] = (totals[k] ?? 0) + v;
  worst.ticksToLeader = Math.max(worst.ticksToLeader, r.stats.ticksToLeader);
  worst.ticksToCommit = Math.max(worst.ticksToCommit, r.stats.ticksToCommit);
  if (r.failure) {
    failures++;
    console.log(r.failure);
  }
}
const seconds = (performance.now() - began) / 1000;
console.log(JSON.stringify({ seeds, failures, seconds: Number(seconds.toFixed(1)), worst, totals }));
process.exitCode = failures ? 1 : 0;
