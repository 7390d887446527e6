import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwimNode } from '../../../src/membership/core/swim-node.js';
import { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS, type Gossip, type Message, type Output, type SwimConfig } from '../../../src/membership/core/types.js';
import { rng } from '../../../src/sim/simulator.js';

const CFG: SwimConfig = { ...PULSEKEEPER_DEFAULTS, pushPullIntervalMs: 0, reconnectIntervalMs: 0 };
/** Suspicions gossiped and confirmed as in Lifeguard: memberlist's way. */
const GOSSIPED: SwimConfig = { ...MEMBERLIST_LAN, pushPullIntervalMs: 0 };

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
    const n = node('n', ['x', 'c1', 'c2', 'c3', 'c4'], GOSSIPED);
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
  assert.ok(many - 100 >= GOSSIPED.minSuspicionTimeoutMs);
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
  a.receive(1, 'p0', { type: 'gossip', from: 'p0', gossip: [{ kind: 'alive', id: 'p1', incarnation: 3, address: 'p1', meta: Uint8Array.from([7]) }] });
  let carried = 0;
  for (let i = 0; i < 50; i++) {
    const out = a.receive(2, 'p2', { type: 'ping', seq: i, from: 'p2', target: 'a', gossip: [] });
    carried += gossipOf(out).filter((g) => g.id === 'p1' && g.incarnation === 3).length;
  }
  assert.equal(carried, CFG.retransmitMult * Math.ceil(Math.log10(a.size + 1)));
});

test('with private suspicions a death is gossiped retransmit-limit times, then rides as many pings and acks again', () => {
  // No probes: the ticks send only what the gossip timer sends.
  const carried = (config: SwimConfig) => {
    const cfg = { ...config, probeIntervalMs: 1e9 };
    const peers = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const a = node('a', peers, cfg);
    const dead = (g: Gossip) => g.kind === 'dead' && g.id === 'p1';
    let gossiped = gossipOf(a.receive(1, 'p0', { type: 'gossip', from: 'p0', gossip: [{ kind: 'dead', id: 'p1', incarnation: 0, from: 'p0' }] })).filter(dead).length;
    for (let now = 1; now < 1000; now += 10) {
      gossiped += a.tick(now).send.filter((s) => s.msg.type === 'gossip' && s.msg.gossip.some(dead)).length;
    }
    let acked = 0;
    for (let i = 0; i < 100; i++) acked += gossipOf(a.receive(1000, 'p2', { type: 'ping', seq: i, from: 'p2', target: 'a', gossip: [] })).filter(dead).length;
    return { gossiped, acked, limit: cfg.retransmitMult * Math.ceil(Math.log10(a.size + 1)) };
  };
  const own = carried(CFG);
  assert.equal(own.gossiped, own.limit);
  assert.equal(own.acked, own.limit, 'a second round on acks');
  const memberlist = carried(GOSSIPED);
  assert.equal(memberlist.gossiped, memberlist.limit);
  assert.equal(memberlist.acked, 0, 'gossiped suspicions: one round, as in memberlist');
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

test('a ping that came over TCP (the fallback probe) is answered over TCP', () => {
  const a = node('a', ['b']);
  const viaTcp = a.receive(5, 'b', { type: 'ping', seq: 3, from: 'b', target: 'a', gossip: [] }, 'tcp');
  assert.deepEqual(viaTcp.send.map((s) => [s.msg.type, s.transport]), [['ack', 'tcp']]);
  const viaUdp = a.receive(6, 'b', { type: 'ping', seq: 4, from: 'b', target: 'a', gossip: [] });
  assert.deepEqual(viaUdp.send.map((s) => [s.msg.type, s.transport]), [['ack', 'udp']]);
});

test('the next ping to a suspected member carries the suspicion (buddy system)', () => {
  const a = node('a', ['x']);
  a.receive(1, 'b', { type: 'gossip', from: 'b', gossip: [{ kind: 'suspect', id: 'x', incarnation: 0, from: 'b' }] });
  let ping: Message | undefined;
  for (let now = 1; !ping; ) {
    now = a.nextTimer();
    ping = a.tick(now).send.find((s) => s.msg.type === 'ping')?.msg;
  }
  assert.equal(ping.type === 'ping' && ping.gossip[0]?.kind, 'suspect');
  assert.equal(ping.type === 'ping' && ping.gossip[0]?.id, 'x');
});

test('confirmations beyond the expected number are neither counted nor passed on', () => {
  const peers = ['x', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
  const a = node('a', peers, GOSSIPED);
  const suspect = (from: string, now: number) => gossipOf(a.receive(now, from, { type: 'gossip', from, gossip: [{ kind: 'suspect', id: 'x', incarnation: 0, from }] }));
  suspect('c1', 1);
  const passedOn = (from: string, now: number) => {
    suspect(from, now);
    // Whatever was queued leaves with the next gossip round.
    return gossipOf(a.tick(a.nextTimer())).some((g) => g.kind === 'suspect' && g.from === from);
  };
  for (let k = 2; k <= GOSSIPED.suspicionConfirmations + 1; k++) assert.ok(passedOn(`c${k}`, k), `confirmation ${k} is passed on`);
  assert.ok(!passedOn('c6', 10), 'one too many is not');
});

test('a member that knows nobody asks its seeds again until one answers', () => {
  const a = new SwimNode(CFG, { id: 'a', address: 'a' }, rng(3));
  const joins = (out: Output) => out.send.filter((s) => s.msg.type === 'push-pull' && s.msg.join).map((s) => s.to);
  assert.deepEqual(joins(a.start(0, ['s1', 's2'])), ['s1', 's2']);
  let retried: string[] = [];
  let now = 0;
  while (retried.length === 0 && now < 10_000) retried = joins(a.tick((now = a.nextTimer())));
  assert.deepEqual(retried, ['s1', 's2']);
  assert.ok(now >= CFG.joinRetryMs);
  // Once a seed answers, no more retries.
  a.receive(now, 's1', { type: 'push-pull', from: 's1', join: false, reply: true, members: [{ id: 's1', address: 's1', incarnation: 0, state: 'alive', meta: new Uint8Array(0) }] });
  for (let k = 0; k < 50; k++) {
    now = a.nextTimer();
    const out = a.tick(now);
    assert.deepEqual(joins(out), []);
    for (const s of out.send) if (s.msg.type === 'ping') a.receive(now, 's1', { type: 'ack', seq: s.msg.seq, from: 's1', gossip: [] });
  }
});

test('a member stalled past its own deadlines reads the refutation before declaring anyone dead', () => {
  const run = (cfg: SwimConfig) => {
    const a = node('a', ['x', 'c'], cfg);
    a.receive(1, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'suspect', id: 'x', incarnation: 0, from: 'c' }] });
    // Stalled (SIGSTOP) for 10 s, long past the suspicion deadline; then the timer fires first, as in Node's event loop.
    const events = types(a.tick(10_000));
    events.push(...types(a.receive(10_001, 'x', { type: 'gossip', from: 'x', gossip: [{ kind: 'alive', id: 'x', incarnation: 1, address: 'x' }] })));
    return events;
  };
  // (The last-chance probe would save x too; it is off here to see the compensation alone.)
  assert.deepEqual(run({ ...CFG, probeBeforeDead: false }), ['alive:x']);
  assert.deepEqual(run({ ...CFG, probeBeforeDead: false, selfStallMs: 0 }), ['failed:x', 'join:x'], 'without the compensation the stalled member declares x dead first');
});

test('a member believed dead is pinged now and then, and a push-pull follows its answer', () => {
  const a = node('a', ['x', 'c'], { ...CFG, reconnectIntervalMs: 1000 });
  a.receive(1, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'dead', id: 'x', incarnation: 0, from: 'c' }] });
  let ping: Message | undefined;
  let now = 1;
  while (!ping && now < 5000) {
    now = a.nextTimer();
    for (const s of a.tick(now).send) {
      if (s.to === 'x' && s.msg.type === 'ping') ping = s.msg;
      else if (s.msg.type === 'ping') a.receive(now, s.to, { type: 'ack', seq: s.msg.seq, from: s.to, gossip: [] });
    }
  }
  assert.ok(ping && ping.type === 'ping' && ping.target === 'x', 'x was pinged');
  const answer = a.receive(now + 1, 'x', { type: 'ack', seq: ping.seq, from: 'x', gossip: [] });
  assert.deepEqual(answer.send.map((s) => [s.to, s.msg.type, s.transport]), [['x', 'push-pull', 'tcp']]);
});

test('news with an impossible incarnation or no address for a new member is ignored', () => {
  const a = node('a', ['b']);
  const out = a.receive(1, 'b', {
    type: 'gossip',
    from: 'b',
    gossip: [
      { kind: 'alive', id: 'n1', incarnation: 2 ** 40, address: 'n1' },
      { kind: 'alive', id: 'n2', incarnation: -1, address: 'n2' },
      { kind: 'alive', id: 'n3', incarnation: 1 },
      { kind: 'suspect', id: 'b', incarnation: 1.5, from: 'b' },
    ],
  });
  assert.deepEqual(types(out), []);
  assert.equal(a.size, 2);
});

test('a node that owns its id table reuses the slots of forgotten members', () => {
  const a = node('a', ['c']);
  let now = 1;
  const answer = (out: Output) => {
    for (const s of out.send) if (s.msg.type === 'ping' && s.to === 'c') a.receive(now, 'c', { type: 'ack', seq: s.msg.seq, from: 'c', gossip: [] });
  };
  for (let k = 0; k < 200; k++) {
    const id = `t${k}`;
    answer(a.receive(now, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'alive', id, incarnation: 0, address: id }] }));
    answer(a.receive(now, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'dead', id, incarnation: 0, from: 'c' }] }));
    now += CFG.tombstoneMs / 20;
    answer(a.tick(now));
  }
  // About twenty tombstones are alive at once; the table holds those, not all two hundred names.
  assert.ok(a.memberState('t0') === undefined && a.memberState('t199')?.state === 'dead');
  assert.ok((a as unknown as { state: Uint8Array }).state.length <= 64, 'the table stays small');
});

test('a timed-out suspicion gets a last-chance ping: a live member answers with its incarnation, a dead one is declared', () => {
  const timeOut = (answer: boolean) => {
    const a = node('a', ['x', 'c', 'd']);
    a.receive(1, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'suspect', id: 'x', incarnation: 0, from: 'c' }] });
    const events: string[] = [];
    const lastChance: Message[] = [];
    let now = 1;
    while (now < 20_000 && !events.some((e) => e.endsWith(':x') && e !== 'suspect:x')) {
      now = a.nextTimer();
      const out = a.tick(now);
      events.push(...types(out));
      for (const s of out.send) {
        if (s.msg.type !== 'ping') continue;
        if (s.to === 'x') {
          lastChance.push(s.msg);
          // x missed nothing but this node missed x's refutation: x's answer carries incarnation 1.
          if (answer) events.push(...types(a.receive(now + 1, 'x', { type: 'ack', seq: s.msg.seq, from: 'x', gossip: [{ kind: 'alive', id: 'x', incarnation: 1, address: 'x' }] })));
        } else a.receive(now, s.to, { type: 'ack', seq: s.msg.seq, from: s.to, gossip: [] });
      }
    }
    assert.ok(lastChance.some((m) => m.type === 'ping' && m.gossip[0]?.kind === 'suspect'), 'the last-chance ping carries the accusation');
    return events.filter((e) => e.endsWith(':x'));
  };
  assert.deepEqual(timeOut(true), ['alive:x']);
  assert.deepEqual(timeOut(false), ['failed:x']);
});

test('a member pinged with an accusation it has already refuted answers with its current alive record', () => {
  const x = node('x', ['a']);
  x.receive(1, 'c', { type: 'gossip', from: 'c', gossip: [{ kind: 'suspect', id: 'x', incarnation: 0, from: 'c' }] });
  assert.equal(x.incarnation, 1);
  // Let the refutation go out, so it is no longer queued.
  for (let k = 0; k < 40; k++) x.tick(x.nextTimer());
  const ack = x.receive(9000, 'a', { type: 'ping', seq: 5, from: 'a', target: 'x', gossip: [{ kind: 'suspect', id: 'x', incarnation: 0, from: 'a' }] });
  const msg = ack.send.find((s) => s.msg.type === 'ack')!.msg;
  assert.ok(msg.type === 'ack');
  assert.deepEqual([msg.gossip[0].kind, msg.gossip[0].id, msg.gossip[0].incarnation], ['alive', 'x', 1]);
  assert.equal(x.incarnation, 1, 'a stale accusation is not refuted again');
});

test('a private suspicion: the accuser tells the accused alone, who answers it alone; nobody else hears', () => {
  const b = node('b', ['x', 'c', 'd', 'e']);
  const x = node('x', ['b', 'c', 'd', 'e']);
  const fromB: Output[] = [];
  let now = 0;
  // Nobody answers b's probes of x (x is paused), so b suspects x.
  while (!fromB.some((o) => types(o).includes('suspect:x')) && now < 20_000) {
    now = b.nextTimer();
    const out = b.tick(now);
    fromB.push(out);
    for (const s of out.send) if (s.msg.type === 'ping' && s.to !== 'x') b.receive(now, s.to, { type: 'ack', seq: s.msg.seq, from: s.to, gossip: [] });
  }
  const sent = fromB.flatMap((o) => o.send);
  const accusations = sent.filter((s) => 'gossip' in s.msg && s.msg.gossip.some((g) => g.kind === 'suspect'));
  assert.ok(accusations.length > 0 && accusations.every((s) => s.to === 'x'), 'the suspicion went to x only');
  // x reads it (as after its pause): it raises its incarnation and answers b directly, without gossip for the rest.
  const answer = accusations.flatMap((s) => x.receive(now, 'b', s.msg).send);
  assert.equal(x.incarnation, 1);
  assert.deepEqual(answer.map((s) => s.to), ['b']);
  assert.ok(gossipOf(x.tick(x.nextTimer())).every((g) => g.id !== 'x'), 'x queues no broadcast of its refutation');
  // b clears the suspicion and passes nothing on.
  const cleared = answer.map((s) => b.receive(now + 1, 'x', s.msg));
  assert.deepEqual(cleared.flatMap(types), ['alive:x']);
  assert.ok(gossipOf(b.tick(b.nextTimer())).every((g) => g.id !== 'x'));
});

test('with private suspicions a bare incarnation bump is not passed on; a metadata change is', () => {
  const spreads = (cfg: SwimConfig, g: Gossip) => {
    const a = node('a', ['p1', 'p2', 'p3'], cfg);
    a.receive(1, 'p2', { type: 'gossip', from: 'p2', gossip: [g] });
    let carried = 0;
    for (let i = 0; i < 5; i++) carried += gossipOf(a.receive(2, 'p3', { type: 'ping', seq: i, from: 'p3', target: 'a', gossip: [] })).filter((x) => x.id === 'p1' && x.incarnation === 4).length;
    return carried > 0;
  };
  const bump: Gossip = { kind: 'alive', id: 'p1', incarnation: 4, address: 'p1' };
  assert.equal(spreads(CFG, bump), false);
  assert.equal(spreads(CFG, { ...bump, meta: Uint8Array.from([1]) }), true);
  assert.equal(spreads(CFG, { ...bump, address: 'p1-moved' }), true);
  assert.equal(spreads(GOSSIPED, bump), true, 'gossiped suspicions need refutations gossiped too');
});

test('local health stretches the probe interval and probe timeout by (localHealth + 1), up to awarenessMaxMultiplier, and back as acks arrive', () => {
  // Suspicions never time out here, so the same members stay probe targets throughout.
  const cfg: SwimConfig = { ...CFG, probeBeforeDead: false, minSuspicionTimeoutMs: 3_600_000 };
  const a = node('a', ['p1', 'p2', 'p3', 'p4', 'p5'], cfg);
  const max = cfg.awarenessMaxMultiplier - 1;
  // Each direct (UDP) probe: when it went out, the local health it went out with, when its ping-reqs followed.
  const probes: { at: number; seq: number; health: number; indirectAt?: number }[] = [];
  let now = 0;
  /** Ticks until the next probe has gone out; with `answer`, its target acks it at once. */
  const probe = (answer: boolean) => {
    for (const before = probes.length; probes.length === before; ) {
      now = a.nextTimer();
      for (const s of a.tick(now).send) {
        const m = s.msg;
        if (m.type === 'ping' && s.transport === 'udp') {
          // Nothing adjusts health after a probe starts within a tick, so this is the scale it started with.
          probes.push({ at: now, seq: m.seq, health: a.localHealth });
          if (answer) a.receive(now + 1, s.to, { type: 'ack', seq: m.seq, from: m.target, gossip: [] });
        } else if (m.type === 'ping-req') {
          const p = probes.find((x) => x.seq === m.seq);
          if (p) p.indirectAt ??= now;
        }
      }
    }
  };
  // Nobody answers and no helper sends a nack: health worsens up to its cap, and stays there.
  while (a.localHealth < max && probes.length < 100) probe(false);
  for (let k = 0; k < 3; k++) probe(false);
  assert.equal(a.localHealth, max, 'unanswered probes raise local health to its cap and no further');
  const unanswered = probes.length;
  // Then every probe is acked: each ack lowers local health by one.
  for (let k = 0; k < max + 3; k++) probe(true);
  assert.equal(a.localHealth, 0, 'acks bring local health back to 0');

  const close = (x: number, y: number) => Math.abs(x - y) < 1e-6;
  const gaps = probes.slice(1).map((p, k) => p.at - probes[k].at);
  gaps.forEach((gap, k) => {
    assert.ok(close(gap, cfg.probeIntervalMs * (probes[k].health + 1)), `gap ${k}: ${gap} ms at local health ${probes[k].health}`);
  });
  const indirect = probes.filter((p) => p.indirectAt !== undefined);
  for (const p of indirect) {
    assert.ok(close(p.indirectAt! - p.at, cfg.probeTimeoutMs * (p.health + 1)), `ping-req ${p.indirectAt! - p.at} ms after the ping at local health ${p.health}`);
  }
  assert.ok(indirect.some((p) => p.health === max), 'the probe timeout was seen stretched to its cap');
  // From probeIntervalMs up to awarenessMaxMultiplier times it, never beyond, and back down one step per ack.
  assert.ok(close(gaps[0], cfg.probeIntervalMs));
  assert.ok(close(Math.max(...gaps), cfg.probeIntervalMs * cfg.awarenessMaxMultiplier));
  assert.deepEqual(
    probes.slice(unanswered).map((p) => p.health),
    [...Array.from({ length: max + 1 }, (_, k) => max - k), 0, 0].slice(0, max + 3),
  );
  assert.ok(close(gaps[gaps.length - 1], cfg.probeIntervalMs));
});

test('a metadata update that gossip never brought a member reaches it by the periodic push-pull alone', () => {
  const sameMeta = (m: Uint8Array | undefined) => m !== undefined && [...m].join() === '9';
  const run = (pushPullIntervalMs: number) => {
    // No reconnect (CFG) and no join retries: push-pull is the only full-state exchange left.
    const cfg: SwimConfig = { ...CFG, pushPullIntervalMs, joinRetryMs: 0 };
    const nodes = new Map(['a', 'b', 'c'].map((id) => [id, node(id, ['a', 'b', 'c'].filter((p) => p !== id), cfg)]));
    const c = nodes.get('c')!;
    const inflight: { at: number; to: string; from: string; msg: Message; transport: 'udp' | 'tcp' }[] = [];
    let now = 0;
    let lostNews = 0;
    let newsByGossip = 0;
    const cEvents: { type: string; via: Message }[] = [];
    const isNews = (g: Gossip) => g.id === 'b' && sameMeta(g.meta);
    const handle = (from: string, out: Output, cutOff: boolean) => {
      for (const s of out.send) {
        let msg = s.msg;
        if (s.to === 'c' && 'gossip' in msg && msg.gossip.some(isNews)) {
          if (cutOff) {
            // c's network loses the news wherever it travels by gossip (the rest of the message arrives).
            lostNews++;
            msg = { ...msg, gossip: msg.gossip.filter((g) => !isNews(g)) };
          } else newsByGossip++;
        }
        inflight.push({ at: now + 1, to: s.to, from, msg, transport: s.transport });
      }
    };
    const runUntil = (end: number, cutOff: boolean) => {
      for (;;) {
        const timers = [...nodes.values()].map((n) => n.nextTimer());
        const next = Math.min(...timers, ...inflight.map((d) => d.at));
        if (next > end) break;
        now = next;
        const d = inflight.findIndex((x) => x.at === next);
        if (d >= 0) {
          const { to, from, msg, transport } = inflight.splice(d, 1)[0];
          // While c is cut off, no push-pull reaches or leaves it either.
          if (cutOff && msg.type === 'push-pull' && (to === 'c' || from === 'c')) continue;
          const out = nodes.get(to)!.receive(now, from, msg, transport);
          if (to === 'c') cEvents.push(...out.events.map((e) => ({ type: `${e.type}:${e.member.id}`, via: msg })));
          handle(to, out, cutOff);
        } else {
          const [id, n] = [...nodes].find(([, x]) => x.nextTimer() === next)!;
          handle(id, n.tick(now), cutOff);
        }
      }
    };
    // b publishes new metadata; everyone but c hears it, until nobody gossips it any more.
    now = 100;
    handle('b', nodes.get('b')!.updateMeta(now, Uint8Array.from([9])), true);
    runUntil(5_000, true);
    assert.ok(lostNews > 0, 'the news was gossiped towards c');
    assert.ok(sameMeta(nodes.get('a')!.memberState('b')?.meta), 'a has the update');
    assert.ok(!sameMeta(c.memberState('b')?.meta), 'c missed it');
    runUntil(5_000 + 3 * Math.max(pushPullIntervalMs, 10_000), false);
    assert.equal(newsByGossip, 0, 'gossip no longer carries the news');
    for (const id of ['a', 'b', 'c']) assert.equal(nodes.get('c')!.memberState(id)?.state, 'alive', `c still sees ${id} alive`);
    return { has: sameMeta(c.memberState('b')?.meta), updated: cEvents.filter((e) => e.type === 'updated:b') };
  };
  const repaired = run(10_000);
  assert.ok(repaired.has, 'c has the update after a push-pull');
  assert.equal(repaired.updated.length, 1);
  const via = repaired.updated[0].via;
  assert.ok(via.type === 'push-pull' && !via.join, `it came by a periodic push-pull, not ${via.type}`);
  // The same without push-pull: nothing else would ever have told c.
  assert.equal(run(0).has, false);
});
