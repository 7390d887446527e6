/**
 * Gossip members in one process over real loopback sockets: join through a seed,
 * a member that vanishes is declared failed, leave is reported as left, metadata
 * updates reach the others, and a member with the wrong key cannot join.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GossipMembership } from '../../src/membership/gossip.js';
import { Keyring } from '../../src/membership/keyring.js';
import type { MembershipEvent } from '../../src/membership/events.js';

const started: GossipMembership[] = [];
after(async () => {
  await Promise.all(started.map((m) => m.close()));
});

async function member(id: string, seeds: string[] = [], keyring?: Keyring): Promise<GossipMembership> {
  const m = await GossipMembership.start({ bind: '127.0.0.1:0', id, seeds, keyring });
  started.push(m);
  return m;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ids = (m: GossipMembership) => m.members().map((x) => x.id).sort().join(',');

test('join, failure, update and leave over loopback', async () => {
  const a = await member('a');
  const b = await member('b', [a.address]);
  const c = await member('c', [a.address]);
  const d = await member('d', [b.address]);
  const events: MembershipEvent[] = [];
  a.on('change', (e) => events.push(e));
  await until(() => [a, b, c, d].every((m) => ids(m) === 'a,b,c,d'), 10_000, 'four members to see each other');

  d.updateMeta(Buffer.from('v2'));
  await until(() => Buffer.from(a.members().find((m) => m.id === 'd')!.meta).toString() === 'v2', 5_000, 'the update');
  assert.ok(events.some((e) => e.type === 'updated' && e.member.id === 'd'));

  // c vanishes without a word (as a crashed process would).
  await c.close();
  await until(() => [a, b, d].every((m) => ids(m) === 'a,b,d'), 20_000, 'c to be declared failed');
  assert.ok(events.some((e) => e.type === 'suspect' && e.member.id === 'c'));
  assert.ok(events.some((e) => e.type === 'failed' && e.member.id === 'c'));

  await d.leave(200);
  await until(() => [a, b].every((m) => ids(m) === 'a,b'), 5_000, 'd to leave');
  assert.ok(events.some((e) => e.type === 'left' && e.member.id === 'd'));
  assert.ok(!events.some((e) => e.type === 'failed' && e.member.id === 'd'), 'a member that left is not reported failed');
});

test('a member without the cluster key cannot join; its packets are dropped and counted', async () => {
  const key = Keyring.generateKey();
  const a = await member('ka', [], new Keyring([key]));
  const b = await member('kb', [a.address], new Keyring([key]));
  const stranger = await member('stranger', [a.address], new Keyring([Keyring.generateKey()]));
  await until(() => ids(a) === 'ka,kb', 10_000, 'the keyed members to join');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(ids(a), 'ka,kb');
  assert.equal(ids(stranger), 'stranger');
  assert.ok(a.stats.droppedAuth > 0);
  void b;
});

test('createMembership picks gossip or a coordinated view by configuration', async () => {
  const { createMembership } = await import('../../src/membership/index.js');
  const g = await createMembership({ kind: 'gossip', bind: '127.0.0.1:0', id: 'solo' });
  started.push(g as GossipMembership);
  assert.deepEqual(g.members().map((m) => m.id), ['solo']);
  const fake = { members: () => [], on() { return this; }, off() { return this; }, close: async () => {} };
  assert.equal(await createMembership({ kind: 'coordinated', create: async () => fake }), fake);
});
