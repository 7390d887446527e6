/**
 * node-zookeeper-client reconnecting on its own, through a TCP proxy that cuts its
 * connection, against Apache ZooKeeper (proving the test), pulsekeeper (in memory and
 * on the durable log) and a pulsekeeper ensemble: it reattaches its session once, sends setWatches (numbered
 * like any request, so the server must echo its xid) and hears of the change it missed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { targets, type TestServer } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const zk = require('node-zookeeper-client');
type Client = any;

const WAIT_MS = 10_000;

function connect(connectionString: string): Promise<Client> {
  const c = zk.createClient(connectionString, { sessionTimeout: 8000, spinDelay: 100, retries: 0 });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), WAIT_MS);
    c.once('connected', () => {
      clearTimeout(t);
      resolve(c);
    });
    c.connect();
  });
}

function call<T = any>(c: Client, method: string, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => c[method](...args, (err: any, ...rest: unknown[]) => (err ? reject(err) : resolve(rest[0] as T))));
}

/** Resolves with get()'s first value other than undefined; fails after WAIT_MS. */
async function waitFor<T>(what: string, get: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const target of targets({ ensemble: true, durable: true })) {
  describe(`node-zookeeper-client reconnecting to ${target.name}`, () => {
    let server: TestServer;
    let proxy: TcpProxy | undefined;
    const clients: Client[] = [];
    before(async () => {
      server = await target.start();
    });
    after(async () => {
      for (const c of clients) c.close();
      await proxy?.close();
      await server?.stop();
    });

    test('a cut connection: one reconnect, same session, the change made meanwhile fires its watch', async () => {
      proxy = await TcpProxy.start(server.port);
      const watcher = await connect(proxy.connectionString);
      clients.push(watcher);
      const writer = await connect(`127.0.0.1:${server.ports[1 % server.ports.length]}`);
      clients.push(writer);
      await call(writer, 'create', '/r', Buffer.from('0'));
      // On an ensemble the watcher's member may not have applied the create yet.
      await waitFor('/r on the watcher\'s server', async () => ((await call(watcher, 'exists', '/r')) ? true : undefined));
      let fired: string | undefined;
      await call(watcher, 'getData', '/r', (ev: any) => (fired = `${ev.getName()}:${ev.getPath()}`));
      const session = watcher.getSessionId().toString('hex');
      const states: string[] = [];
      watcher.on('state', (s: unknown) => states.push(String(s)));

      // The change happens while the watcher cannot connect: only its setWatches can tell it.
      proxy.refuse();
      proxy.cut();
      await waitFor('the watcher to notice', () => (states.length > 0 ? true : undefined));
      await call(writer, 'setData', '/r', Buffer.from('1'), -1);
      proxy.accept();

      assert.equal(await waitFor('the watch event', () => fired), 'NODE_DATA_CHANGED:/r');
      // A client whose setWatches reply it cannot match would drop the connection and come back, over and over.
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(states, ['DISCONNECTED[0]', 'SYNC_CONNECTED[3]']);
      assert.equal(watcher.getSessionId().toString('hex'), session);
    });
  });
}
