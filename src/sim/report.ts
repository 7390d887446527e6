/**
 * `npm run sim:report`: runs the simulator's scenarios with pulsekeeper's defaults
 * and with memberlist's LAN defaults, and writes the comparison to BENCHMARKS.md.
 *   npm run sim:report -- [--sizes 100,1000] [--seeds 1,2,3] [--large-scenarios lan]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS } from '../membership/core/types.js';
import { SCENARIOS, simulate, type Percentiles, type SimReport } from './simulator.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000' },
    seeds: { type: 'string', default: '1,2,3' },
    'large-scenarios': { type: 'string', default: 'lan' },
  },
});
const sizes = values.sizes!.split(',').map(Number);
const seeds = values.seeds!.split(',').map(Number);
const large = new Set(values['large-scenarios']!.split(','));
const configs = [
  ['pulsekeeper', PULSEKEEPER_DEFAULTS],
  ['memberlist-lan', MEMBERLIST_LAN],
] as const;

const ms = (p: Percentiles) => (p.count ? `${(p.p50 / 1000).toFixed(1)} / ${(p.p99 / 1000).toFixed(1)} / ${(p.max / 1000).toFixed(1)}` : '–');

const rows: string[] = [];
for (const n of sizes) {
  for (const name of Object.keys(SCENARIOS)) {
    if (n > 100 && !large.has(name)) continue;
    for (const [configName, config] of configs) {
      // Seeds pooled: detection times of all crashes of all seeds, sums of false declarations.
      const reports: SimReport[] = seeds.map((seed) => simulate(n, { name, ...SCENARIOS[name] }, config, configName, seed));
      const pool = (k: 'firstSuspicionMs' | 'firstFailedMs' | 'allAgreeMs' | 'updateSpreadMs'): Percentiles => {
        const xs = reports.flatMap((r) => (r[k].count ? [r[k].p50] : []));
        const all = reports.flatMap((r) => (r[k].count ? [r[k].p50, r[k].p99, r[k].max] : []));
        return xs.length ? { count: xs.length, p50: median(xs), p99: Math.max(...reports.flatMap((r) => (r[k].count ? [r[k].p99] : []))), max: Math.max(...all) } : { count: 0, p50: NaN, p99: NaN, max: NaN };
      };
      const sum = (f: (r: SimReport) => number) => reports.reduce((a, r) => a + f(r), 0);
      const avg = (f: (r: SimReport) => number) => sum(f) / reports.length;
      rows.push(
        `| ${n} | ${name} | ${configName} | ${sum((r) => r.crashed)} | ${ms(pool('firstSuspicionMs'))} | ${ms(pool('firstFailedMs'))} | ${ms(pool('allAgreeMs'))} | ${sum((r) => r.undetected)} | ${avg((r) => r.falseFailuresPerMemberHour).toFixed(2)} | ${avg((r) => r.messagesPerMemberSecond).toFixed(1)} | ${avg((r) => r.bytesPerMemberSecond).toFixed(0)} | ${ms(pool('updateSpreadMs'))} | ${sum((r) => r.finalViewGaps)} |`,
      );
      console.log(rows[rows.length - 1]);
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const section = [
  '<!-- membership:begin -->',
  '## Gossip membership: pulsekeeper defaults vs memberlist LAN defaults (simulated)',
  '',
  `Command: \`npm run sim:report -- --sizes ${values.sizes} --seeds ${values.seeds} --large-scenarios ${values['large-scenarios']}\` (${new Date().toISOString().slice(0, 10)}).`,
  'The same SWIM/Lifeguard core (src/membership/core) runs in the deterministic simulator (src/sim) with two',
  "configurations: pulsekeeper's defaults and HashiCorp memberlist's DefaultLANConfig (probe 1 s, probe timeout 500 ms,",
  '3 indirect checks, retransmit mult 4, suspicion mult 4, max timeout mult 6, gossip 200 ms to 3 members, push-pull 30 s).',
  'Members start converged; one-way latency 0.2 ms + exponential(0.5 ms). Scenarios:',
  '',
  ...Object.entries(SCENARIOS).map(([name, s]) => `- **${name}**: ${s.description}; ${s.durationMs / 1000} s simulated.`),
  '',
  'Times are seconds as p50 / p99 / max over the seeds (p50 is the median of the per-seed medians). "all agree" is from',
  'the crash until every running member has declared the member failed. False declarations count `failed` events, at any',
  'member, about members that had not crashed (paused or partitioned ones), per member-hour. Msgs and bytes are sent per',
  'member per second (bytes estimated from the message contents). Gaps: pairs of running members at the end where one',
  'does not count the other alive.',
  '',
  '| members | scenario | config | crashes | first suspicion (s) | first failed (s) | all agree (s) | undetected | false / member-hour | msgs / member / s | bytes / member / s | update reaches all (s) | gaps |',
  '|---:|---|---|---:|---|---|---|---:|---:|---:|---:|---|---:|',
  ...rows,
  '',
  'Not yet measured: 10,000 members. Every simulated member keeps a full membership table, so 10,000 members take',
  'about 10^8 table entries in one process; the simulator needs a compact table layout first.',
  '<!-- membership:end -->',
].join('\n');

const file = 'BENCHMARKS.md';
let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
const re = /<!-- membership:begin -->[\s\S]*<!-- membership:end -->/;
text = re.test(text) ? text.replace(re, section) : text.trimEnd() + '\n\n' + section + '\n';
writeFileSync(file, text);
console.log(`wrote ${file}`);
