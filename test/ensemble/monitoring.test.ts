/**
 * The replication fields of mntr, srvr and stat on a three-member ensemble: the leader's
 * term and commit index, and per follower its last heartbeat's age and its lag, sane while
 * healthy; a killed follower's heartbeat age grows and its lag with the writes it misses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OpCode } from '../../src/protocol/opcodes.js';
import { sleep } from '../support/client-faults.js';
import { TestEnsemble } from '../support/ensemble.js';
import { OPEN_ACL, ensureNode } from '../support/ensemble-workload.js';
import { RawClient } from '../support/raw-client.js';
import { fourLetter } from '../support/zookeeper.js';

/** Heartbeats go out every 50 ms: a healthy follower's age stays far below this even on a busy machine. */
const HEALTHY_AGE_MS = 2000;

let e: TestEnsemble;

before(async () => {
  e = await TestEnsemble.start({ size: 3 });
});

after(async () => {
  await e?.close();
});

/** Retries `check` (which throws on failure) until it passes; the last failure if it never does. */
async function eventually(check: () => Promise<void>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${(err as Error).message}\n${e.logs()}`);
      await sleep(100);
    }
  }
}

/** A field of mntr that must be a whole number. */
function int(rows: Record<string, string>, key: string): number {
  const v = rows[key];
  assert.match(v ?? '', /^\d+$/, `mntr ${key} is "${v}"`);
  return Number(v);
}

async function creates(port: number, prefix: string, n: number): Promise<void> {
  const c = await RawClient.connect(port);
  try {
    for (let i = 0; i < n; i++) assert.equal((await c.request({ type: OpCode.create, path: `/mon/${prefix}${i}`, data: Buffer.alloc(0), acl: OPEN_ACL, flags: 0 })).err, 0);
  } finally {
    await c.close();
  }
}

test('healthy: the leader shows term, commit index, and per follower a small heartbeat age and no lag in mntr, srvr and stat; followers agree on term, leader and commit index', async () => {
  const leader = await e.waitForLeader();
  const followers = [1, 2, 3].filter((id) => id !== leader);
  await ensureNode([e.member(leader).clientPort], '/mon');
  await creates(e.member(followers[0]).clientPort, 'h', 20);

  let term = 0;
  let commit = 0;
  await eventually(async () => {
    const m = await e.mntr(leader);
    assert.equal(m.zk_server_state, 'leader');
    assert.equal(int(m, 'pk_server_id'), leader);
    assert.equal(int(m, 'pk_leader'), leader);
    term = int(m, 'pk_term');
    assert.ok(term >= 1, `pk_term ${term}`);
    commit = int(m, 'pk_commit_index');
    // The 21 creates at least, all applied by now.
    assert.ok(commit >= 21, `pk_commit_index ${commit} after 21 acknowledged creates`);
    assert.ok(int(m, 'pk_applied_index') <= commit);
    assert.equal(int(m, 'zk_followers'), 2);
    assert.equal(int(m, 'zk_synced_followers'), 2);
    for (const f of followers) {
      const age = int(m, `pk_peer_${f}_heartbeat_age_ms`);
      assert.ok(age < HEALTHY_AGE_MS, `pk_peer_${f}_heartbeat_age_ms ${age} on a healthy ensemble`);
      // Idle: every follower has the whole log.
      assert.equal(int(m, `pk_peer_${f}_lag`), 0, `pk_peer_${f}_lag`);
      assert.equal(int(m, `pk_peer_${f}_connected`), 1);
    }
    for (const f of followers) {
      const fm = await e.mntr(f);
      assert.equal(fm.zk_server_state, 'follower');
      assert.equal(int(fm, 'pk_leader'), leader);
      assert.equal(int(fm, 'pk_term'), term);
      assert.equal(int(fm, 'pk_commit_index'), commit, `member ${f}'s commit index`);
      // Peer progress is the leader's to know.
      assert.equal(Object.keys(fm).filter((k) => k.startsWith('pk_peer_')).length, 0);
    }
  });

  for (const word of ['srvr', 'stat']) {
    const text = await fourLetter(e.member(leader).clientPort, word);
    assert.match(text, /^Mode: leader$/m, word);
    assert.match(text, new RegExp(`^Server id: ${leader}$`, 'm'), word);
    assert.match(text, new RegExp(`^Leader: ${leader}$`, 'm'), word);
    assert.match(text, new RegExp(`^Term: ${term}$`, 'm'), word);
    const shown = Number(/^Commit index: (\d+)$/m.exec(text)?.[1]);
    assert.ok(shown >= commit, `${word} Commit index ${shown}, mntr said ${commit}`);
    for (const f of followers) {
      const line = new RegExp(`^Peer ${f}: participant, connected, heard (\\d+) ms ago, lag (\\d+), (\\w+)$`, 'm').exec(text);
      assert.ok(line, `${word} has no healthy line for peer ${f}:\n${text}`);
      assert.ok(Number(line[1]) < HEALTHY_AGE_MS, `${word}: peer ${f} heard ${line[1]} ms ago`);
      // Not asserted 0 here, unlike mntr above: a session event may be in flight.
      assert.ok(Number(line[2]) < 100, `${word}: peer ${f} lag ${line[2]}`);
      assert.equal(line[3], 'replicate');
    }
  }
  assert.match(await fourLetter(e.member(leader).clientPort, 'stat'), /^Clients:$/m);
  const fs = await fourLetter(e.member(followers[0]).clientPort, 'srvr');
  assert.match(fs, /^Mode: follower$/m);
  assert.match(fs, new RegExp(`^Leader: ${leader}\nTerm: ${term}$`, 'm'));
  assert.doesNotMatch(fs, /^Peer /m);
});

test('a killed follower: the leader shows its heartbeat age growing, its lag as the writes it missed, unreachable; the live follower stays fresh', async () => {
  const leader = await e.waitForLeader();
  const [dead, live] = [1, 2, 3].filter((id) => id !== leader);
  await ensureNode([e.member(leader).clientPort], '/mon');
  await e.kill(dead);
  await creates(e.member(live).clientPort, 'k', 10);

  let firstAge = 0;
  await eventually(async () => {
    const m = await e.mntr(leader);
    firstAge = int(m, `pk_peer_${dead}_heartbeat_age_ms`);
    assert.ok(firstAge >= HEALTHY_AGE_MS, `pk_peer_${dead}_heartbeat_age_ms ${firstAge} after the kill`);
    assert.ok(int(m, `pk_peer_${dead}_lag`) >= 10, `pk_peer_${dead}_lag ${m[`pk_peer_${dead}_lag`]} after 10 creates it missed`);
    assert.equal(int(m, `pk_peer_${dead}_connected`), 0);
    assert.ok(int(m, `pk_peer_${live}_heartbeat_age_ms`) < HEALTHY_AGE_MS, `the live follower's age ${m[`pk_peer_${live}_heartbeat_age_ms`]}`);
    assert.equal(int(m, `pk_peer_${live}_lag`), 0);
    assert.equal(int(m, 'zk_synced_followers'), 1);
  }, 30_000);
  await sleep(1000);
  const later = int(await e.mntr(leader), `pk_peer_${dead}_heartbeat_age_ms`);
  assert.ok(later > firstAge, `pk_peer_${dead}_heartbeat_age_ms went from ${firstAge} to ${later} in a second`);
  assert.match(await fourLetter(e.member(leader).clientPort, 'srvr'), new RegExp(`^Peer ${dead}: participant, unreachable, heard \\d+ ms ago, lag \\d+, \\w+$`, 'm'));
});
