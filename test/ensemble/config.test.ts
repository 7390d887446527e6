import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientAddress, configMembersText, ensembleConfig, formatServerSpec, parseServerSpec } from '../../src/ensemble/config.js';
import { parseZooCfg, resolveConfig } from '../../src/server/config.js';

test('server.N lines in every form ZooKeeper accepts', () => {
  assert.deepEqual(parseServerSpec(5, '125.23.63.23:1234:1235;1236'), {
    id: 5, host: '125.23.63.23', peerPort: 1234, electionPort: 1235, role: 'participant', clientHost: '0.0.0.0', clientPort: 1236,
  });
  assert.equal(parseServerSpec(5, '125.23.63.23:1234:1235:observer;1236').role, 'observer');
  const s = parseServerSpec(5, '125.23.63.23:1234:1235:participant;125.23.63.24:1236');
  assert.equal(s.clientHost, '125.23.63.24');
  assert.equal(formatServerSpec(s), '125.23.63.23:1234:1235:participant;125.23.63.24:1236');
  assert.equal(parseServerSpec(1, '[::1]:2888:3888;[::1]:2181').host, '::1');
  assert.equal(clientAddress(parseServerSpec(1, '127.0.0.1:2888:3888;2181')), '127.0.0.1:2181');
  assert.equal(parseServerSpec(1, 'h:2888:3888').clientPort, 0, 'the client port may come from clientPort');
  for (const bad of ['h:2888', 'h:2888:3888:leader;2181', 'h:x:3888', 'h:2888:3888;99999']) {
    assert.throws(() => parseServerSpec(1, bad), /server\.1/, bad);
  }
});

test('/zookeeper/config lists members by id in ZooKeeper\'s form', () => {
  const members = [parseServerSpec(2, '127.0.0.1:2889:3889;127.0.0.1:2182'), parseServerSpec(1, '127.0.0.1:2888:3888;127.0.0.1:2181')];
  assert.equal(
    configMembersText(members),
    'server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182',
  );
});

test('ensemble keys of zoo.cfg and myid from the data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-cfg-'));
  try {
    const text = `dataDir=${dir}\nclientPort=2182\nserver.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\nserver.3=127.0.0.1:2890:3890:observer;2183\nreconfigEnabled=true\nreadonlymode.enabled=true\nforceSync=no\nsnapCount=5000\n`;
    const cfg = resolveConfig(parseZooCfg(text));
    assert.throws(() => ensembleConfig(cfg), /myid/);
    writeFileSync(join(dir, 'myid'), '2\n');
    const e = ensembleConfig(cfg);
    assert.equal(e.myid, 2);
    assert.deepEqual(e.members.map((m) => [m.id, m.role]), [[1, 'participant'], [2, 'participant'], [3, 'observer']]);
    assert.equal(e.reconfigEnabled, true);
    assert.equal(e.readOnlyMode, true);
    assert.equal(e.forceSync, false);
    assert.equal(e.snapCount, 5000);
    writeFileSync(join(dir, 'myid'), '7\n');
    assert.throws(() => ensembleConfig(cfg), /no server\.7/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without server lines a server is an ensemble of one', () => {
  const cfg = resolveConfig({ port: 2199, dataDir: '/nonexistent-pk' });
  const e = ensembleConfig(cfg);
  assert.equal(e.myid, 1);
  assert.equal(e.members.length, 1);
  assert.equal(e.members[0].clientPort, 2199);
  assert.equal(e.forceSync, true, 'durable by default');
});
