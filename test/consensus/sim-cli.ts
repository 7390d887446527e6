/**
 * Runs the Raft simulator over many seeds and prints every failure with the command that
 * replays it:
 *   npm run sim:raft -- --seeds N [--start S] [--members 3|5] [--fault-ticks T] [--bug NAME] [--trace]
 * Without --members, even seeds run 3 members and odd ones 5. --trace prints each run's events.
 */
import { parseArgs } from 'node:util';
import { BUGS, runSeeds, simulate, type Bug } from './simulator.js';

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
let failures: string[];
let stats: object;
if (values.trace) {
  // One run at a time, printing its events.
  failures = [];
  stats = {};
  for (let seed = start; seed < start + seeds; seed++) {
    const r = simulate({ seed, members: (members ?? (seed % 2 === 0 ? 3 : 5)) as 3 | 5, faultTicks, bug, trace: true });
    console.log(r.trace.join('\n'));
    if (r.failure) failures.push(r.failure);
    stats = r.stats;
  }
} else {
  ({ failures, stats } = runSeeds(start, seeds, { members: members as 3 | 5 | undefined, faultTicks, bug }));
}
for (const f of failures) console.log(f);
const seconds = Number(((performance.now() - began) / 1000).toFixed(1));
console.log(JSON.stringify({ seeds, failures: failures.length, seconds, stats }));
process.exitCode = failures.length ? 1 : 0;
