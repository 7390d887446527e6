/**
 * What only an ensemble shows, compared with a 3-member Apache ZooKeeper ensemble
 * (QuorumPeerMain): members' modes, /zookeeper/config's format and Stat, session ids
 * naming the member that created them, reconfig while it is disabled.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OpCode, Perms } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import type { ACL, Stat } from '../../src/protocol/records.js';
import { RawClient } from '../support/raw-client.js';
import { pulsekeeperEnsembleTarget, type TestServer } from '../support/servers.js';
import { fourLetter, skipWithoutZooKeeper } from '../support/zookeeper.js';
import { ZooKeeperEnsemble } from '../support/zookeeper-ensemble.js';

const skip = skipWithoutZooKeeper();

interface Side {
  name: string;
  /** Member id -> client port. */
  members: Map<number, number>;
}

interface ConfigNode {
  data: string;
  stat: Stat;
  acl: ACL[];
}

/** /zookeeper/config as one member serves it, after a sync. */
async function configNode(port: number): Promise<ConfigNode> {
  const c = await RawClient.connect(port, { timeout: 10_000 });
  try {
    await c.request({ type: OpCode.sync, path: '/zookeeper/config' });
    const r = await c.request({ type: OpCode.getData, path: '/zookeeper/config', watch: false });
    assert.equal(r.err, ErrorCode.OK);
    const { data, stat } = r.response as { data: Buffer; stat: Stat };
    const a = await c.request({ type: OpCode.getACL, path: '/zookeeper/config' });
    return { data: data.toString('utf8'), stat, acl: (a.response as { acl: ACL[] }).acl };
  } finally {
    await c.close();
  }
}

describe('a pulsekeeper ensemble compared with an Apache ZooKeeper ensemble', { skip }, () => {
  let zk: ZooKeeperEnsemble;
  let pk: TestServer;
  let sides: Side[];
  before(async () => {
    [zk, pk] = await Promise.all([ZooKeeperEnsemble.start({ forceSync: false }), pulsekeeperEnsembleTarget.start()]);
    sides = [
      { name: 'zookeeper', members: new Map([...zk.members.values()].map((m) => [m.id, m.clientPort])) },
      { name: 'pulsekeeper', members: new Map([...pk.ensemble!.members.values()].map((m) => [m.id, m.clientPort])) },
    ];
  });
  after(async () => {
    await Promise.all([zk?.close(), pk?.stop()]);
  });

  test('srvr and mntr: one member leads, the others follow; every member serves reads and writes', async () => {
    for (const side of sides) {
      const modes: string[] = [];
      for (const port of side.members.values()) {
        const mode = /^Mode: (\S+)$/m.exec(await fourLetter(port, 'srvr'))?.[1];
        assert.ok(mode, `${side.name}: srvr shows a Mode`);
        modes.push(mode);
        const mntr = Object.fromEntries((await fourLetter(port, 'mntr')).trim().split('\n').map((l) => l.split('\t')));
        assert.equal(mntr.zk_server_state, mode, `${side.name}: mntr's zk_server_state is srvr's Mode`);
        if (mode === 'leader') assert.equal(mntr.zk_synced_followers, '2', `${side.name}: the leader counts its synced followers`);
        assert.equal(await fourLetter(port, 'isro'), 'rw');
      }
      assert.deepEqual(modes.sort(), ['follower', 'follower', 'leader'], side.name);
    }
  });

  test('/zookeeper/config lists every member as server.N lines, then version=<hex of its mzxid>, the same on every member', async () => {
    for (const side of sides) {
      const nodes = await Promise.all([...side.members.values()].map(configNode));
      for (const n of nodes) assert.equal(n.data, nodes[0].data, `${side.name}: every member serves the same membership`);
      const lines = nodes[0].data.split('\n');
      const version = /^version=([0-9a-f]+)$/.exec(lines.pop()!);
      assert.ok(version, `${side.name}: the last line is version=<hex>: ${nodes[0].data}`);
      // Clients (zkCli's reconfig -v, Curator) take the config's version from this line; ZooKeeper makes it the zxid that wrote it.
      assert.equal(parseInt(version[1], 16), nodes[0].stat.mzxid, `${side.name}: version line and mzxid`);
      const ids: number[] = [];
      for (const line of lines) {
        const m = /^server\.(\d+)=127\.0\.0\.1:\d+:\d+:participant(?:;127\.0\.0\.1:(\d+))?$/.exec(line);
        assert.ok(m, `${side.name}: a server line in ZooKeeper's format: ${line}`);
        ids.push(Number(m[1]));
        // The test's ZooKeeper members name no client address in their server lines; pulsekeeper's do, and it must be right.
        if (m[2] !== undefined) assert.equal(Number(m[2]), side.members.get(Number(m[1])), `${side.name}: client port of server.${m[1]}`);
      }
      assert.deepEqual(ids, [...side.members.keys()].sort((a, b) => a - b), `${side.name}: one line per member, by id`);
    }
  });

  test("/zookeeper/config's Stat and ACL", async () => {
    const [z, p] = await Promise.all(sides.map((side) => configNode(side.members.values().next().value!)));
    const shape = (n: ConfigNode) => ({
      czxid: n.stat.czxid,
      ctime: n.stat.ctime,
      // Written with a setData of version -1 at the time of the write, at start and at every membership change.
      version: n.stat.version,
      mtimeSet: n.stat.mtime > 0,
      pzxid: n.stat.pzxid,
      cversion: n.stat.cversion,
      aversion: n.stat.aversion,
      ephemeralOwner: n.stat.ephemeralOwner,
      numChildren: n.stat.numChildren,
      dataLengthIsData: n.stat.dataLength === Buffer.byteLength(n.data),
      acl: n.acl,
    });
    assert.deepEqual(shape(p), shape(z));
    assert.equal(z.stat.version, -1);
    assert.deepEqual(z.acl, [{ perms: Perms.READ, id: { scheme: 'world', id: 'anyone' } }]);
  });

  test("a session id's top byte is the id of the member that created it", async () => {
    for (const side of sides) {
      for (const [id, port] of side.members) {
        const c = await RawClient.connect(port, { timeout: 10_000 });
        assert.equal(Number(c.session.sessionId >> 56n), id, `${side.name}: session 0x${c.session.sessionId.toString(16)} made by member ${id}`);
        await c.close();
      }
    }
  });

  test('reconfig answers RECONFIGDISABLED while reconfigEnabled is off, on the leader and on followers', async () => {
    for (const side of sides) {
      for (const port of side.members.values()) {
        const c = await RawClient.connect(port, { timeout: 10_000 });
        const r = await c.request({ type: OpCode.reconfig, joiningServers: null, leavingServers: '3', newMembers: null, curConfigId: -1 });
        assert.equal(r.err, ErrorCode.RECONFIGDISABLED, side.name);
        await c.close();
      }
    }
  });
});
