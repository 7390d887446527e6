/**
 * Gossip members in one process over real loopback sockets: join through a seed,
 * a member that vanishes is declared failed, leave is reported as left, metadata
 * updates reach the others, a member with the wrong key cannot join, and junk
 * or hostile packets are dropped and counted without harm.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GossipMembership } from '../../src/membership/gossip.js';
import { Keyring } from '../../src/membership/keyring.js';
import type { MembershipEvent, MembershipGroup } from '../../src/membership/events.js';
import type { GroupMembership } from '../../src/recipes/group.js';
import { encodePacket } from '../../src/membership/packet.js';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

  await d.update(Buffer.from("v2"));
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

test('keys rotate on running members by rewriting their key files; the old key then no longer gets in', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-keys-'));
  const [oldKey, newKey] = [Keyring.generateKey(), Keyring.generateKey()];
  const files = ['ra', 'rb'].map((n) => join(dir, n));
  const write = (...keys: Buffer[]) => {
    for (const f of files) writeFileSync(f, keys.map((k) => k.toString('base64')).join('\n') + '\n');
  };
  write(oldKey);
  const rings = files.map((f) => Keyring.fromFile(f));
  const a = await member('ra', [], rings[0]);
  const b = await member('rb', [a.address], rings[1]);
  await until(() => ids(a) === 'ra,rb' && ids(b) === 'ra,rb', 10_000, 'the keyed members to join');
  // Add the new key everywhere, make it primary, remove the old.
  for (const keys of [[oldKey, newKey], [newKey, oldKey], [newKey]]) {
    write(...keys);
    rings.forEach((r, k) => r.reload(files[k]));
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(ids(a), 'ra,rb');
  }
  const late = await member('rc', [a.address], new Keyring([newKey]));
  const stale = await member('rd', [a.address], new Keyring([oldKey]));
  await until(() => ids(a) === 'ra,rb,rc', 10_000, 'a member with the new key to join');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(ids(a), 'ra,rb,rc', 'the old key no longer gets in');
  assert.equal(ids(stale), 'rd');
  void late;
});

test('createMembership picks gossip or a coordinated view by configuration', async () => {
  // The group-membership recipe and gossip membership have the same shape (checked by the compiler).
  const sameShape: (g: GroupMembership) => MembershipGroup = (g) => g;
  void sameShape;
  const { createMembership } = await import('../../src/membership/index.js');
  const g = await createMembership({ kind: 'gossip', bind: '127.0.0.1:0', id: 'solo' });
  started.push(g as GossipMembership);
  assert.deepEqual(g.members().map((m) => m.id), ['solo']);
  const fake = { members: () => [], on() { return this; }, off() { return this; }, close: async () => {}, update: async () => {}, leave: async () => {} };
  assert.equal(await createMembership({ kind: 'coordinated', create: async () => fake }), fake);
});

test('junk datagrams, bad frames and unreachable addresses are dropped and counted; the member carries on', async () => {
  const a = await member('ja');
  const b = await member('jb', [a.address]);
  await until(() => ids(a) === 'ja,jb', 10_000, 'the two members to join');
  const [host, port] = [a.address.slice(0, a.address.lastIndexOf(':')), Number(a.address.slice(a.address.lastIndexOf(':') + 1))];
  const sock = createSocket('udp4');
  const send = (p: Buffer) => new Promise<void>((r) => sock.send(p, port, host, () => r()));
  for (let i = 0; i < 200; i++) await send(Buffer.from(Array.from({ length: 1 + ((i * 37) % 90) }, (_, k) => (i * 31 + k * 7) & 0xff)));
  // News of a member at an address that is not host:port: it joins, cannot be reached, and is declared failed.
  await send(encodePacket('127.0.0.1:1', [{ type: 'gossip', from: 'x', gossip: [{ kind: 'alive', id: 'nowhere', incarnation: 1, address: 'not-an-address' }] }]));
  // A TCP stream whose frame length is absurd.
  await new Promise<void>((r) => {
    const c = connect({ host, port }, () => c.end(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])));
    c.on('close', () => r());
    c.on('error', () => r());
  });
  sock.close();
  await until(() => a.stats.droppedAddress > 0 && !ids(a).includes('nowhere'), 20_000, 'the unreachable member to be declared failed');
  assert.ok(a.stats.droppedParse >= 150, `${a.stats.droppedParse} junk packets counted`);
  assert.equal(ids(a), 'ja,jb');
  await b.update(Buffer.from('still here'));
  await until(() => Buffer.from(a.members().find((m) => m.id === 'jb')!.meta).toString() === 'still here', 5_000, 'a later update');
});

test('bad options are refused with a clear error', async () => {
  await assert.rejects(GossipMembership.start({ bind: 'localhost' }), /HOST:PORT/);
  await assert.rejects(GossipMembership.start({ bind: '127.0.0.1:0', seeds: ['nope'] }), /seed/);
  await assert.rejects(GossipMembership.start({ bind: '127.0.0.1:0', meta: new Uint8Array(4096) }), /metadata/);
  const m = await member('meta');
  await assert.rejects(m.update(new Uint8Array(4096)), /metadata/);
});
