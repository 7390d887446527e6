/**
 * `npm run sim -- --members N --scenario NAME --seed S [--config pulsekeeper|memberlist-lan] [--duration SECONDS]`:
 * runs one simulated scenario and prints its figures as one JSON line.
 */
import { parseArgs } from 'node:util';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS } from '../membership/core/types.js';
import { SCENARIOS, simulate } from './simulator.js';

export const CONFIGS = { pulsekeeper: PULSEKEEPER_DEFAULTS, 'memberlist-lan': MEMBERLIST_LAN };
/** Every simulated member keeps a full view: a few bytes per member per member. */
const MAX_MEMBERS = 20_000;

function usage(problem: string): never {
  console.error(`sim: ${problem}`);
  console.error(`usage: npm run sim -- --members N (2..${MAX_MEMBERS}) --scenario NAME --seed S [--config NAME] [--duration SECONDS]`);
  console.error(`scenarios: ${Object.keys(SCENARIOS).join(', ')}; configs: ${Object.keys(CONFIGS).join(', ')}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      members: { type: 'string', default: '100' },
      scenario: { type: 'string', default: 'lan' },
      seed: { type: 'string', default: '1' },
      config: { type: 'string', default: 'pulsekeeper' },
      duration: { type: 'string' },
    },
  }));
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
const members = Number(values.members);
const seed = Number(values.seed);
const scenario = Object.hasOwn(SCENARIOS, values.scenario!) ? SCENARIOS[values.scenario!] : undefined;
const config = Object.hasOwn(CONFIGS, values.config!) ? CONFIGS[values.config as keyof typeof CONFIGS] : undefined;
if (!Number.isInteger(members) || members < 2 || members > MAX_MEMBERS) usage(`--members must be an integer in 2..${MAX_MEMBERS}`);
if (!Number.isInteger(seed) || seed < 0) usage('--seed must be a non-negative integer');
if (!scenario) usage(`no scenario ${values.scenario}`);
if (!config) usage(`no config ${values.config}`);
const duration = values.duration === undefined ? scenario.durationMs : Number(values.duration) * 1000;
if (!(duration > 0 && duration <= 3_600_000)) usage('--duration must be in (0, 3600] seconds');
console.log(JSON.stringify(simulate(members, { name: values.scenario!, ...scenario, durationMs: duration }, config, values.config!, seed)));
