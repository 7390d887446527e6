/**
 * Faults of a three-member ensemble of real processes under a write load: the leader
 * SIGKILLed (in a five-member one too, two members down at once) or SIGSTOPped, partitions
 * (total, asymmetric, minority) through the link proxies, read-only mode while cut off, a
 * follower left behind a compacted log, a paused leader's reads, a flapping follower-to-leader
 * link. Writers record every acknowledged create; afterwards every member must have every
 * acknowledged create and nothing that was never attempted, and all members the same.
 *
 * ENSEMBLE_FAULT_ROUNDS (default 1) repeats the leader faults; test/long runs more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpCode } from '../../src/protocol/opcodes.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import type { DataResponse } from '../../src/protocol/records.js';
import { sleep } from '../support/client-faults.js';
import { fourLetter } from '../support/zookeeper.js';
import { freePort } from '../support/ports.js';
import type { TestEnsemble } from '../support/ensemble.js';
import {
  assertWritesOnEveryMember,
  clientPorts,
  CreateLoad,
  createBatch,
  describeRecord,
  EnsembleClient,
  childrenOn,
  connectWithin,
  ensureNode,
  mergeRecords,
  moreAcked,
  OPEN_ACL,
  type WriteRecord,
  waitForMode,
  withEnsemble,
} from '../support/ensemble-workload.js';

const ROUNDS = Number(process.env.ENSEMBLE_FAULT_ROUNDS ?? 1);
const others = (ids: number[], id: number) => ids.filter((x) => x !== id);

/**
 * SIGKILL of the leader under a write load, then of each next leader until a minority is down
 * (one of three, two of five): the rest elect and keep acknowledging writes; the killed come
 * back and catch up, and no acknowledged write is lost on any member.
 */
async function killLeadersUnderLoad(t: { diagnostic(s: string): void }, size: number): Promise<void> {
  const minority = Math.floor((size - 1) / 2);
  await withEnsemble({ size, cfg: { snapCount: 500 } }, async (e) => {
    const ids = [...e.members.keys()];
    await e.waitForLeader();
    await ensureNode(clientPorts(e), '/load');
    const load = new CreateLoad({ ports: clientPorts(e), parent: '/load', writers: 3, depth: 4 });
    await moreAcked(load, 200, 30_000, 'before the kill');
    for (let round = 0; round < ROUNDS; round++) {
      const killed: number[] = [];
      while (killed.length < minority) {
        const leader = await e.waitForLeader();
        await e.kill(leader);
        killed.push(leader);
        const rest = ids.filter((id) => !killed.includes(id));
        const next = await e.waitForLeader(30_000, rest);
        await moreAcked(load, 200, 30_000, `round ${round}: with ${killed.join(', ')} of ${size} killed (${next} leads)`);
      }
      for (const id of killed) await e.startMember(id);
      await e.waitForLeader();
      await moreAcked(load, 100, 30_000, `round ${round}: with ${killed.join(', ')} back`);
    }
    const record = await load.stop();
    t.diagnostic(describeRecord(record));
    await assertWritesOnEveryMember(e, '/load', record);
  });
}

for (const size of [3, 5]) {
  const minority = Math.floor((size - 1) / 2);
  const what = minority === 1 ? `${size} members` : `${size} members: the leader, then the new leader, ${minority} down at once and the rest still writing`;
  test(`SIGKILL of the leader under a write load loses no acknowledged write (${what}; ${ROUNDS} rounds)`, { timeout: 120_000 + size * ROUNDS * 20_000 }, (t) =>
    killLeadersUnderLoad(t, size),
  );
}

test('SIGSTOP of the leader past the election timeout: the others elect, it steps down on SIGCONT, and its clients writes never succeed and vanish', { timeout: 180_000 }, async (t) => {
  await withEnsemble({ size: 3 }, async (e) => {
    const ids = [...e.members.keys()];
    await e.waitForLeader();
    await ensureNode(clientPorts(e), '/load');
    const load = new CreateLoad({ ports: clientPorts(e), parent: '/load', writers: 3, depth: 4 });
    const batches: WriteRecord[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await moreAcked(load, 100, 30_000, `round ${round}: before the stop`);
      const leader = await e.waitForLeader();
      const port = e.member(leader).clientPort;
      // Connected before the stop, so the creates go out to the stopped process (the kernel queues them).
      const client = await EnsembleClient.open({ ports: [port], heartbeat: false });
      await e.signal(leader, 'SIGSTOP');
      const batch = createBatch(client, '/load', `stopped${round}`, 20);
      await sleep(2000);
      await e.waitForLeader(30_000, others(ids, leader));
      await moreAcked(load, 100, 30_000, `round ${round}: with member ${leader} stopped`);
      await e.signal(leader, 'SIGCONT');
      await waitForMode(e, leader, ['follower']);
      await e.waitForLeader();
      await batch.done;
      t.diagnostic(`round ${round}: creates sent to the stopped leader ${leader}: ${describeRecord(batch.record)}`);
      batches.push(batch.record);
    }
    const record = mergeRecords(await load.stop(), ...batches);
    t.diagnostic(describeRecord(record));
    await assertWritesOnEveryMember(e, '/load', record);
  });
});

/**
 * A partition that leaves the old leader without a quorum: the others elect a new leader and
 * keep taking writes, creates sent to the old leader as the partition begins are not
 * acknowledged while it lasts, and after healing it follows and has what the others have.
 */
async function partitionOldLeader(
  t: { diagnostic(s: string): void },
  cut: (e: TestEnsemble, leader: number, rest: number[]) => void,
): Promise<void> {
  await withEnsemble({ size: 3 }, async (e) => {
    const ids = [...e.members.keys()];
    await e.waitForLeader();
    await ensureNode(clientPorts(e), '/load');
    const load = new CreateLoad({ ports: clientPorts(e), parent: '/load', writers: 3, depth: 4 });
    const batches: WriteRecord[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await moreAcked(load, 100, 30_000, `round ${round}: before the partition`);
      const leader = await e.waitForLeader();
      const rest = others(ids, leader);
      // A session on the leader from before the partition; its creates go out right after the cut.
      const client = await EnsembleClient.open({ ports: [e.member(leader).clientPort], reconnectWithinMs: 2000, heartbeat: false });
      cut(e, leader, rest);
      const batch = createBatch(client, '/load', `cut${round}`, 10);
      await e.waitForLeader(30_000, rest);
      await moreAcked(load, 100, 30_000, `round ${round}: majority without member ${leader}`);
      // Check-quorum: the old leader gives up leading once it does not hear from a majority.
      await waitForMode(e, leader, ['not serving', 'follower']);
      const ackedWhileCut = [...batch.record.acked];
      e.heal();
      await e.waitForLeader();
      await waitForMode(e, leader, ['follower']);
      await batch.done;
      t.diagnostic(`round ${round}: creates sent to the old leader ${leader} while cut off: ${describeRecord(batch.record)}`);
      assert.deepEqual(ackedWhileCut, [], `round ${round}: member ${leader} acknowledged creates while cut off from the quorum`);
      batches.push(batch.record);
    }
    await moreAcked(load, 100, 30_000, 'after healing');
    const record = mergeRecords(await load.stop(), ...batches);
    t.diagnostic(describeRecord(record));
    await assertWritesOnEveryMember(e, '/load', record);
  });
}

test('the leader cut off from both followers (both directions): the majority elects and writes, the old leader acknowledges nothing, then rejoins and converges', { timeout: 120_000 + ROUNDS * 60_000 }, (t) =>
  partitionOldLeader(t, (e, leader, rest) => e.partition([leader], rest, 'refuse')),
);

test('asymmetric: the followers cannot reach the leader (it still reaches them, silently lost replies)', { timeout: 120_000 + ROUNDS * 60_000 }, (t) =>
  partitionOldLeader(t, (e, leader, rest) => {
    for (const f of rest) e.link(f, leader).set('silent');
  }),
);

test('asymmetric: the leader cannot reach the followers (they still reach it)', { timeout: 120_000 + ROUNDS * 60_000 }, (t) =>
  partitionOldLeader(t, (e, leader, rest) => {
    for (const f of rest) e.link(leader, f).set('refuse');
  }),
);

test('a follower cut off from the others: the majority keeps writing, the follower stops serving without raising its term (pre-vote), then catches up without deposing the leader (same leader, same term)', { timeout: 120_000 }, async (t) => {
  await withEnsemble({ size: 3 }, async (e) => {
    const ids = [...e.members.keys()];
    await e.waitForLeader();
    await ensureNode(clientPorts(e), '/load');
    const load = new CreateLoad({ ports: clientPorts(e), parent: '/load', writers: 3, depth: 4 });
    await moreAcked(load, 100, 30_000, 'before the partition');
    const leader = await e.waitForLeader();
    const term = Number((await e.mntr(leader)).pk_term);
    const follower = others(ids, leader)[0];
    e.partition([follower], others(ids, follower), 'refuse');
    // Not serving: it has stopped hearing the leader and campaigns (by then at least once).
    await waitForMode(e, follower, ['not serving']);
    await moreAcked(load, 200, 30_000, `with member ${follower} cut off`);
    // mntr answers while not serving; a real election would have raised its term.
    assert.equal(Number((await e.mntr(follower)).pk_term), term, `member ${follower} raised its term while cut off: it stood for election without a pre-vote`);
    e.heal();
    await waitForMode(e, follower, ['follower']);
    const after = await e.waitForLeader();
    await moreAcked(load, 100, 30_000, 'after healing');
    const record = await load.stop();
    const termAfter = Number((await e.mntr(after)).pk_term);
    t.diagnostic(`${describeRecord(record)}; leader ${leader} in term ${term} before, ${after} in term ${termAfter} after`);
    assert.equal(after, leader, `the rejoining member ${follower} deposed the healthy leader ${leader}`);
    assert.equal(termAfter, term, `the term moved on (${term} -> ${termAfter}) when member ${follower} rejoined`);
    assert.equal(Number((await e.mntr(follower)).pk_term), term);
    await assertWritesOnEveryMember(e, '/load', record);
  });
});

test('read-only mode: a member cut off from the quorum serves read-only sessions only, and read-write again once healed', { timeout: 120_000 }, async () => {
  await withEnsemble({ size: 3, cfg: { 'readonlymode.enabled': true } }, async (e) => {
    const ids = [...e.members.keys()];
    const leader = await e.waitForLeader();
    const follower = others(ids, leader)[0];
    const port = e.member(follower).clientPort;
    await ensureNode(clientPorts(e), '/ro', 'before');
    // The follower has it before the partition.
    assert.ok((await childrenOn(port, '/')).includes('ro'));
    assert.equal(await fourLetter(port, 'isro'), 'rw');

    e.partition([follower], others(ids, follower), 'refuse');
    await waitForMode(e, follower, ['read-only']);
    assert.equal(await fourLetter(port, 'isro'), 'ro');
    // A read-write client is turned away.
    await assert.rejects(connectWithin(port, { readOnly: false }, 10_000));
    const ro = await connectWithin(port, { readOnly: true }, 10_000);
    assert.equal(ro.session.readOnly, true);
    const read = await ro.request({ type: OpCode.getData, path: '/ro', watch: false });
    assert.equal(read.err, 0);
    assert.equal((read.response as DataResponse).data?.toString(), 'before');
    const set = await ro.request({ type: OpCode.setData, path: '/ro', data: Buffer.from('x'), version: -1 });
    assert.equal(set.err, ErrorCode.NOTREADONLY);
    const create = await ro.request({ type: OpCode.create, path: '/ro2', data: Buffer.alloc(0), acl: OPEN_ACL, flags: 0 });
    assert.equal(create.err, ErrorCode.NOTREADONLY);

    // The majority goes on writing meanwhile.
    const majority = await EnsembleClient.open({ ports: clientPorts(e, others(ids, follower)) });
    assert.equal((await majority.request({ type: OpCode.setData, path: '/ro', data: Buffer.from('after'), version: -1 })).err, 0);
    await majority.close();

    e.heal();
    await waitForMode(e, follower, ['follower']);
    assert.equal(await fourLetter(port, 'isro'), 'rw');
    // The read-only session ends with the quorum's return: its client must find a read-write member.
    await ro.whenClosed();
    const rw = await EnsembleClient.open({ ports: [port] });
    const [, got] = await rw.pipeline([
      { type: OpCode.sync, path: '/ro' },
      { type: OpCode.getData, path: '/ro', watch: false },
    ]);
    assert.equal((got.response as DataResponse).data?.toString(), 'after');
    assert.equal((await rw.request({ type: OpCode.setData, path: '/ro', data: Buffer.from('rw'), version: -1 })).err, 0);
    await rw.close();
  });
});

test('a paused leader answers no stale read: sync + getData sent to it while stopped sees what the others committed meanwhile, or fails', { timeout: 120_000 }, async (t) => {
  await withEnsemble({ size: 3 }, async (e) => {
    const ids = [...e.members.keys()];
    const leader = await e.waitForLeader();
    const ports = clientPorts(e);
    await ensureNode(ports, '/s', 'old');
    const reader = await EnsembleClient.open({ ports: [e.member(leader).clientPort], heartbeat: false });
    await e.signal(leader, 'SIGSTOP');
    await e.waitForLeader(30_000, others(ids, leader));
    const writer = await EnsembleClient.open({ ports: clientPorts(e, others(ids, leader)) });
    assert.equal((await writer.request({ type: OpCode.setData, path: '/s', data: Buffer.from('new'), version: -1 })).err, 0);
    await writer.close();
    // Sent after the write was acknowledged; the stopped leader reads it when it runs again.
    const read = reader.pipeline([
      { type: OpCode.sync, path: '/s' },
      { type: OpCode.getData, path: '/s', watch: false },
    ]);
    read.catch(() => {});
    await sleep(500);
    await e.signal(leader, 'SIGCONT');
    const outcome = await read.then(
      ([, r]) => (r.err === 0 ? (r.response as DataResponse).data?.toString() : `error ${r.err}`),
      (err: Error) => `failed: ${err.message}`,
    );
    t.diagnostic(`read on the resumed leader: ${outcome}`);
    assert.notEqual(outcome, 'old', 'stale read: the resumed old leader answered with a value overwritten while it was stopped');
    await reader.close();
  });
});

for (const away of ['killed', 'cut off'] as const) {
  test(`a follower ${away} while the leader compacts its log past it catches up from the leader's snapshot`, { timeout: 240_000 }, async (t) => {
    await withEnsemble({ size: 3, cfg: { snapCount: 1000 } }, async (e) => {
      const ids = [...e.members.keys()];
      const leader = await e.waitForLeader();
      const follower = others(ids, leader)[0];
      await ensureNode(clientPorts(e), '/load');
      const load = new CreateLoad({ ports: clientPorts(e, others(ids, follower)), parent: '/load', writers: 4, depth: 32 });
      await moreAcked(load, 200, 30_000, 'before the follower goes');
      if (away === 'killed') await e.kill(follower);
      else e.partition([follower], others(ids, follower), 'refuse');
      // The leader keeps 10,000 entries behind its newest snapshot: go well past that.
      await moreAcked(load, 13_000, 180_000, `with member ${follower} ${away}`);
      if (away === 'killed') await e.startMember(follower);
      else e.heal();
      await waitForMode(e, follower, ['follower']);
      await moreAcked(load, 200, 30_000, `with member ${follower} back`);
      const record = await load.stop();
      t.diagnostic(describeRecord(record));
      await assertWritesOnEveryMember(e, '/load', record);
      assert.match(e.member(follower).log, /snapshot installed/, `member ${follower} caught up without a snapshot from the leader: the scenario did not happen`);
    });
  });
}

test('a session\'s pipelined writes through a follower apply as a prefix when its link to the leader flaps', { timeout: 120_000 }, async (t) => {
  await withEnsemble({ size: 3 }, async (e) => {
    const ids = [...e.members.keys()];
    const leader = await e.waitForLeader();
    const follower = others(ids, leader)[0];
    await ensureNode(clientPorts(e), '/fifo');
    const client = await EnsembleClient.open({ ports: clientPorts(e, [follower, ...others(ids, follower)]) });
    // Each create with the connection it went out on, in the order sent.
    const sent: { connection: number; name: string; outcome: string }[] = [];
    const inFlight = new Set<Promise<void>>();
    const send = (name: string) => {
      const s = { connection: 0, name, outcome: 'pending' };
      sent.push(s);
      const p = client
        .request({ type: OpCode.create, path: `/fifo/${name}`, data: Buffer.alloc(0), acl: OPEN_ACL, flags: 0 }, () => (s.connection = client.connections))
        .then(
          (r) => void (s.outcome = r.err === 0 ? 'ok' : `error ${r.err}`),
          (err: Error) => void (s.outcome = err.constructor.name),
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    let stop = false;
    const pump = (async () => {
      for (let n = 0; !stop && n < 50_000; n++) {
        if (inFlight.size < 300) send(`k${n}`);
        await sleep(2);
      }
    })();
    // The follower's connection to the leader breaks for a moment, a few times; no election follows.
    for (let i = 0; i < 5; i++) {
      await sleep(500);
      e.link(follower, leader).set('refuse');
      await sleep(30);
      e.link(follower, leader).set('open');
    }
    await sleep(500);
    stop = true;
    await pump;
    await Promise.all([...inFlight]);
    await client.close();

    // On one connection the writes that took effect must be the first ones sent on it: a later one
    // taking effect while an earlier one did not breaks the order of the client's writes.
    const present = new Set(await childrenOn(e.member(leader).clientPort, '/fifo'));
    const gaps: string[] = [];
    for (const connection of new Set(sent.map((s) => s.connection))) {
      const on = sent.filter((s) => s.connection === connection);
      const firstMissing = on.findIndex((s) => !present.has(s.name));
      const after = firstMissing < 0 ? [] : on.slice(firstMissing).filter((s) => present.has(s.name));
      if (after.length > 0) {
        const missing = on.slice(firstMissing).filter((s) => !present.has(s.name));
        gaps.push(`connection ${connection}: ${on[firstMissing].name} (${on[firstMissing].outcome}) and ${missing.length - 1} more never applied, ${after.length} sent after them applied (first ${after[0].name}, ${after[0].outcome})`);
      }
    }
    t.diagnostic(`${sent.length} creates on ${client.connections} connections, ${present.size} applied`);
    assert.deepEqual(gaps, [], 'writes of one session applied out of the order sent');
  });
});

test('a member whose client port is taken exits with an error instead of staying on as a voter without clients', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-port-taken-'));
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const taken = (holder.address() as AddressInfo).port;
  const [peer1, peer2, peer3, client2, client3] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  writeFileSync(join(dir, 'myid'), '1\n');
  writeFileSync(
    join(dir, 'zoo.cfg'),
    [
      `dataDir=${dir}`,
      `server.1=127.0.0.1:${peer1}:0:participant;127.0.0.1:${taken}`,
      `server.2=127.0.0.1:${peer2}:0:participant;127.0.0.1:${client2}`,
      `server.3=127.0.0.1:${peer3}:0:participant;127.0.0.1:${client3}`,
    ].join('\n') + '\n',
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '--config', join(dir, 'zoo.cfg')], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const code = await Promise.race([exited, sleep(10_000).then(() => 'still running' as const)]);
    assert.notEqual(code, 'still running', `the member reported the failure but kept running (peer port ${peer1} open):\n${stderr.slice(-2000)}`);
    assert.notEqual(code, 0);
    assert.match(stderr, /EADDRINUSE/);
  } finally {
    child.kill('SIGKILL');
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
