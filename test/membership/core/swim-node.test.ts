import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwimNode } from '../../../src/membership/core/swim-node.js';
import { PULSEKEEPER_DEFAULTS, type Gossip, type Message, type Output, type SwimConfig } from '../../../src/membership/core/types.js';
import { rng } from '../../../src/sim/simulator.js';

const CFG: SwimConfig = { ...PULSEKEEPER_DEFAULTS, pushPullIntervalMs: 0, reconnectIntervalMs: 0 };

/** A node that already knows the given peers (alive, incarnation 0). */
function node(id: string, peers: string[], cfg = CFG, incarnation = 0): SwimNode {
  const n = new SwimNode(cfg, { id, address: id, incarnation }, rng(id.charCodeAt(0) * 97 + 13));
  n.receive(0, id, {
    type: 'push-pull',
    from: id,
    join: false,
    reply: true,
    members: peers.map((p) => ({ id: p, address: p, incarnation: 0, state: 'alive', meta: new Uint8Array(0) })),
  });
  n.start(0);
  return n;
}

const gossipOf = (out: Output): Gossip[] => out.send.flatMap((s) => ('gossip' in s.msg ? s.msg.gossip : []));
const types = (out: Output) => out.events.map((e) => `${e.type}:${e.member.id}`);

test('a suspected member refutes with a higher incarnation', () => {
  const a = node('a', ['b', 'c']);
  const out = a.receive(10, 'b', { type: 'gossip', from: 'b', gossip: [{ kind: 'suspect', id: 'a', incarnation: 0, from: 'b' }] });
  assert.equal(a.incarnation, 1);
  assert.equal(a.localHealth, 1, 'being suspected counts against local health');
  const later = a.tick(a.nextTimer());
  const alive = gossipOf({ send: [...out.send, ...later.send], events: [] }).find((g) => g.kind === 'alive' && g.id === 'a');
  assert.equal(alive?.incarnation, 1);
});

test('an unanswered member is suspected, asked about indirectly, then declared failed', () => {
  const b = node('b', ['a', 'c', 'd', 'e']);
  let now = 0;
  const sent: Message[] = [];
  const events: string[] = [];
  // Nobody ever answers b.
  while (now < 30_000 && !events.some((e) => e.startsWith('failed'))) {
    now = b.nextTimer();
    const out = b.tick(now);
    sent.push(...out.send.map((s) => s.msg));
    events.push(...types(out));
  }
  assert.ok(sent.some((m) => m.type === 'ping-req'), 'indirect probes were sent');
  const suspect = events.find((e) => e.startsWith('suspect'));
  assert.ok(suspect);
  assert.ok(events.find((e) => e.startsWith('failed')) === suspect.replace('suspect', 'failed'));
  assert.ok(b.localHealth > 0, 'missing nacks raise local health');
});

test('independent confirmations shorten the suspicion timeout (Lifeguard)', () => {
  const timeToFail = (confirmers: string[]) => {
    const n = node('n', ['x', 'c1', 'c2', 'c3', 'c4']);
    n.receive(100, 'c1', { type: 'gossip', from: 'c1', gossip: confirmers.map((c) => ({ kind: 'suspect', id: 'x', incarnation: 0, from: c }) as Gossip) });
    let now = 100;
    for (;;) {
      now = n.nextTimer();
      const out = n.tick(now);
      if (types(out).includes('failed:x')) return now;
      // Keep the other members answering so only x is suspected.
      for (const s of out.send) if (s.msg.type === 'ping' && s.msg.target !== 'x') n.receive(now, s.to, { type: 'ack', seq: s.msg.seq, from: s.to, gossip: [] });
    }
  };
  const one = timeToFail(['c1']);
  const many = timeToFail(['c1', 'c2', 'c3', 'c4']);
  assert.ok(many < one, `${many} with four confirmations vs ${one} with one`);
  assert.ok(many - 100 >= CFG.minSuspicionTimeoutMs);
});

test('a restarted member rejoins with a higher incarnation and is not declared dead twice', () => {
  const a = node('a', ['r', 'c']);
  const died = a.receive(10, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'dead', id: 'r', incarnation: 0, from: 'c' }] });
  assert.deepEqual(types(died), ['failed:r']);
  assert.deepEqual(types(a.receive(20, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'dead', id: 'r', incarnation: 0, from: 'c' }] })), []);
  // Stale alive news of the dead member is ignored...
  assert.deepEqual(types(a.receive(30, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'alive', id: 'r', incarnation: 0, address: 'r' }] })), []);
  // ...its restart under a higher incarnation is a join.
  assert.deepEqual(types(a.receive(40, 'r', { type: 'gossip', from: 'r', gossip: [{ kind: 'alive', id: 'r', incarnation: 5000, address: 'r' }] })), ['join:r']);
  // A suspicion refuted in time ends in alive, never failed.
  a.receive(50, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'suspect', id: 'r', incarnation: 5000, from: 'c' }] });
  assert.deepEqual(types(a.receive(60, 'r', { type: 'gossip', from: 'r', gossip: [{ kind: 'alive', id: 'r', incarnation: 5001, address: 'r' }] })), ['alive:r']);
});

test('tombstones expire', () => {
  const a = node('a', ['d', 'c']);
  a.receive(10, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'dead', id: 'd', incarnation: 0, from: 'c' }] });
  assert.equal(a.memberState('d')?.state, 'dead');
  let now = 10;
  while (now < 10 + CFG.tombstoneMs + 1000) {
    now = a.nextTimer();
    for (const s of a.tick(now).send) if (s.msg.type === 'ping') a.receive(now, s.to, { type: 'ack', seq: s.msg.seq, from: s.to, gossip: [] });
  }
  assert.equal(a.memberState('d'), undefined);
});

test('a broadcast is piggybacked retransmitMult * ceil(log10(n + 1)) times, then dropped', () => {
  const peers = Array.from({ length: 20 }, (_, i) => `p${i}`);
  const a = node('a', peers);
  a.receive(1, 'p0', { type: 'gossip', from: 'p0', gossip: [{ kind: 'alive', id: 'p1', incarnation: 3, address: 'p1' }] });
  let carried = 0;
  for (let i = 0; i < 50; i++) {
    const out = a.receive(2, 'p2', { type: 'ping', seq: i, from: 'p2', target: 'a', gossip: [] });
    carried += gossipOf(out).filter((g) => g.id === 'p1' && g.incarnation === 3).length;
  }
  assert.equal(carried, CFG.retransmitMult * Math.ceil(Math.log10(a.size + 1)));
});

test('metadata updates and graceful leave reach the others as updated and left', () => {
  const a = node('a', ['b']);
  const b = node('b', ['a']);
  const deliver = (from: SwimNode, to: SwimNode, out: Output) => {
    const events: string[] = [];
    for (const s of out.send) if (s.to === to.id) events.push(...types(to.receive(5, from.id, s.msg)));
    return events;
  };
  const upd = a.updateMeta(1, Uint8Array.from([1, 2]));
  const ev = deliver(a, b, { send: [...upd.send, ...a.tick(a.nextTimer()).send], events: [] });
  assert.ok(ev.includes('updated:a'), ev.join());
  assert.deepEqual([...b.liveMembers().find((m) => m.id === 'a')!.meta], [1, 2]);
  const left = deliver(a, b, a.leave(10));
  assert.deepEqual(left, ['left:a']);
});
