/**
 * Interop with node-zookeeper-client, a client nobody here wrote: every operation
 * it supports, against Apache ZooKeeper (proving the test), pulsekeeper and a
 * pulsekeeper ensemble, where the clients of a test sit on different members.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { targets, type TestServer } from '../support/servers.js';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const zk = require('node-zookeeper-client');

type Client = any;

/** Connects to the server's `member`-th client port (another member of an ensemble for member > 0). */
function connect(server: TestServer, member = 0, sessionTimeout = 6000): Promise<Client> {
  const port = server.ports[member % server.ports.length];
  const c = zk.createClient(`127.0.0.1:${port}`, { sessionTimeout, spinDelay: 100, retries: 0 });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), 10_000);
    c.once('connected', () => {
      clearTimeout(t);
      resolve(c);
    });
    c.connect();
  });
}

/** Calls a callback-style method and resolves with its results, or the error code. */
function call<T = any>(c: Client, method: string, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) =>
    c[method](...args, (err: any, ...rest: unknown[]) => (err ? reject(err) : resolve((rest.length > 1 ? rest : rest[0]) as T))),
  );
}

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e: any) {
    return typeof e?.getCode === 'function' ? e.getCode() : Number.NaN;
  }
}

const OPEN = zk.ACL.OPEN_ACL_UNSAFE;
const { CreateMode, Exception, Event } = zk;

/**
 * Registers a watch with `method` (getData, getChildren, exists) and resolves once the
 * server has answered; `event` then resolves with the event's name and path.
 */
async function watch(c: Client, method: string, path: string): Promise<{ event: Promise<string> }> {
  let fired!: (ev: string) => void;
  const event = new Promise<string>((resolve, reject) => {
    fired = resolve;
    setTimeout(() => reject(new Error(`no event for the watch on ${path} within 10 s`)), 10_000).unref();
  });
  await call(c, method, path, (ev: any) => fired(`${ev.getName()}:${ev.getPath()}`));
  return { event };
}

const CATCH_UP = '/catch-up';

/**
 * Brings a client's view up to every write completed before the call. A member of an
 * ensemble may answer reads from a state a little behind another member's, as ZooKeeper
 * allows; this client has no sync, but a write of its own is ordered after every write
 * already completed and answered only once its member has applied it.
 */
async function catchUp(c: Client): Promise<void> {
  await call(c, 'setData', CATCH_UP, Buffer.alloc(0), -1);
}

for (const target of targets({ ensemble: true, durable: true })) {
  describe(`node-zookeeper-client against ${target.name}`, () => {
    let server: TestServer;
    let a: Client;
    let b: Client;
    before(async () => {
      server = await target.start({ tickTime: 200, minSessionTimeout: 400 });
      a = await connect(server, 0);
      b = await connect(server, 1);
      await call(a, 'create', CATCH_UP, Buffer.alloc(0), OPEN, CreateMode.PERSISTENT);
    });
    after(async () => {
      a?.close();
      b?.close();
      await server?.stop();
    });

    test('create in every mode, exists, getData, setData with versions', async () => {
      assert.equal(await call(a, 'create', '/p', Buffer.from('one'), OPEN, CreateMode.PERSISTENT), '/p');
      assert.equal(await code(call(a, 'create', '/p', Buffer.from('x'), OPEN, CreateMode.PERSISTENT)), Exception.NODE_EXISTS);
      assert.equal(await code(call(a, 'create', '/missing/child', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT)), Exception.NO_NODE);
      const seq1 = await call<string>(a, 'create', '/p/s-', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT_SEQUENTIAL);
      const seq2 = await call<string>(a, 'create', '/p/s-', Buffer.alloc(0), OPEN, CreateMode.EPHEMERAL_SEQUENTIAL);
      assert.equal(seq1, '/p/s-0000000000');
      assert.equal(seq2, '/p/s-0000000001');
      await call(a, 'create', '/p/e', Buffer.alloc(0), OPEN, CreateMode.EPHEMERAL);
      assert.equal(await code(call(a, 'create', '/p/e/child', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT)), Exception.NO_CHILDREN_FOR_EPHEMERALS);
      const stat = await call(a, 'exists', '/p');
      assert.equal(stat.numChildren, 3);
      assert.equal(await call(a, 'exists', '/nope'), null);
      const [data, st] = await call<[Buffer, any]>(a, 'getData', '/p');
      assert.equal(data.toString(), 'one');
      assert.equal(st.version, 0);
      const st2 = await call(a, 'setData', '/p', Buffer.from('two'), 0);
      assert.equal(st2.version, 1);
      assert.equal(await code(call(a, 'setData', '/p', Buffer.from('three'), 0)), Exception.BAD_VERSION);
      await catchUp(b);
      const [data2] = await call<[Buffer, any]>(b, 'getData', '/p');
      assert.equal(data2.toString(), 'two');
      const [children, pstat] = await call<[string[], any]>(b, 'getChildren', '/p');
      assert.deepEqual([...children].sort(), ['e', 's-0000000000', 's-0000000001']);
      assert.equal(pstat.numChildren, 3);
    });

    test('delete: NOTEMPTY, NONODE, BADVERSION', async () => {
      await call(a, 'create', '/d', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT);
      await call(a, 'create', '/d/x', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT);
      assert.equal(await code(call(a, 'remove', '/d', -1)), Exception.NOT_EMPTY);
      assert.equal(await code(call(a, 'remove', '/d/x', 3)), Exception.BAD_VERSION);
      await call(a, 'remove', '/d/x', 0);
      assert.equal(await code(call(a, 'remove', '/d/x', -1)), Exception.NO_NODE);
      await call(a, 'remove', '/d', -1);
    });

    test('ACLs with digest auth: NOAUTH until authenticated', async () => {
      const c = await connect(server, 2);
      c.addAuthInfo('digest', Buffer.from('alice:secret'));
      const acl = [new zk.ACL(zk.Permission.ALL, new zk.Id('auth', ''))];
      await call(c, 'create', '/secret', Buffer.from('s'), acl, CreateMode.PERSISTENT);
      await catchUp(b);
      assert.equal(await code(call(b, 'getData', '/secret')), Exception.NO_AUTH);
      const [acls] = await call<[any[], any]>(c, 'getACL', '/secret');
      assert.equal(acls.length, 1);
      assert.equal(acls[0].id.scheme, 'digest');
      assert.match(acls[0].id.id, /^alice:/);
      const [d] = await call<[Buffer]>(c, 'getData', '/secret');
      assert.equal(d.toString(), 's');
      assert.equal(await code(call(b, 'setACL', '/secret', OPEN, -1)), Exception.NO_AUTH);
      await call(c, 'setACL', '/secret', OPEN, 0);
      await catchUp(b);
      const [d2] = await call<[Buffer]>(b, 'getData', '/secret');
      assert.equal(d2.toString(), 's');
      c.close();
    });

    test('transaction (multi): success and atomic failure', async () => {
      const results = await new Promise<any[]>((resolve, reject) =>
        a
          .transaction()
          .create('/t', Buffer.from('t'))
          .create('/t/1', Buffer.alloc(0))
          .setData('/t', Buffer.from('u'), 0)
          .check('/t/1', 0)
          .commit((err: any, res: any[]) => (err ? reject(err) : resolve(res))),
      );
      assert.equal(results.length, 4);
      const failed = await new Promise<{ err: any; res: any[] }>((resolve) =>
        a
          .transaction()
          .create('/t/2', Buffer.alloc(0))
          .remove('/t/nope', -1)
          .commit((err: any, res: any[]) => resolve({ err, res })),
      );
      assert.ok(failed.err, 'a multi with a failing op fails');
      assert.equal(await call(a, 'exists', '/t/2'), null, 'nothing of a failed multi is applied');
      const [data] = await call<[Buffer]>(a, 'getData', '/t');
      assert.equal(data.toString(), 'u');
    });

    test('watches fire once, in order, before the new value is readable', async () => {
      await call(a, 'create', '/w', Buffer.from('0'), OPEN, CreateMode.PERSISTENT);
      await catchUp(b);
      const seen: string[] = [];
      const record = (w: { event: Promise<string> }) => w.event.then((ev) => void seen.push(ev));
      const events = [
        record(await watch(b, 'getData', '/w')),
        record(await watch(b, 'getChildren', '/w')),
        record(await watch(b, 'exists', '/w/later')),
      ];
      await call(a, 'setData', '/w', Buffer.from('1'), -1);
      await call(a, 'setData', '/w', Buffer.from('2'), -1);
      await call(a, 'create', '/w/later', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT);
      await Promise.all(events);
      // A second event for a one-time watch would come before the reply to a later request.
      await catchUp(b);
      assert.deepEqual(seen, ['NODE_DATA_CHANGED:/w', 'NODE_CREATED:/w/later', 'NODE_CHILDREN_CHANGED:/w']);
      const [data] = await call<[Buffer]>(b, 'getData', '/w');
      assert.equal(data.toString(), '2');
      assert.equal(Event.NODE_DATA_CHANGED, 3);
    });

    test('mkdirp', async () => {
      await call(a, 'mkdirp', '/m/n/o', Buffer.from('x'));
      await catchUp(b);
      const [data] = await call<[Buffer]>(b, 'getData', '/m/n/o');
      assert.equal(data.toString(), 'x');
    });

    // One level only: with async 3 the library's listSubTreeBFS stops at the children
    // (alexguan/node-zookeeper-client#127), against ZooKeeper as well.
    test('listSubTreeBFS lists a node and its children; removeRecursive deletes them, another session\'s ephemeral included', async () => {
      await call(a, 'create', '/r', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT);
      await call(a, 'create', '/r/p', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT);
      const seq = await call<string>(a, 'create', '/r/s-', Buffer.alloc(0), OPEN, CreateMode.PERSISTENT_SEQUENTIAL);
      await call(a, 'create', '/r/e', Buffer.alloc(0), OPEN, CreateMode.EPHEMERAL);
      await catchUp(b);
      const tree = await call<string[]>(b, 'listSubTreeBFS', '/r');
      assert.equal(tree[0], '/r');
      assert.deepEqual(tree.slice(1).sort(), ['/r/e', '/r/p', seq]);
      assert.equal(await code(call(b, 'listSubTreeBFS', '/r/none')), Exception.NO_NODE);
      await call(b, 'removeRecursive', '/r');
      await catchUp(a);
      assert.equal(await call(a, 'exists', '/r'), null);
      assert.equal(await code(call(a, 'removeRecursive', '/r')), Exception.NO_NODE);
    });

    test('an ephemeral vanishes for others when its session closes', async () => {
      const c = await connect(server, 2);
      await call(c, 'create', '/eph', Buffer.alloc(0), OPEN, CreateMode.EPHEMERAL);
      await catchUp(b);
      const deleted = await watch(b, 'exists', '/eph');
      c.close();
      assert.equal(await deleted.event, 'NODE_DELETED:/eph');
      assert.equal(await call(b, 'exists', '/eph'), null);
    });

    test('an ephemeral vanishes when its session expires', async () => {
      const c = await connect(server, 2, 800);
      await call(c, 'create', '/expiring', Buffer.alloc(0), OPEN, CreateMode.EPHEMERAL);
      await catchUp(b);
      const deleted = await watch(b, 'exists', '/expiring');
      // Silence the client without closing its session: its socket is destroyed and it may not reconnect.
      const manager = c.connectionManager;
      manager.close = () => {};
      manager.connect = () => {};
      manager.socket?.destroy();
      assert.equal(await deleted.event, 'NODE_DELETED:/expiring');
    });
  });
}
