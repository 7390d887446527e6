/**
 * Two things zoo.cfg sets, end to end on the wire and compared with Apache ZooKeeper
 * given the same settings: minSessionTimeout/maxSessionTimeout read from the file clamp
 * the timeout a ConnectRequest asks for, and the container and TTL cleaner
 * (znode.container.checkIntervalMs, a system property for ZooKeeper) removes a container
 * once its last child is gone and a TTL node once its TTL has passed without a change,
 * and nothing else.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/index.js';
import { loadZooCfg } from '../../src/server/config.js';
import { CreateMode, EventType, OpCode } from '../../src/protocol/opcodes.js';
import { RawClient } from '../support/raw-client.js';
import { TIMING_SLACK_MS, sleep, until } from '../support/client-faults.js';
import { fourLetter, skipWithoutZooKeeper, startZooKeeper } from '../support/zookeeper.js';

const skip = skipWithoutZooKeeper();
const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const TICK = 200;
const MIN_TIMEOUT = 1500;
const MAX_TIMEOUT = 2500;
const CHECK_INTERVAL = 100;
const TTL = 800;

interface Server {
  port: number;
  stop(): Promise<void>;
}

const servers: Record<string, () => Promise<Server>> = {
  async zookeeper() {
    const zk = await startZooKeeper({
      forceSync: false,
      tickTime: TICK,
      minSessionTimeout: MIN_TIMEOUT,
      maxSessionTimeout: MAX_TIMEOUT,
      extendedTypesEnabled: true,
      jvmArgs: ['-Xmx512m', `-Dznode.container.checkIntervalMs=${CHECK_INTERVAL}`],
    });
    return { port: zk.port, stop: () => zk.stop() };
  },
  async pulsekeeper() {
    const dir = mkdtempSync(join(tmpdir(), 'pk-cfg-'));
    const file = join(dir, 'zoo.cfg');
    writeFileSync(
      file,
      [
        `tickTime=${TICK}`,
        `minSessionTimeout=${MIN_TIMEOUT}`,
        `maxSessionTimeout=${MAX_TIMEOUT}`,
        'extendedTypesEnabled=true',
        `znode.container.checkIntervalMs=${CHECK_INTERVAL}`,
        '4lw.commands.whitelist=*',
      ].join('\n') + '\n',
    );
    const s = await startServer(loadZooCfg(file));
    return { port: s.port, stop: () => s.close().finally(() => rmSync(dir, { recursive: true, force: true })) };
  },
};

/** Asked-for timeouts and what ZooKeeper grants for each with the bounds above. */
const REQUESTED = [-1, 0, 100, MIN_TIMEOUT - 1, MIN_TIMEOUT, 2000, MAX_TIMEOUT, MAX_TIMEOUT + 1, 60_000, 0x7fffffff];
const GRANTED = [MIN_TIMEOUT, MIN_TIMEOUT, MIN_TIMEOUT, MIN_TIMEOUT, MIN_TIMEOUT, 2000, MAX_TIMEOUT, MAX_TIMEOUT, MAX_TIMEOUT, MAX_TIMEOUT];

async function create(c: RawClient, path: string, flags: number, ttl?: number): Promise<void> {
  const r = await c.request(
    ttl !== undefined
      ? { type: OpCode.createTTL, path, data: Buffer.alloc(0), acl: OPEN, flags, ttl }
      : { type: flags === CreateMode.CONTAINER ? OpCode.createContainer : OpCode.create, path, data: Buffer.alloc(0), acl: OPEN, flags },
  );
  assert.equal(r.err, 0, `create ${path}`);
}

for (const [name, start] of Object.entries(servers)) {
  describe(`zoo.cfg session bounds and the container/TTL cleaner on ${name}`, { skip: name === 'zookeeper' && skip }, () => {
    let server: Server;
    before(async () => {
      server = await start();
    });
    after(async () => server?.stop());

    test(`a requested session timeout is clamped to [${MIN_TIMEOUT}, ${MAX_TIMEOUT}]`, async () => {
      const granted: number[] = [];
      for (const timeout of REQUESTED) {
        const c = await RawClient.connect(server.port, { timeout });
        granted.push(c.session.timeOut);
        await c.close();
      }
      assert.deepEqual(granted, GRANTED);
      const conf = await fourLetter(server.port, 'conf');
      assert.match(conf, new RegExp(`^minSessionTimeout=${MIN_TIMEOUT}$`, 'm'));
      assert.match(conf, new RegExp(`^maxSessionTimeout=${MAX_TIMEOUT}$`, 'm'));
    });

    test('an emptied container and an expired TTL node are removed; a used container, a TTL node with a child and a never-used container stay', async () => {
      const c = await RawClient.connect(server.port, { timeout: MAX_TIMEOUT });
      const watcher = await RawClient.connect(server.port, { timeout: MAX_TIMEOUT });
      const exists = async (path: string) => (await c.request({ type: OpCode.exists, path, watch: false })).err === 0;
      // When an event about each node reached the watcher (all are NodeDeleted: checked at the end).
      const deletedAt = new Map<string, number>();
      let recording = true;
      const recorder = (async () => {
        for (let seen = 0; recording && !watcher.closed; ) {
          await watcher.waitForEvents(seen + 1, 50);
          for (; seen < watcher.events.length; seen++) deletedAt.set(watcher.events[seen].path, performance.now());
        }
      })();
      const deleted = (path: string, ms: number) => until(() => deletedAt.has(path), ms, `${path} to be removed`);

      await create(c, '/used', CreateMode.CONTAINER);
      await create(c, '/used/child', CreateMode.PERSISTENT);
      await create(c, '/never', CreateMode.CONTAINER);
      await create(c, '/parent-ttl', CreateMode.PERSISTENT_WITH_TTL, TTL);
      await create(c, '/parent-ttl/child', CreateMode.PERSISTENT);
      const ttlSentAt = performance.now();
      await create(c, '/ttl', CreateMode.PERSISTENT_WITH_TTL, TTL);
      for (const path of ['/used', '/never', '/parent-ttl', '/ttl']) assert.equal((await watcher.request({ type: OpCode.exists, path, watch: true })).err, 0);

      // Several checks within the TTL: nothing goes yet (a late timer may let the TTL run out meanwhile).
      await sleep(TTL / 2);
      assert.deepEqual([...deletedAt.keys()].filter((p) => p !== '/ttl'), [], 'removed before its time');
      await deleted('/ttl', TTL + TIMING_SLACK_MS);
      assert.ok(deletedAt.get('/ttl')! - ttlSentAt >= TTL, `TTL node removed ${Math.round(deletedAt.get('/ttl')! - ttlSentAt)} ms after its create, before its ${TTL} ms TTL`);
      // Children keep a container and a TTL node past its TTL.
      await sleep(4 * CHECK_INTERVAL);
      assert.deepEqual(await Promise.all(['/used', '/never', '/parent-ttl'].map(exists)), [true, true, true]);

      assert.equal((await c.request({ type: OpCode.delete, path: '/used/child', version: -1 })).err, 0);
      assert.equal((await c.request({ type: OpCode.delete, path: '/parent-ttl/child', version: -1 })).err, 0);
      await deleted('/used', TIMING_SLACK_MS);
      await deleted('/parent-ttl', TIMING_SLACK_MS);
      // A container that never had a child is left alone (znode.container.maxNeverUsedIntervalMs is 0).
      await sleep(4 * CHECK_INTERVAL);
      assert.equal(await exists('/never'), true);
      const root = await c.request({ type: OpCode.getChildren, path: '/', watch: false });
      assert.deepEqual([...(root.response as { children: string[] }).children].sort(), ['never', 'zookeeper']);
      recording = false;
      await recorder;
      assert.deepEqual(watcher.events.map((e) => `${e.type}:${e.path}`).sort(), ['/parent-ttl', '/ttl', '/used'].map((p) => `${EventType.NodeDeleted}:${p}`));
      await Promise.all([c.close(), watcher.close()]);
    });
  });
}
