/**
 * Switching membership by configuration: one and the same application code (join
 * three members, one updates its metadata, one leaves, one dies) runs against gossip
 * members on loopback and against coordinated members of an in-process server, the
 * kind chosen only by the config object given to createMembership. An observer's
 * handler must see the same events, in the same order, with the same shape.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type RunningServer } from '../../src/index.js';
import { createMembership, type MembershipConfig, type MembershipEvent, type MembershipGroup } from '../../src/membership/index.js';
import { freePort } from '../support/ports.js';
import { TcpProxy } from '../support/tcp-proxy.js';

let server: RunningServer;
const proxies: TcpProxy[] = [];
const groups: MembershipGroup[] = [];
before(async () => {
  // Short session timeouts, so a coordinated member that dies is reported within seconds.
  server = await startServer({ port: 0, tickTime: 100, minSessionTimeout: 200, maxSessionTimeout: 10_000 });
});
after(async () => {
  await Promise.all(groups.map((g) => g.close().catch(() => {})));
  await Promise.all(proxies.map((p) => p.close()));
  await server?.close();
});

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * How each kind is configured, and how a member of it dies: a gossip member's sockets
 * close without a leave (as gossip.test.ts fails one); a coordinated member's connection
 * goes through a proxy that drops it and refuses it again, so its session is never ended
 * and times out on the server.
 */
interface Kind {
  config(id: string, meta: string, mortal: boolean): Promise<MembershipConfig>;
  die(group: MembershipGroup): Promise<void>;
}

const kinds: Record<'gossip' | 'coordinated', () => Promise<Kind>> = {
  gossip: async () => {
    const seed = `127.0.0.1:${await freePort()}`;
    let first = true;
    return {
      async config(id, meta) {
        const bind = first ? seed : '127.0.0.1:0';
        first = false;
        return { kind: 'gossip', bind, id, meta: Buffer.from(meta), seeds: [seed] };
      },
      die: (g) => g.close(),
    };
  },
  coordinated: async () => {
    const proxy = await TcpProxy.start(Number(server.connectionString.slice(server.connectionString.lastIndexOf(':') + 1)));
    proxies.push(proxy);
    return {
      async config(id, meta, mortal) {
        const connectionString = mortal ? proxy.connectionString : server.connectionString;
        return { kind: 'coordinated', connectionString, path: '/switch/members', id, meta: Buffer.from(meta), sessionTimeoutMs: 1000 };
      },
      async die() {
        proxy.refuse();
        proxy.cut();
      },
    };
  },
};

/** What the application sees of an event: the same fields whichever kind produced it. */
interface Seen {
  type: string;
  id: string;
  meta: string;
  state: string;
}

/** The application code: nothing in it knows which kind it runs on. */
async function lifecycle(kind: Kind): Promise<{ seen: Seen[]; shapes: string[]; finalView: string[] }> {
  const seen: Seen[] = [];
  const shapes = new Set<string>();
  const handler = (e: MembershipEvent) => {
    // The interface's fields and their types (address is optional: only gossip knows one).
    shapes.add(`${Object.keys(e).sort().join(',')}: id ${typeof e.member.id}, meta ${e.member.meta instanceof Uint8Array}, state ${typeof e.member.state}`);
    seen.push({ type: e.type, id: e.member.id, meta: Buffer.from(e.member.meta).toString(), state: e.member.state });
  };
  const start = async (id: string, meta: string, mortal = false) => {
    const g = await createMembership(await kind.config(id, meta, mortal));
    groups.push(g);
    return g;
  };
  const ids = (g: MembershipGroup) => g.members().map((m) => m.id).sort().join(',');

  const a = await start('a', 'observer');
  for (const type of ['join', 'updated', 'left', 'failed'] as const) a.on(type, handler);
  const b = await start('b', 'v1', true);
  await until(() => ids(a) === 'a,b', 15_000, 'b to join');
  const c = await start('c', 'c1');
  await until(() => ids(a) === 'a,b,c', 15_000, 'c to join');

  await b.update(Buffer.from('v2'));
  await until(() => seen.some((e) => e.type === 'updated'), 15_000, "b's update");
  await c.leave();
  await until(() => seen.some((e) => e.type === 'left'), 15_000, 'c to leave');
  await kind.die(b);
  await until(() => seen.some((e) => e.type === 'failed'), 30_000, 'b to be declared failed');
  const finalView = a.members().map((m) => m.id);
  await a.close();
  return { seen, shapes: [...shapes], finalView };
}

const expected: Seen[] = [
  { type: 'join', id: 'b', meta: 'v1', state: 'alive' },
  { type: 'join', id: 'c', meta: 'c1', state: 'alive' },
  { type: 'updated', id: 'b', meta: 'v2', state: 'alive' },
  { type: 'left', id: 'c', meta: 'c1', state: 'left' },
  { type: 'failed', id: 'b', meta: 'v2', state: 'failed' },
];
const shape = ['member,type: id string, meta true, state string'];

for (const name of ['gossip', 'coordinated'] as const) {
  test(`the same handler sees join, updated, left and failed alike on ${name} membership`, async () => {
    const { seen, shapes, finalView } = await lifecycle(await kinds[name]());
    assert.deepEqual(seen, expected);
    assert.deepEqual(shapes, shape);
    assert.deepEqual(finalView, ['a']);
  });
}

test("a coordinated group's client goes with it: after close, its member is gone from a fresh view at once", async () => {
  const config = (id?: string): MembershipConfig => ({ kind: 'coordinated', connectionString: server.connectionString, path: '/switch/closing', id, sessionTimeoutMs: 10_000 });
  const member = await createMembership(config('m'));
  const watcher = await createMembership(config());
  groups.push(member, watcher);
  assert.deepEqual(watcher.members().map((m) => m.id), ['m']);
  // Closing ends the session (its node goes with it), well before the 10 s timeout could.
  await member.close();
  const fresh = await createMembership(config());
  groups.push(fresh);
  assert.deepEqual(fresh.members(), []);
});
