/**
 * Crash durability of a single server (`pulsekeeper start` without server lines, its data
 * under a temporary directory): SIGKILLed at random points under a write load, sometimes
 * while it is still recovering, and restarted each time. Every acknowledged create must be
 * there after each restart, nothing never attempted may appear, and nothing seen once may
 * vanish later. The same for a whole three-member ensemble killed at once. Snapshots are
 * taken every few hundred writes so recovery reads both snapshots and the log.
 * SIGKILL loses the process, not the page cache: this checks what the server acknowledges
 * against what it recovers, not the disk's fsync.
 *
 * ENSEMBLE_CRASH_ROUNDS (default 5) sets the number of kills; ENSEMBLE_CRASH_SEED replays one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpCode } from '../../src/protocol/opcodes.js';
import { sleep } from '../support/client-faults.js';
import { Rng } from '../support/random.js';
import {
  assertWritesOnEveryMember,
  childrenOn,
  clientPorts,
  compareWrites,
  CreateLoad,
  describeRecord,
  EnsembleClient,
  ensureNode,
  mergeRecords,
  moreAcked,
  OPEN_ACL,
  waitForMode,
  withEnsemble,
  type WriteRecord,
} from '../support/ensemble-workload.js';

const ROUNDS = Number(process.env.ENSEMBLE_CRASH_ROUNDS ?? 5);
const SEED = Number(process.env.ENSEMBLE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

test(`a single server SIGKILLed at random points under a write load keeps every acknowledged write (${ROUNDS} rounds, seed ${SEED})`, { timeout: 120_000 + ROUNDS * 30_000 }, async (t) => {
  await withEnsemble({ size: 1, standalone: true, cfg: { snapCount: 300 } }, async (e) => {
    const rng = new Rng(SEED);
    const ports = clientPorts(e);
    assert.equal(await waitForMode(e, 1, ['standalone']), 'standalone');
    await ensureNode(ports, '/d');
    let record: WriteRecord = mergeRecords();
    let seen = new Set<string>();
    let recoveryKills = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const where = `seed ${SEED} round ${round}`;
      const load = new CreateLoad({ ports, parent: '/d', writers: 3, depth: 8, tag: `r${round}`, timeoutMs: 10_000 });
      // Some acknowledged writes, then the kill at a random moment of the load.
      await moreAcked(load, 1 + rng.int(300), 60_000, where);
      await sleep(rng.int(200));
      const stopped = load.stop();
      await e.kill(1);
      record = mergeRecords(record, await stopped);

      if (rng.chance(0.3)) {
        // Killed again while it recovers.
        recoveryKills++;
        const starting = e.startMember(1);
        await sleep(rng.int(400));
        await e.kill(1);
        await starting.catch(() => {});
      }
      await e.startMember(1);
      await waitForMode(e, 1, ['standalone']);
      const children = await childrenOn(ports[0], '/d');
      const { lost, phantom } = compareWrites(record, children);
      assert.deepEqual(lost, [], `${where}: acknowledged creates missing after the restart`);
      assert.deepEqual(phantom, [], `${where}: creates never attempted present`);
      const have = new Set(children);
      const vanished = [...seen].filter((n) => !have.has(n));
      assert.deepEqual(vanished, [], `${where}: creates seen after an earlier restart are gone`);
      seen = have;
    }
    t.diagnostic(`${describeRecord(record)}; ${seen.size} present at the end; ${recoveryKills} kills during recovery`);
  });
});

test(`a whole ensemble SIGKILLed at once under a write load keeps every acknowledged write (${Math.max(1, Math.round(ROUNDS / 2))} rounds, seed ${SEED})`, { timeout: 120_000 + ROUNDS * 30_000 }, async (t) => {
  await withEnsemble({ size: 3, cfg: { snapCount: 300 } }, async (e) => {
    const rng = new Rng(SEED);
    const ids = [...e.members.keys()];
    const ports = clientPorts(e);
    await e.waitForLeader();
    await ensureNode(ports, '/d');
    let record: WriteRecord = mergeRecords();
    for (let round = 0; round < Math.max(1, Math.round(ROUNDS / 2)); round++) {
      const where = `seed ${SEED} round ${round}`;
      const load = new CreateLoad({ ports, parent: '/d', writers: 3, depth: 8, tag: `r${round}`, timeoutMs: 10_000 });
      await moreAcked(load, 1 + rng.int(300), 60_000, where);
      await sleep(rng.int(200));
      const stopped = load.stop();
      await Promise.all(ids.map((id) => e.kill(id)));
      record = mergeRecords(record, await stopped);
      await Promise.all(ids.map((id) => e.startMember(id)));
      await e.waitForLeader();
      await assertWritesOnEveryMember(e, '/d', record);
    }
    t.diagnostic(describeRecord(record));
  });
});

test('a server restarted with its wall clock set back an hour still takes writes', { timeout: 120_000 }, async () => {
  await withEnsemble({ size: 1, standalone: true }, async (e) => {
    const ports = clientPorts(e);
    await ensureNode(ports, '/before');
    await e.kill(1);
    // The clock steps back (an NTP correction, a VM restored) while the server is down.
    const clockBack = join(e.dir, 'clock-back.mjs');
    writeFileSync(clockBack, 'const now = Date.now;\nDate.now = () => now() - 3_600_000;\n');
    await e.startMember(1, { NODE_OPTIONS: `--import=${clockBack}` });
    const client = new EnsembleClient({ ports, heartbeat: false, reconnectWithinMs: 10_000 });
    try {
      const outcome = await client.request({ type: OpCode.create, path: '/after', data: Buffer.alloc(0), acl: OPEN_ACL, flags: 0 }).then(
        (r) => `error ${r.err}`.replace('error 0', 'created'),
        (err: Error) => `${err.constructor.name}: ${err.message}`,
      );
      assert.equal(outcome, 'created', 'after the restart every proposal (session creation included) is dropped as an already applied copy');
    } finally {
      await client.close().catch(() => {});
    }
  });
});
