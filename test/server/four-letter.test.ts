/**
 * Four-letter words compared with Apache ZooKeeper 3.8's answers to the same state:
 * two sessions, an ephemeral node with a data and a child watch, a persistent and a
 * persistent-recursive watch. What both servers must agree on is compared exactly
 * (counts, formats, key names); what cannot agree (versions, session ids, addresses,
 * times) is normalised first.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateMode, OpCode } from '../../src/protocol/opcodes.js';
import { encodeRequest } from '../../src/protocol/records.js';
import { pulsekeeperTarget, zookeeperTarget, type TestServer } from '../support/servers.js';
import { fourLetter, skipWithoutZooKeeper } from '../support/zookeeper.js';
import { WireSession } from './wire.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const WORDS = ['ruok', 'srvr', 'stat', 'cons', 'conf', 'mntr', 'wchs', 'wchc', 'wchp', 'dump', 'isro'] as const;

interface Answers {
  port: number;
  /** Session ids in the order the sessions were made. */
  sids: string[];
  words: Record<(typeof WORDS)[number], string>;
}

async function collect(server: TestServer): Promise<Answers> {
  const c = await WireSession.open(server.port);
  const d = await WireSession.open(server.port);
  try {
    c.send(encodeRequest(1, { type: OpCode.create, path: '/eph', data: Buffer.from('x'), acl: OPEN, flags: CreateMode.EPHEMERAL }));
    c.send(encodeRequest(2, { type: OpCode.getData, path: '/eph', watch: true }));
    c.send(encodeRequest(3, { type: OpCode.getChildren, path: '/eph', watch: true }));
    await c.reply(3);
    d.send(encodeRequest(1, { type: OpCode.addWatch, path: '/r', mode: 1 }));
    d.send(encodeRequest(2, { type: OpCode.addWatch, path: '/p', mode: 0 }));
    await d.reply(2);
    const words = {} as Answers['words'];
    for (const w of WORDS) words[w] = await fourLetter(server.port, w);
    return { port: server.port, sids: [c, d].map((s) => '0x' + s.session.sessionId.toString(16)), words };
  } finally {
    c.close();
    d.close();
  }
}

/** Replaces session ids by their order and drops what differs between any two runs. */
function normalise(a: Answers, text: string): string {
  let out = text;
  a.sids.forEach((sid, i) => (out = out.replaceAll(sid, `<sid${i}>`)));
  return out
    .replace(/127\.0\.0\.1:\d+/g, '<addr>')
    .replace(/\w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}/g, '<date>')
    .replace(/^Zookeeper version: .*$/m, 'Zookeeper version: <v>');
}

const lines = (text: string) => text.split('\n');
const keysOf = (text: string, sep: string) => lines(text).filter(Boolean).map((l) => l.split(sep)[0]);
const valueOf = (text: string, key: string, sep: string) => lines(text).find((l) => l.split(sep)[0] === key)?.slice(key.length + sep.length);
/** wchc and wchp: each heading with its indented entries, as a sorted list (both servers list hash tables). */
const groups = (text: string) =>
  text
    .trimEnd()
    .split(/\n(?=\S)/)
    .map((g) => g.split('\n').map((l, i) => (i === 0 ? l : l.trim())).sort().join(' '))
    .sort();

const skip = skipWithoutZooKeeper();

describe('four-letter words against Apache ZooKeeper', { skip }, () => {
  const started: TestServer[] = [];
  let zk: Answers;
  let pk: Answers;
  before(async () => {
    for (const target of [zookeeperTarget, pulsekeeperTarget]) {
      const server = await target.start();
      started.push(server);
      if (target.name === 'zookeeper') zk = await collect(server);
      else pk = await collect(server);
    }
  });
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  test('ruok and isro', () => {
    assert.equal(pk.words.ruok, zk.words.ruok);
    assert.equal(pk.words.isro, zk.words.isro);
  });

  test('srvr: same lines; counts, zxid and mode agree; node count takes in the root twice', () => {
    const [z, p] = [zk.words.srvr, pk.words.srvr];
    assert.deepEqual(keysOf(p, ': '), keysOf(z, ': '));
    for (const key of ['Connections', 'Outstanding', 'Zxid', 'Mode', 'Node count']) assert.equal(valueOf(p, key, ': '), valueOf(z, key, ': '), key);
    // Averages print as Java's Double.toString of a value rounded to 4 places.
    assert.match(valueOf(p, 'Latency min/avg/max', ': ')!, /^\d+\/\d+\.\d{1,4}\/\d+$/);
  });

  test('stat: short client lines, the asking connection shown as [0]', () => {
    const clientLines = (a: Answers) => normalise(a, a.words.stat).split('Clients:\n')[1].split('\n\n')[0].split('\n').sort();
    assert.deepEqual(clientLines(pk), clientLines(zk));
  });

  test('cons: the same fields in the same order', () => {
    const shape = (a: Answers) =>
      lines(normalise(a, a.words.cons))
        .filter(Boolean)
        .map((l) => l.replace(/=(0x)?[0-9a-f]+/g, '=n').replace(/lop=\w+/, 'lop=x'))
        .sort();
    assert.deepEqual(shape(pk), shape(zk));
    assert.equal(pk.words.cons.endsWith('\n\n'), zk.words.cons.endsWith('\n\n'));
  });

  test('conf: ZooKeeper\'s keys first, the port clients use', () => {
    const zkKeys = keysOf(zk.words.conf, '=');
    assert.deepEqual(keysOf(pk.words.conf, '=').slice(0, zkKeys.length), zkKeys);
    assert.equal(valueOf(pk.words.conf, 'clientPort', '='), String(pk.port));
    assert.equal(valueOf(zk.words.conf, 'clientPort', '='), String(zk.port));
  });

  test('mntr: ZooKeeper\'s key names, the same counts, real file descriptor counts', () => {
    const zkKeys = new Set(keysOf(zk.words.mntr, '\t'));
    const pkZkKeys = keysOf(pk.words.mntr, '\t').filter((k) => k.startsWith('zk_'));
    assert.deepEqual(pkZkKeys.filter((k) => !zkKeys.has(k)), []);
    for (const key of [
      'zk_server_state',
      'zk_ephemerals_count',
      'zk_num_alive_connections',
      'zk_outstanding_requests',
      'zk_znode_count',
      'zk_global_sessions',
      'zk_local_sessions',
      'zk_watch_count',
      'zk_max_file_descriptor_count',
    ]) {
      assert.equal(valueOf(pk.words.mntr, key, '\t'), valueOf(zk.words.mntr, key, '\t'), key);
    }
    assert.ok(Number(valueOf(pk.words.mntr, 'zk_open_file_descriptor_count', '\t')) > 0);
  });

  test('wchs, wchc and wchp list the data watches, as ZooKeeper does', () => {
    assert.equal(pk.words.wchs, zk.words.wchs);
    for (const w of ['wchc', 'wchp'] as const) {
      assert.deepEqual(groups(normalise(pk, pk.words[w])), groups(normalise(zk, zk.words[w])), w);
      assert.ok(pk.words[w].endsWith('\n\n'), `${w} ends with a blank line`);
    }
  });

  test('dump: session sets by expiry time and ephemerals, then the connections', () => {
    const head = (a: Answers) => normalise(a, a.words.dump).split('Connections dump:\n');
    const [zHead, zConns] = head(zk);
    const [pHead, pConns] = head(pk);
    // How two sessions opened a moment apart fall into expiry sets depends on where the tick
    // boundary lies, on either server: the sets' sizes must add up to the sessions listed, and
    // everything else must be the same.
    const sorted = (t: string) =>
      lines(t)
        .filter((l) => !/^\d+ expire at /.test(l))
        .map((l) => l.replace(/^Session Sets \(\d+\)\/\((\d+)\):$/, 'Session Sets ($1):'))
        .sort();
    const setSizesAddUp = (t: string) => {
      const total = Number(/^Session Sets \(\d+\)\/\((\d+)\):$/m.exec(t)?.[1]);
      const sizes = [...t.matchAll(/^(\d+) expire at /gm)].reduce((n, m) => n + Number(m[1]), 0);
      return sizes === total && total > 0;
    };
    assert.ok(setSizesAddUp(pHead), pHead);
    assert.ok(setSizesAddUp(zHead), zHead);
    assert.deepEqual(sorted(pHead), sorted(zHead));
    assert.equal(/\/\((\d+)\):/.exec(pConns)?.[1], /\/\((\d+)\):/.exec(zConns)?.[1], 'connections listed');
  });
});
