/**
 * `npm run sim -- --members N --scenario NAME --seed S [--config pulsekeeper|memberlist-lan]`:
 * runs one simulated scenario and prints its figures as one JSON line.
 */
import { parseArgs } from 'node:util';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS } from '../membership/core/types.js';
import { SCENARIOS, simulate } from './simulator.js';

export const CONFIGS = { pulsekeeper: PULSEKEEPER_DEFAULTS, 'memberlist-lan': MEMBERLIST_LAN };

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '100' },
    scenario: { type: 'string', default: 'lan' },
    seed: { type: 'string', default: '1' },
    config: { type: 'string', default: 'pulsekeeper' },
    duration: { type: 'string' },
  },
});
const scenario = SCENARIOS[values.scenario!];
const config = CONFIGS[values.config as keyof typeof CONFIGS];
if (!scenario || !config) {
  console.error(`scenarios: ${Object.keys(SCENARIOS).join(', ')}; configs: ${Object.keys(CONFIGS).join(', ')}`);
  process.exit(2);
}
const s = { name: values.scenario!, ...scenario, ...(values.duration ? { durationMs: Number(values.duration) * 1000 } : {}) };
console.log(JSON.stringify(simulate(Number(values.members), s, config, values.config!, Number(values.seed))));
