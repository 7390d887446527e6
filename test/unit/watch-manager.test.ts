import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WatchManager } from '../../src/watch/watch-manager.js';
import { EventType, WatcherType } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';

const fire = (m: WatchManager, type: EventType, path: string) => m.trigger(type, path).map((n) => n.watcher).sort();

test('one-shot data and child watches fire once for the right events', () => {
  const m = new WatchManager();
  m.addData('/a', 1);
  m.addChild('/a', 2);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/a'), [2]);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/a'), []);
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/a'), [1]);
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/a'), []);
  m.addData('/a', 1);
  m.addChild('/a', 1);
  assert.deepEqual(fire(m, EventType.NodeDeleted, '/a'), [1], 'deleted reaches data and child watches, once per watcher');
  assert.deepEqual(m.summary(), { connections: 0, paths: 0, total: 0 });
});

test('persistent watches see every event on their path; recursive ones the subtree without child events', () => {
  const m = new WatchManager();
  m.addPersistent('/p', 1, false);
  m.addPersistent('/p', 2, true);
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/p'), [1, 2]);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/p'), [1]);
  assert.deepEqual(fire(m, EventType.NodeCreated, '/p/x/y'), [2]);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/p/x'), []);
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/p'), [1, 2], 'persistent watches are not used up');
});

test('a later registration replaces the mode of the same table entry, as in ZooKeeper', () => {
  const m = new WatchManager();
  m.addPersistent('/p', 1, false);
  m.addData('/p', 1); // the data entry becomes one-shot; the child entry stays persistent
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/p'), [1]);
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/p'), []);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/p'), [1]);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/p'), [1]);
});

test('removeWatches and checkWatches', () => {
  const m = new WatchManager();
  m.addData('/a', 1);
  assert.equal(m.checkWatches('/a', WatcherType.Data, 1), ErrorCode.OK);
  assert.equal(m.checkWatches('/a', WatcherType.Children, 1), ErrorCode.NOWATCHER);
  // ZooKeeper 3.8 answers checkWatches by whether anyone watches the path.
  assert.equal(m.checkWatches('/a', WatcherType.Data, 2), ErrorCode.OK);
  assert.equal(m.removeWatches('/a', WatcherType.Children, 1), ErrorCode.NOWATCHER);
  assert.equal(m.removeWatches('/a', WatcherType.Any, 1), ErrorCode.OK);
  assert.equal(m.removeWatches('/a', WatcherType.Any, 1), ErrorCode.NOWATCHER);
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/a'), []);
});

test('setWatches fires what was missed since relZxid and registers the rest', () => {
  const m = new WatchManager();
  const stats = new Map([
    ['/old', { mzxid: 5, pzxid: 5 }],
    ['/new', { mzxid: 20, pzxid: 21 }],
  ]);
  const tree = { stat: (p: string) => stats.get(p) };
  const out = m.setWatches(
    {
      type: 101,
      relativeZxid: 10,
      dataWatches: ['/old', '/new', '/gone'],
      existWatches: ['/new', '/absent'],
      childWatches: ['/old', '/new'],
      persistentWatches: [],
      persistentRecursiveWatches: [],
    },
    7,
    tree,
  );
  assert.deepEqual(
    out.map((n) => `${n.type}:${n.path}`),
    ['3:/new', '2:/gone', '1:/new', '4:/new'],
  );
  assert.deepEqual(fire(m, EventType.NodeDataChanged, '/old'), [7]);
  assert.deepEqual(fire(m, EventType.NodeCreated, '/absent'), [7]);
  assert.deepEqual(fire(m, EventType.NodeChildrenChanged, '/old'), [7]);
});

test('a closed connection loses all its watches', () => {
  const m = new WatchManager();
  m.addData('/a', 1);
  m.addChild('/b', 1);
  m.addPersistent('/c', 1, true);
  m.addData('/a', 2);
  m.removeWatcher(1);
  assert.deepEqual(m.watchers(), [2]);
  assert.deepEqual(fire(m, EventType.NodeCreated, '/c/d'), []);
});
