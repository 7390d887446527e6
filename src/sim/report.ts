/**
 * `npm run sim:report`: runs the simulator's scenarios with pulsekeeper's defaults
 * and with memberlist's LAN defaults, and writes the comparison to BENCHMARKS.md.
 *   npm run sim:report -- [--sizes 100,1000,10000] [--seeds 1,2,3] [--big-seeds 1] [--large-scenarios lan,lan-fixed,quiet]
 *                          [--save FILE] [--load FILE]
 * Every scenario runs at the smallest size; the large scenarios at every size; the
 * real-process scenario at 30 members. Sizes above 1,000 use --big-seeds. --save keeps
 * the raw figures; --load writes the section from them again without simulating (give
 * it the options of the run that saved them: the section's command line names them).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS, type SwimConfig } from '../membership/core/types.js';
import { SCENARIOS, simulate, type Percentiles, type SimReport } from './simulator.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,10000' },
    seeds: { type: 'string', default: '1,2,3' },
    'big-seeds': { type: 'string', default: '1' },
    'large-scenarios': { type: 'string', default: 'lan,lan-fixed,quiet' },
    save: { type: 'string' },
    load: { type: 'string' },
  },
});
const sizes = values.sizes!.split(',').map(Number);
const seeds = values.seeds!.split(',').map(Number);
const bigSeeds = values['big-seeds']!.split(',').map(Number);
const large = new Set(values['large-scenarios']!.split(','));
for (const name of large) if (!Object.hasOwn(SCENARIOS, name)) throw new Error(`--large-scenarios: no scenario ${name}`);
const configs: [string, SwimConfig][] = [
  ['pulsekeeper', PULSEKEEPER_DEFAULTS],
  ['memberlist-lan', MEMBERLIST_LAN],
];
const TYPES = ['ping', 'ack', 'ping-req', 'nack', 'tcp-ping', 'gossip', 'push-pull'];
/** The load scenarios, in the order the goal lines take them. */
const LOAD_SCENARIOS = ['quiet', 'lan', 'lan-fixed'];
/**
 * "Per-member load independent of cluster size" taken as: messages per member per second
 * at the largest size within this factor of those at the smallest (the bound the default
 * suite's load test uses). SWIM's retransmissions grow as log(n), so exactly flat is not
 * the bar; a load that grows with the number of faults is.
 */
const FLAT = 1.3;

const s1 = (x: number) => (x / 1000).toFixed(1);
const ms = (p: Percentiles) => (p.count ? `${s1(p.p50)} / ${s1(p.p99)} / ${s1(p.max)}` : '–');

interface Row {
  n: number;
  scenario: string;
  config: string;
  seeds: number[];
  reports: SimReport[];
  agree: Percentiles;
  falsePerHour: number;
  msgs: number;
}

/** Seeds pooled: times as the median of per-seed medians, the worst p99 and max; counts summed; rates averaged. */
function pool(reports: SimReport[], k: 'firstSuspicionMs' | 'firstFailedMs' | 'allAgreeMs' | 'updateSpreadMs' | 'rejoinMs'): Percentiles {
  const with_ = reports.filter((r) => r[k].count > 0);
  if (with_.length === 0) return { count: 0, p50: NaN, p99: NaN, max: NaN };
  return {
    count: with_.reduce((a, r) => a + r[k].count, 0),
    p50: median(with_.map((r) => r[k].p50)),
    p99: Math.max(...with_.map((r) => r[k].p99)),
    max: Math.max(...with_.map((r) => r[k].max)),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const rows: Row[] = values.load ? (JSON.parse(readFileSync(values.load, 'utf8')) as Row[]) : [];
function run(n: number, scenario: string, runSeeds: number[]): void {
  for (const [configName, config] of configs) {
    const reports = runSeeds.map((seed) => simulate(n, { name: scenario, ...SCENARIOS[scenario] }, config, configName, seed));
    const avg = (f: (r: SimReport) => number) => reports.reduce((a, r) => a + f(r), 0) / reports.length;
    const row: Row = { n, scenario, config: configName, seeds: runSeeds, reports, agree: pool(reports, 'allAgreeMs'), falsePerHour: avg((r) => r.falseFailuresPerMemberHour), msgs: avg((r) => r.messagesPerMemberSecond) };
    rows.push(row);
    console.log(mainLine(row));
  }
}

function mainLine(r: Row): string {
  const sum = (f: (x: SimReport) => number) => r.reports.reduce((a, x) => a + f(x), 0);
  const avg = (f: (x: SimReport) => number) => sum(f) / r.reports.length;
  const settled = r.reports.every((x) => x.settledMs !== undefined) && r.reports[0].settledMs !== undefined ? ` (settled ${s1(Math.max(...r.reports.map((x) => x.settledMs!)))} s)` : '';
  const restarted = sum((x) => x.restarted);
  const rejoin = pool(r.reports, 'rejoinMs');
  const restarts = restarted
    ? ` (${restarted} restarts, ${sum((x) => x.restartedAfterAgreement)} after all agreed; ${rejoin.count === restarted ? `all back in every view within ${s1(rejoin.max)} s` : `${rejoin.count} back in every view`}; ${sum((x) => x.failedAfterRestart)} failed events after restart)`
    : '';
  return [
    '',
    r.n,
    r.scenario + settled + restarts,
    r.config,
    r.seeds.join(','),
    sum((x) => x.crashed),
    ms(pool(r.reports, 'firstSuspicionMs')),
    ms(pool(r.reports, 'firstFailedMs')),
    ms(r.agree),
    sum((x) => x.undetected),
    `${r.falsePerHour.toFixed(2)} (${sum((x) => x.falselyAccused)})`,
    r.msgs.toFixed(1),
    avg((x) => x.bytesPerMemberSecond).toFixed(0),
    ms(pool(r.reports, 'updateSpreadMs')),
    sum((x) => x.finalViewGaps),
    `${avg((x) => x.cpuSeconds).toFixed(1)} (${speed(avg((x) => x.simulatedSeconds / x.cpuSeconds))}×)`,
    '',
  ].join(' | ').trim();
}

/** Times faster than real time: whole numbers, one decimal below ten. */
function speed(x: number): string {
  return x < 10 ? x.toFixed(1) : Math.round(x).toString();
}

function typeLine(r: Row): string {
  const avg = (t: string) => r.reports.reduce((a, x) => a + (x.messagesByType[t] ?? 0), 0) / r.reports.length;
  return `| ${r.n} | ${r.scenario} | ${r.config} | ${TYPES.map((t) => avg(t).toFixed(2)).join(' | ')} |`;
}

if (!values.load) {
  run(30, 'processes', seeds);
  for (const n of sizes) {
    for (const name of Object.keys(SCENARIOS)) {
      if (name === 'processes' || (n !== sizes[0] && !large.has(name))) continue;
      run(n, name, n > 1000 ? bigSeeds : seeds);
    }
  }
  if (values.save) writeFileSync(values.save, JSON.stringify(rows));
}

const find = (n: number, scenario: string, config: string) => rows.find((r) => r.n === n && r.scenario === scenario && r.config === config);
const perRun = (r: Row, f: (x: SimReport) => number) => r.reports.reduce((a, x) => a + f(x), 0) / r.reports.length;

/** The goal's three questions answered over all sizes, from the rows: met or not, and why. */
function verdict(): string[] {
  const lan = sizes.map((n) => ({ n, pk: find(n, 'lan', 'pulsekeeper'), ml: find(n, 'lan', 'memberlist-lan') })).filter((x) => x.pk && x.ml);
  if (lan.length === 0) return LOAD_SCENARIOS.flatMap(loadLine);
  const timed = lan.filter((x) => x.pk!.agree.count > 0 && x.ml!.agree.count > 0);
  const speedups = timed.map((x) => x.ml!.agree.p50 / x.pk!.agree.p50);
  const p99s = timed.map((x) => x.ml!.agree.p99 / x.pk!.agree.p99);
  const worse = lan.filter((x) => x.pk!.falsePerHour > x.ml!.falsePerHour);
  const span = `${timed[0]?.n.toLocaleString('en')} to ${timed[timed.length - 1]?.n.toLocaleString('en')} members`;
  const fast = Math.min(...speedups) >= 2;
  return [
    `- Detection on lan, ${span}: every member agrees on a crash ${Math.min(...speedups).toFixed(1)}× to ${Math.max(...speedups).toFixed(1)}× faster than with memberlist's defaults at p50 (${Math.min(...p99s).toFixed(1)}× to ${Math.max(...p99s).toFixed(1)}× at p99): ${fast ? 'met, at least 2× at p50 at every size' : 'not met, below 2× at p50 at some size'}.`,
    `- False declarations on lan: ${worse.length === 0 ? 'met, no more than memberlist at any size' : `not met, more than memberlist at ${worse.map((x) => x.n).join(', ')} members`}.`,
    ...LOAD_SCENARIOS.flatMap(loadLine),
  ];
}

/** Load on one scenario (pulsekeeper's defaults), smallest to largest size: flat or not, and what grew. */
function loadLine(scenario: string): string[] {
  const rs = sizes.map((n) => find(n, scenario, 'pulsekeeper')).filter((r): r is Row => r !== undefined);
  if (rs.length < 2) return [];
  const [a, b] = [rs[0], rs[rs.length - 1]];
  const growth = b.msgs / a.msgs;
  const [mla, mlb] = [find(a.n, scenario, 'memberlist-lan'), find(b.n, scenario, 'memberlist-lan')];
  const ml = mla && mlb ? `; memberlist ${mla.msgs.toFixed(1)} → ${mlb.msgs.toFixed(1)}, ×${(mlb.msgs / mla.msgs).toFixed(2)}` : '';
  const [ca, cb] = [perRun(a, (x) => x.crashed), perRun(b, (x) => x.crashed)];
  const count = (c: number) => `${c} crash${c === 1 ? '' : 'es'}`;
  const crashes = ca === cb ? (ca === 0 ? 'no crashes' : `${count(ca)} per run at every size`) : `${count(ca)} per run at ${a.n.toLocaleString('en')} members, ${cb} at ${b.n.toLocaleString('en')}`;
  // The message type whose rate grew the most explains the growth.
  const grew = TYPES.map((t) => ({ t, from: perRun(a, (x) => x.messagesByType[t] ?? 0), to: perRun(b, (x) => x.messagesByType[t] ?? 0) })).sort((x, y) => y.to - y.from - (x.to - x.from))[0];
  const why =
    growth <= FLAT
      ? `met, within ×${FLAT}`
      : `not met, more than ×${FLAT}: most of the growth is ${grew.t} (${grew.from.toFixed(2)} → ${grew.to.toFixed(2)})${cb > ca ? ', news of deaths that grow in number with the cluster and that every member must hear' : ''}`;
  return [`- Load on ${scenario} (${crashes}): ${a.msgs.toFixed(1)} → ${b.msgs.toFixed(1)} messages per member per second from ${a.n.toLocaleString('en')} to ${b.n.toLocaleString('en')} members, ×${growth.toFixed(2)}${ml}: ${why}.`];
}

/** Per size, the goal's three questions on the lan scenario (load also on lan-fixed and quiet). */
function goalLines(): string[] {
  const out: string[] = [];
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(1) : '–');
  const msgs = (n: number, scenario: string) => {
    const [pk, ml] = [find(n, scenario, 'pulsekeeper'), find(n, scenario, 'memberlist-lan')];
    return pk ? `${pk.msgs.toFixed(1)} vs ${ml ? ml.msgs.toFixed(1) : '–'}` : '–';
  };
  for (const n of sizes) {
    const pk = find(n, 'lan', 'pulsekeeper');
    const ml = find(n, 'lan', 'memberlist-lan');
    if (!pk && !find(n, 'lan-fixed', 'pulsekeeper') && !find(n, 'quiet', 'pulsekeeper')) continue;
    const agree = pk && ml ? `${ratio(ml.agree.p50, pk.agree.p50)}× / ${ratio(ml.agree.p99, pk.agree.p99)}×` : '–';
    const falses = pk && ml ? `${pk.falsePerHour.toFixed(2)} vs ${ml.falsePerHour.toFixed(2)}` : '–';
    out.push(`| ${n} | ${agree} | ${falses} | ${msgs(n, 'lan')} | ${msgs(n, 'lan-fixed')} | ${msgs(n, 'quiet')} |`);
  }
  return out;
}

/** Gossip per member per second on one scenario at the smallest and largest size, for the prose. */
function gossipGrowth(scenario: string, config: string): string {
  const rs = sizes.map((n) => find(n, scenario, config)).filter((r): r is Row => r !== undefined);
  if (rs.length < 2) return '–';
  const g = (r: Row) => perRun(r, (x) => x.messagesByType.gossip ?? 0).toFixed(2);
  return `${g(rs[0])} → ${g(rs[rs.length - 1])}`;
}

const section = [
  '<!-- membership:begin -->',
  '## Gossip membership: pulsekeeper defaults vs memberlist LAN defaults (simulated)',
  '',
  `Command: \`npm run sim:report -- --sizes ${values.sizes} --seeds ${values.seeds} --big-seeds ${values['big-seeds']} --large-scenarios ${values['large-scenarios']}\` (${new Date().toISOString().slice(0, 10)}).`,
  'The same SWIM/Lifeguard core (src/membership/core) runs in the deterministic simulator (src/sim), every member a full',
  "node in one process, with two configurations: pulsekeeper's defaults and HashiCorp memberlist's DefaultLANConfig (probe",
  '1 s, probe timeout 500 ms, 3 indirect checks, retransmit mult 4, suspicion mult 4, max timeout mult 6, gossip 200 ms to',
  '3 members, push-pull 30 s, suspicions gossiped and confirmed as in Lifeguard). Both fill a message with up to 1,200',
  'bytes of news, as memberlist fills a 1,400-byte datagram.',
  "pulsekeeper's defaults (src/membership/core/types.ts) probe every 500 ms, keep a suspicion between accuser and accused",
  '(the accused hears it at once and answers the accuser alone; only deaths are gossiped), declare a member dead 2.5 s',
  'after suspecting it and only if a last-chance probe (direct, indirect, TCP) goes unanswered, and gossip every 100 ms.',
  'Members start converged; one-way latency 0.2 ms + exponential(0.5 ms) unless a scenario says otherwise; members are',
  'named like 10.0.1.2:7946, so bytes are those of the wire format (unencrypted, without IP/UDP headers). Scenarios',
  '(seeds in the table):',
  '',
  ...Object.entries(SCENARIOS).map(([name, s]) => `- **${name}**: ${s.description}; ${s.durationMs / 1000} s simulated.`),
  '',
  'Times are seconds as p50 / p99 / max over the seeds (p50 is the median of the per-seed medians). "all agree" is from',
  'the crash until every running member (paused ones too) has declared the member failed. False declarations count',
  '`failed` events, at any member, about members that had not crashed (paused or partitioned ones), per member-hour; in',
  'brackets, how many members were falsely declared failed by anyone. Msgs and bytes are sent per member per second.',
  'Gaps: pairs of running members at the end where one does not count the other alive. CPU: seconds of CPU time per run',
  '(the machine is shared, so wall time says little), and how many times faster than real time that is.',
  '',
  '| members | scenario | config | seeds | crashes | first suspicion (s) | first failed (s) | all agree (s) | undetected | false / member-hour (members) | msgs / member / s | bytes / member / s | update reaches all (s) | gaps | CPU s (speed) |',
  '|---:|---|---|---|---:|---|---|---|---:|---:|---:|---:|---|---:|---|',
  ...rows.map(mainLine),
  '',
  'Messages per member per second by type (tcp-ping: the TCP fallback and last-chance probes; gossip: news sent on the',
  'gossip timer, besides what rides on pings and acks; push-pull: full-state exchanges, including reconnection):',
  '',
  `| members | scenario | config | ${TYPES.join(' | ')} |`,
  `|---:|---|---|${TYPES.map(() => '---:').join('|')}|`,
  ...rows.filter((r) => LOAD_SCENARIOS.includes(r.scenario)).map(typeLine),
  '',
  "The goal, per size: how many times faster every member agrees on a crash (memberlist's all-agree time over",
  "pulsekeeper's, p50 / p99), false declarations per member-hour, and messages per member per second on lan, lan-fixed",
  'and quiet (pulsekeeper vs memberlist). Load counts as independent of cluster size when messages per member per second',
  `at the largest size are within ×${FLAT} of those at the smallest (SWIM's retransmissions grow as log n, so not exactly flat):`,
  '',
  '| members | all agree, times faster (p50 / p99) | false / member-hour on lan | msgs / member / s on lan | msgs / member / s on lan-fixed | msgs / member / s on quiet |',
  '|---:|---|---|---|---|---|',
  ...goalLines(),
  '',
  ...verdict(),
  '',
  'Why the figures look like this. An earlier version gossiped suspicions as memberlist does: every 2 s pause set off up',
  'to five cluster-wide floods (the suspicion, up to three confirmations, the refutation), the number of pausing members',
  'grows with the cluster, and now and then a member missed every copy of a refutation and declared the paused member',
  "dead. memberlist's rows still show it: its gossip per member per second goes",
  `${gossipGrowth('lan', 'memberlist-lan')} on lan from the smallest to the largest size, and ${gossipGrowth('lan-fixed', 'memberlist-lan')} on lan-fixed, where of the faults only`,
  'the pauses grow in number.',
  'Now a suspicion stays between accuser and accused, a member is declared dead only after a last-chance probe it does',
  'not answer, stale accusations are not refuted again, confirmations beyond the expected number are not passed on, and',
  'news fills a datagram by bytes. What still grows on lan is the gossip of deaths: the scenario crashes 1% of the',
  'members, so deaths per second grow with the cluster and every member must hear each one (each member relays it',
  `retransmitMult × ceil(log10(n + 1)) times): pulsekeeper's gossip goes ${gossipGrowth('lan', 'pulsekeeper')} on lan. lan-fixed has lan's loss and`,
  `pauses but the same 10 crashes at every size, and there it goes ${gossipGrowth('lan-fixed', 'pulsekeeper')}. Probes (ping, ack) cost the same at every`,
  'size.',
  '',
  "The memberlist rows are this project's core run with memberlist's parameters and its way of gossiping suspicions, not",
  "memberlist's code; details such as gossiping to recently dead members are not modelled. Sizes above 1,000 members run",
  `seeds ${bigSeeds.join(',')} per configuration (a run costs minutes of CPU); the smaller sizes seeds ${seeds.join(',')}.`,
  '<!-- membership:end -->',
].join('\n');

const file = 'BENCHMARKS.md';
let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
const re = /<!-- membership:begin -->[\s\S]*<!-- membership:end -->/;
text = re.test(text) ? text.replace(re, () => section) : text.trimEnd() + '\n\n' + section + '\n';
writeFileSync(file, text);
console.log(`wrote ${file}`);
