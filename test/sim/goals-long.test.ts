/**
 * The goal at 1,000 members, on the lan scenario (three seeds): every member agrees
 * on a crash at least twice as fast as with memberlist's LAN defaults, with no more
 * false declarations, and load per member on the quiet scenario no higher than at
 * 100 members. A few minutes of simulation: runs with `npm run test:long`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, simulate, type SimReport } from '../../src/sim/simulator.js';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS, type SwimConfig } from '../../src/membership/core/types.js';

const long = process.env.PULSEKEEPER_LONG === '1';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const runs = (n: number, name: string, cfg: SwimConfig, seeds: number[]): SimReport[] => seeds.map((seed) => simulate(n, { name, ...SCENARIOS[name] }, cfg, name, seed));

test('1,000 members: twice as fast as memberlist, no more false declarations, load flat', { skip: !long && 'long run (npm run test:long)', timeout: 3_600_000 }, () => {
  const pk = runs(1000, 'lan', PULSEKEEPER_DEFAULTS, [1, 2, 3]);
  const ml = runs(1000, 'lan', MEMBERLIST_LAN, [1, 2, 3]);
  for (const r of [...pk, ...ml]) assert.equal(r.undetected, 0, `${r.config} seed ${r.seed}`);
  const agree = (rs: SimReport[]) => median(rs.map((r) => r.allAgreeMs.p50));
  assert.ok(agree(pk) * 2 <= agree(ml), `all agree: pulsekeeper ${agree(pk)} ms, memberlist ${agree(ml)} ms`);
  const falseOf = (rs: SimReport[]) => rs.reduce((a, r) => a + r.falseFailures, 0);
  assert.ok(falseOf(pk) <= falseOf(ml), `false declarations: pulsekeeper ${falseOf(pk)}, memberlist ${falseOf(ml)}`);
  const [small] = runs(100, 'quiet', PULSEKEEPER_DEFAULTS, [1]);
  const [big] = runs(1000, 'quiet', PULSEKEEPER_DEFAULTS, [1]);
  assert.ok(big.messagesPerMemberSecond <= small.messagesPerMemberSecond * 1.1, `quiet: ${small.messagesPerMemberSecond} at 100, ${big.messagesPerMemberSecond} at 1,000`);
  assert.ok(big.bytesPerMemberSecond <= small.bytesPerMemberSecond * 1.5, `quiet bytes: ${small.bytesPerMemberSecond} at 100, ${big.bytesPerMemberSecond} at 1,000`);
});
