/** The client's pure pieces: heartbeat timing with an injected clock, connection strings, host order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeat } from '../../src/client/heartbeat.js';
import { parseConnectionString, shuffled } from '../../src/client/hosts.js';

test('an idle connection pings at a third of the timeout and is lost at two thirds of silence', () => {
  const hb = new Heartbeat(3000, 10_000);
  assert.equal(hb.due(10_999), undefined);
  assert.equal(hb.nextCheck(), 11_000);
  assert.equal(hb.due(11_000), 'ping');
  hb.sent(11_000);
  assert.equal(hb.nextCheck(), 12_000, 'the silence deadline comes before the next ping');
  assert.equal(hb.due(11_999), undefined);
  assert.equal(hb.due(12_000), 'lost', 'nothing heard for 2000 ms');
});

test('traffic either way postpones what it answers for', () => {
  const hb = new Heartbeat(3000, 0);
  hb.sent(900); // a request: no ping needed until a third after it
  assert.equal(hb.due(1000), undefined);
  assert.equal(hb.due(1900), 'ping');
  hb.heard(1500); // a reply: the connection is alive
  assert.equal(hb.due(3400), 'ping');
  assert.notEqual(hb.due(3499), 'lost');
  assert.equal(hb.due(3500), 'lost');
  hb.heard(1000); // an older time never moves the deadline back
  assert.equal(hb.due(3500), 'lost');
});

test('a connection that keeps answering pings is never lost', () => {
  const hb = new Heartbeat(900, 0);
  for (let now = 0; now < 100_000; now = hb.nextCheck()) {
    const due = hb.due(now);
    assert.notEqual(due, 'lost', `lost at ${now}`);
    if (due === 'ping') {
      hb.sent(now);
      hb.heard(now + 5); // the pong
    }
  }
  assert.throws(() => new Heartbeat(0, 0), RangeError);
});

test('connection strings: hosts, default port, IPv6, chroot and clear errors', () => {
  assert.deepEqual(parseConnectionString('a:1,b:2/app/x'), {
    hosts: [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ],
    chroot: '/app/x',
  });
  assert.deepEqual(parseConnectionString(' [::1]:2182 , c /'), {
    hosts: [
      { host: '::1', port: 2182 },
      { host: 'c', port: 2181 },
    ],
    chroot: '',
  });
  assert.throws(() => parseConnectionString(''), /no hosts/);
  assert.throws(() => parseConnectionString('a:99999'), /bad port/);
  assert.throws(() => parseConnectionString('a:1:2'), /bad host/);
  assert.throws(() => parseConnectionString('a:1/app/'), /bad chroot.*must not end with/);
  assert.throws(() => parseConnectionString(Array.from({ length: 300 }, (_, i) => `h${i}:1`).join(',')), /at most 256/);
});

test('hosts are tried in a uniformly random order', () => {
  const hosts = ['a', 'b', 'c'];
  const firsts = new Map<string, number>();
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 3000; i++) {
    const order = shuffled(hosts, random);
    assert.deepEqual([...order].sort(), hosts, 'a permutation');
    firsts.set(order[0], (firsts.get(order[0]) ?? 0) + 1);
  }
  for (const h of hosts) assert.ok(firsts.get(h)! > 850 && firsts.get(h)! < 1150, `${h} first ${firsts.get(h)} times of 3000`);
  assert.deepEqual(hosts, ['a', 'b', 'c'], 'the input is left alone');
});
