/**
 * A seeded generator of ZooKeeper operation sequences for differential tests,
 * valid and invalid alike: wrong versions, missing parents, children under
 * ephemerals, bad paths, bad ACLs, failing multis, watches of every kind.
 */
import { generateDigest } from '../../src/acl/acl.js';
import { AddWatchMode, CreateMode, OpCode, Perms, WatcherType } from '../../src/protocol/opcodes.js';
import type { ACL, MultiOp, RequestBody } from '../../src/protocol/records.js';
import { Rng } from './random.js';

export const SESSIONS = 3;

/** A step: a request from one session, or a session-level action. */
export type Step =
  | { session: number; kind: 'request'; body: RequestBody }
  | { session: number; kind: 'reconnect'; setWatches: RequestBody }
  | { session: number; kind: 'renew' };

const NAMES = ['a', 'b', 'c'];
const USERS = ['alice:secret', 'bob:hunter2'];

export function validPath(rng: Rng): string {
  const depth = 1 + rng.int(3);
  let p = '';
  for (let i = 0; i < depth; i++) p += '/' + rng.pick(NAMES);
  return p;
}

const BAD_PATHS = ['', 'a', '/a/', '//a', '/a//b', '/./a', '/a/..', '/a/\u0001b', '/zookeeper/quota', '/zookeeper/config'];

function path(rng: Rng): string {
  return rng.chance(0.06) ? rng.pick(BAD_PATHS) : rng.chance(0.03) ? '/' : validPath(rng);
}

function version(rng: Rng): number {
  return rng.weighted([
    [6, -1],
    [3, 0],
    [2, 1],
    [1, 5],
  ]);
}

function acl(rng: Rng): ACL[] {
  const world = (perms: number): ACL => ({ perms, id: { scheme: 'world', id: 'anyone' } });
  return rng.weighted<ACL[]>([
    [10, [world(Perms.ALL)]],
    [2, [world(Perms.READ)]],
    [2, [world(Perms.READ | Perms.CREATE | Perms.ADMIN)]],
    [2, [{ perms: Perms.ALL, id: { scheme: 'digest', id: generateDigest(rng.pick(USERS)) } }]],
    [2, [{ perms: Perms.ALL, id: { scheme: 'auth', id: '' } }, world(Perms.READ)]],
    [1, [{ perms: Perms.ALL, id: { scheme: 'ip', id: '127.0.0.1' } }]],
    [1, [{ perms: Perms.ALL, id: { scheme: 'ip', id: '10.0.0.0/8' } }, world(Perms.READ)]],
    [1, []],
    [1, [{ perms: Perms.ALL, id: { scheme: 'nosuch', id: 'x' } }]],
    [1, [{ perms: Perms.ALL, id: { scheme: 'digest', id: 'nocolon' } }]],
    [1, [world(Perms.ALL), world(Perms.ALL)]],
  ]);
}

function data(rng: Rng): Buffer {
  return rng.chance(0.2) ? Buffer.alloc(0) : Buffer.from(`v${rng.int(1000)}`);
}

function createOp(rng: Rng): MultiOp {
  const kind = rng.weighted<'create' | 'create2' | 'container' | 'ttl'>([
    [6, 'create'],
    [3, 'create2'],
    [1, 'container'],
    [1, 'ttl'],
  ]);
  const p = rng.chance(0.05) && kind !== 'container' ? validPath(rng) + '/' : path(rng);
  if (kind === 'container') {
    const flags = rng.pick([CreateMode.CONTAINER, CreateMode.CONTAINER, CreateMode.PERSISTENT, CreateMode.PERSISTENT_SEQUENTIAL]);
    return { type: OpCode.createContainer, path: p, data: data(rng), acl: acl(rng), flags };
  }
  if (kind === 'ttl') {
    const flags = rng.pick([CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, CreateMode.PERSISTENT]);
    // A negative TTL with a mode that has none makes Apache ZooKeeper 3.8 exit: not sent to it.
    const ttl = flags === CreateMode.PERSISTENT ? rng.pick([60_000, 0]) : rng.pick([60_000, 0, -5]);
    return { type: OpCode.createTTL, path: p, data: data(rng), acl: acl(rng), flags, ttl };
  }
  const flags = rng.weighted([
    [5, CreateMode.PERSISTENT],
    [3, CreateMode.EPHEMERAL],
    [1, CreateMode.CONTAINER],
    [1, CreateMode.PERSISTENT_WITH_TTL],
    [2, CreateMode.PERSISTENT_SEQUENTIAL],
    [2, CreateMode.EPHEMERAL_SEQUENTIAL],
    [1, 9],
  ]);
  return { type: kind === 'create' ? OpCode.create : OpCode.create2, path: p, data: data(rng), acl: acl(rng), flags };
}

function multiOp(rng: Rng): MultiOp {
  return rng.weighted<() => MultiOp>([
    [4, () => createOp(rng)],
    [2, () => ({ type: OpCode.delete, path: path(rng), version: version(rng) })],
    [2, () => ({ type: OpCode.setData, path: path(rng), data: data(rng), version: version(rng) })],
    [2, () => checkOp(rng)],
  ])();
}

function checkOp(rng: Rng): MultiOp {
  const p = path(rng);
  const v = version(rng);
  // /zookeeper/config's version tells whether the membership was ever written into it (an
  // ensemble's was, a standalone server's not): a check of it matches any version.
  return { type: OpCode.check, path: p, version: p === '/zookeeper/config' ? -1 : v };
}

function watchLists(rng: Rng): { data: string[]; exist: string[]; child: string[] } {
  const some = () => Array.from({ length: rng.int(3) }, () => validPath(rng));
  return { data: some(), exist: some(), child: some() };
}

export function* generate(seed: number, count: number): Generator<Step> {
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const session = rng.int(SESSIONS);
    const action = rng.weighted<'request' | 'reconnect' | 'renew'>([
      [200, 'request'],
      [3, 'reconnect'],
      [1, 'renew'],
    ]);
    if (action === 'reconnect') {
      const w = watchLists(rng);
      const two = rng.chance(0.5);
      yield {
        session,
        kind: 'reconnect',
        setWatches: {
          type: two ? OpCode.setWatches2 : OpCode.setWatches,
          relativeZxid: 0, // replaced by the runner with the client's last seen zxid
          dataWatches: w.data,
          existWatches: w.exist,
          childWatches: w.child,
          persistentWatches: two ? watchLists(rng).data : [],
          persistentRecursiveWatches: two ? watchLists(rng).data : [],
        },
      };
      continue;
    }
    if (action === 'renew') {
      yield { session, kind: 'renew' };
      continue;
    }
    const body = rng.weighted<() => RequestBody>([
      [14, () => createOp(rng)],
      [5, () => ({ type: OpCode.delete, path: path(rng), version: version(rng) })],
      [6, () => ({ type: OpCode.setData, path: path(rng), data: data(rng), version: version(rng) })],
      [5, () => ({ type: OpCode.exists, path: path(rng), watch: rng.chance(0.5) })],
      [6, () => ({ type: OpCode.getData, path: path(rng), watch: rng.chance(0.5) })],
      [4, () => ({ type: OpCode.getChildren, path: path(rng), watch: rng.chance(0.5) })],
      [3, () => ({ type: OpCode.getChildren2, path: path(rng), watch: rng.chance(0.5) })],
      [2, () => ({ type: OpCode.getACL, path: path(rng) })],
      [3, () => ({ type: OpCode.setACL, path: path(rng), acl: acl(rng), version: version(rng) })],
      [1, () => ({ type: OpCode.getAllChildrenNumber, path: path(rng) })],
      [1, () => ({ type: OpCode.getEphemerals, prefixPath: rng.pick(['/', '/a', '/b/', '']) })],
      [1, () => ({ type: OpCode.sync, path: path(rng) })],
      [1, () => ({ type: OpCode.whoAmI })],
      [1, () => ({ type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from(rng.pick(USERS)) })],
      [4, () => ({ type: OpCode.multi, ops: Array.from({ length: rng.int(4) }, () => multiOp(rng)) })],
      [
        2,
        () => ({
          type: OpCode.multiRead,
          ops: Array.from({ length: 1 + rng.int(3) }, () =>
            rng.chance(0.5) ? { type: OpCode.getData, path: path(rng), watch: false } : { type: OpCode.getChildren, path: path(rng), watch: false },
          ),
        }),
      ],
      [2, () => ({ type: OpCode.addWatch, path: validPath(rng), mode: rng.pick([AddWatchMode.PERSISTENT, AddWatchMode.PERSISTENT_RECURSIVE]) })],
      [1, () => ({ type: OpCode.checkWatches, path: validPath(rng), watcherType: rng.pick([WatcherType.Children, WatcherType.Data, WatcherType.Any]) })],
      [1, () => ({ type: OpCode.removeWatches, path: validPath(rng), watcherType: rng.pick([WatcherType.Children, WatcherType.Data, WatcherType.Any]) })],
    ])();
    yield { session, kind: 'request', body };
  }
}
