/**
 * The Raft core, one behaviour at a time, with hand-driven ticks and messages on a synchronous
 * in-memory network (test/consensus/cluster.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode } from '../../src/consensus/raft.js';
import type { Entry, MemberId, Message, Restored } from '../../src/consensus/types.js';
import { bootstrap, bytes, Cluster, drain, fresh, raftConfig, text } from './cluster.js';

/** A member restored with a log whose entries have the given terms (entry i+1 has terms[i]). */
function restoredWith(voters: MemberId[], terms: number[], term: number, commit = 0): Restored {
  const entries: Entry[] = terms.map((t, i) => ({ index: i + 1, term: t, kind: 'normal', data: bytes(`e${i + 1}t${t}`) }));
  return { hardState: { term, vote: 0, commit }, entries, bootstrap: bootstrap(voters), applied: 0 };
}

const ofType = <T extends Message['type']>(msgs: Message[], type: T) => msgs.filter((m): m is Message & { type: T } => m.type === type);

function tickUntilCampaign(node: RaftNode, limit = 100): number {
  for (let i = 1; i <= limit; i++) {
    node.tick();
    if (node.role !== 'follower') return i;
  }
  throw new Error('never campaigned');
}

test('a follower campaigns after a randomised election timeout in [electionTicks, 2 * electionTicks)', () => {
  for (const r of [0, 0.5, 0.999]) {
    const node = new RaftNode(raftConfig(1, { random: () => r }), fresh([1, 2, 3]));
    assert.equal(tickUntilCampaign(node), 10 + Math.floor(r * 10));
    assert.equal(node.role, 'pre-candidate');
    assert.equal(node.term, 0, 'pre-vote does not raise the term');
    const out = drain(node);
    assert.deepEqual(
      ofType(out.messages, 'pre-vote').map((m) => [m.to, m.term]),
      [
        [2, 1],
        [3, 1],
      ],
    );
  }
});

test('election: the winner leads, appends an empty entry and everyone commits it', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  for (const [id, n] of c.nodes) {
    assert.equal(n.term, 1);
    assert.equal(n.leader, 1, `member ${id} knows the leader`);
    assert.equal(n.commit, 1);
    assert.deepEqual(c.applied.get(id)!.map((e) => [e.index, e.term, e.kind]), [[1, 1, 'empty']]);
  }
  assert.equal(c.node(2).role, 'follower');
});

test('a single-member ensemble leads itself and commits once its own entries are persisted', () => {
  const node = new RaftNode(raftConfig(1), fresh([1]));
  tickUntilCampaign(node);
  assert.equal(node.role, 'leader');
  const rd = node.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(node.commit, 0, 'not committed before the entry is persisted');
  node.advance(rd);
  assert.equal(node.commit, 1);
  assert.ok(node.propose([bytes('x')]));
  assert.ok(node.readIndex(5));
  const out = drain(node);
  assert.deepEqual(out.committed.map(text), ['<empty>', 'x']);
  assert.deepEqual(out.readStates, [{ index: 1, context: 5 }]);
});

test('one vote per term, and only for a candidate whose log is at least as up to date', () => {
  const voter = new RaftNode(raftConfig(2, { preVote: false }), restoredWith([1, 2, 3], [1, 1], 1));
  const vote = (from: MemberId, term: number, index: number, logTerm: number) => {
    voter.step({ type: 'vote', from, to: 2, term, index, logTerm, transfer: false });
    return ofType(drain(voter).messages, 'vote-resp')[0];
  };
  assert.equal(vote(3, 2, 1, 1).reject, true, 'log behind (shorter, same last term)');
  assert.equal(vote(3, 2, 1, 0).reject, true, 'log behind (older last term)');
  assert.equal(vote(3, 2, 2, 1).reject, false, 'log as up to date');
  assert.equal(vote(1, 2, 5, 1).reject, true, 'already voted for 3 in term 2');
  assert.equal(vote(3, 2, 2, 1).reject, false, 'the same candidate again');
  assert.equal(vote(1, 3, 5, 1).reject, false, 'a new term');

  // The vote survives a restart: it was in the hard state persisted before the grant left.
  const restarted = new RaftNode(raftConfig(2, { preVote: false }), { ...restoredWith([1, 2, 3], [1, 1], 3), hardState: { term: 3, vote: 1, commit: 0 } });
  restarted.step({ type: 'vote', from: 3, to: 2, term: 3, index: 9, logTerm: 9, transfer: false });
  assert.equal(ofType(drain(restarted).messages, 'vote-resp')[0].reject, true);
});

test('a granted vote leaves only after the hard state recording it is persisted', () => {
  const voter = new RaftNode(raftConfig(2, { preVote: false }), fresh([1, 2, 3]));
  voter.step({ type: 'vote', from: 1, to: 2, term: 1, index: 0, logTerm: 0, transfer: false });
  const rd = voter.ready();
  assert.deepEqual(rd.hardState, { term: 1, vote: 1, commit: 0 });
  assert.equal(rd.messagesBeforePersist.length, 0);
  assert.equal(ofType(rd.messages, 'vote-resp').length, 1);
  voter.advance(rd);
});

test('pre-vote: a partitioned member does not raise its term and does not depose the leader when it returns', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  c.tick(100);
  assert.equal(c.node(3).term, 1);
  assert.equal(c.node(3).role, 'pre-candidate');
  c.heal();
  c.tick(30);
  assert.equal(c.node(1).role, 'leader');
  assert.equal(c.node(1).term, 1);
  assert.equal(c.node(3).leader, 1);
});

test('without pre-vote the same partition raises terms and deposes the leader', () => {
  const c = new Cluster([1, 2, 3], [], { preVote: false, checkQuorum: false });
  c.elect(1);
  c.isolate(3);
  c.tick(100);
  assert.ok(c.node(3).term > 5);
  c.heal();
  c.tick(30);
  assert.ok(c.node(1).term > 1, 'the leader learnt a higher term');
});

test('lease: a member that heard from its leader ignores pre-votes; without check-quorum it grants them', () => {
  for (const checkQuorum of [true, false]) {
    const follower = new RaftNode(raftConfig(2, { checkQuorum }), fresh([1, 2, 3]));
    follower.step({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 0, context: 0 });
    drain(follower);
    follower.step({ type: 'pre-vote', from: 3, to: 2, term: 2, index: 0, logTerm: 0, transfer: false });
    const resp = ofType(drain(follower).messages, 'pre-vote-resp');
    if (checkQuorum) assert.equal(resp.length, 0);
    else assert.equal(resp[0].reject, false);
    assert.equal(follower.term, 1);
    // A leadership transfer's vote is not held back by the lease.
    follower.step({ type: 'vote', from: 3, to: 2, term: 2, index: 0, logTerm: 0, transfer: true });
    assert.equal(ofType(drain(follower).messages, 'vote-resp')[0].reject, false);
  }
});

test('check-quorum: a leader cut off from the quorum steps down within an election timeout', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.isolate(1);
  c.tick(21, [1]);
  assert.equal(c.node(1).role, 'follower');
  assert.equal(c.node(1).leader, 0);

  const noCheck = new Cluster([1, 2, 3], [], { checkQuorum: false });
  noCheck.elect(1);
  noCheck.isolate(1);
  noCheck.tick(50, [1]);
  assert.equal(noCheck.node(1).role, 'leader');
});

test('a deposed leader learns the newer term from the answer to its heartbeat and steps down', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.isolate(1);
  c.tick(30, [2, 3]);
  assert.ok([2, 3].some((id) => c.node(id).role === 'leader'));
  const newTerm = c.node(2).term;
  c.heal();
  c.node(1).tick();
  c.run();
  assert.equal(c.node(1).role, 'follower');
  assert.equal(c.node(1).term, newTerm);
});

test('log conflicts: a follower\'s divergent suffix is overwritten after one rejection (fast backtracking)', () => {
  const c = new Cluster([1, 2, 3]);
  c.add(1, new RaftNode(raftConfig(1), restoredWith([1, 2, 3], [1, 1, 4, 4], 4, 2)));
  c.add(3, new RaftNode(raftConfig(3), restoredWith([1, 2, 3], [1, 1, 4, 4], 4, 2)));
  const stale = Array.from({ length: 20 }, (_, i) => (i < 2 ? 1 : 2));
  c.add(2, new RaftNode(raftConfig(2), restoredWith([1, 2, 3], stale, 2, 2)));
  c.elect(1);
  c.tick(2);
  const rejections = ofType(c.sent, 'append-resp').filter((m) => m.from === 2 && m.reject);
  assert.equal(rejections.length, 1);
  const follower = c.node(2);
  assert.equal(follower.lastIndex, 5);
  assert.deepEqual([1, 2, 3, 4, 5].map((i) => follower.termAt(i)), [1, 1, 4, 4, 5]);
  assert.equal(follower.commit, 5);
  assert.deepEqual(c.texts(2), ['e1t1', 'e2t1', 'e3t4', 'e4t4']);
});

class CommitsOldTerms extends RaftNode {
  protected override mayCommitByCounting(index: number): boolean {
    return this.termAt(index) !== undefined;
  }
}

/**
 * Figure 8 of the Raft paper. S1 leads term 4 with [1@1, 2@2]; S5 holds [1@1, 2@3]. S1
 * replicates 2@2 to S2 and S3 (a majority with itself) but not yet its own 3@4.
 */
function figure8(node: (cfg: ReturnType<typeof raftConfig>, r: Restored) => RaftNode) {
  const voters = [1, 2, 3, 4, 5];
  const s1 = node(raftConfig(1), restoredWith(voters, [1, 2], 3, 1));
  tickUntilCampaign(s1);
  for (const kind of ['pre-vote-resp', 'vote-resp'] as const) {
    const term = kind === 'pre-vote-resp' ? 4 : s1.term;
    for (const from of [2, 3, 4]) s1.step({ type: kind, from, to: 1, term, reject: false });
    drain(s1);
  }
  assert.equal(s1.role, 'leader');
  assert.equal(s1.term, 4);
  for (const from of [2, 3]) {
    s1.step({ type: 'append-resp', from, to: 1, term: 4, reject: false, index: 2, hintIndex: 0, hintTerm: 0 });
  }
  drain(s1);
  return s1;
}

test('figure 8: a leader does not commit an entry of an earlier term by counting replicas', () => {
  const s1 = figure8((cfg, r) => new RaftNode(cfg, r));
  assert.equal(s1.commit, 1, 'index 2 (term 2) is on a majority but not committed');

  // Rightly so: S5 (last entry 2@3) can still win term 5 with S2, S3 and S4 and overwrite index 2.
  const s3 = new RaftNode(raftConfig(3, { preVote: false }), restoredWith([1, 2, 3, 4, 5], [1, 2], 4, 1));
  s3.step({ type: 'vote', from: 5, to: 3, term: 5, index: 2, logTerm: 3, transfer: false });
  assert.equal(ofType(drain(s3).messages, 'vote-resp')[0].reject, false);

  // Once an entry of S1's own term is on a majority, both commit.
  for (const from of [2, 3]) {
    s1.step({ type: 'append-resp', from, to: 1, term: 4, reject: false, index: 3, hintIndex: 0, hintTerm: 0 });
  }
  assert.equal(s1.commit, 3);

  // The injected bug commits index 2 at once: the rule above is what prevents it.
  assert.equal(figure8((cfg, r) => new CommitsOldTerms(cfg, r)).commit, 2);
});

test('replication is pipelined up to maxInflight appends and batched by maxMessageBytes', () => {
  const c = new Cluster([1, 2], [], { maxInflight: 2, maxMessageBytes: 100 });
  c.elect(1);
  c.tick(1);
  const leader = c.node(1);
  c.hold = (m) => m.type === 'append' && m.to === 2;
  for (let i = 0; i < 10; i++) assert.ok(leader.propose([bytes(`entry-${i}`.padEnd(40, '.'))]));
  c.run();
  const appends = ofType(c.held, 'append');
  assert.equal(appends.length, 2, 'two appends in flight, then the leader waits');
  for (const a of appends) assert.equal(a.entries.length, 1, 'each append within 100 bytes (entries of about 64)');
  assert.equal(leader.status().peers[0].state, 'replicate');
  c.hold = undefined;
  for (const m of c.held.splice(0)) c.node(m.to).step(m);
  c.run();
  assert.equal(c.texts(2).length, 10);
  assert.equal(leader.commit, 11);
});

test('the leader sends appends before its own fsync, and counts itself only after advance()', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  c.isolate(3);
  const leader = c.node(1);
  leader.propose([bytes('x')]);
  const rd = leader.ready();
  const appends = ofType(rd.messagesBeforePersist, 'append');
  assert.deepEqual(appends.map((m) => m.to).sort(), [2, 3]);
  assert.equal(rd.messages.length, 0);
  c.node(2).step(appends.find((m) => m.to === 2)!);
  const resp = drain(c.node(2));
  assert.equal(resp.early.length, 0, 'a follower acknowledges only after persisting');
  for (const m of resp.messages) leader.step(m);
  assert.equal(leader.commit, 1, 'one follower alone is not a quorum while the leader has not persisted');
  leader.advance(rd);
  assert.equal(leader.commit, 2);
  assert.throws(() => leader.advance(rd), /advance\(\) must be given/);
  leader.ready();
  assert.throws(() => leader.ready(), /before advance/);
});

test('proposals on a follower or learner are forwarded to the leader; without a leader they are dropped', () => {
  const c = new Cluster([1, 2, 3], [4]);
  assert.equal(c.node(2).propose([bytes('lost')]), false);
  c.elect(1);
  c.tick(1);
  assert.ok(c.node(2).propose([bytes('from-2')]));
  assert.ok(c.node(4).propose([bytes('from-4')]));
  c.run();
  assert.equal(ofType(c.sent, 'propose').length, 2);
  for (const id of [1, 2, 3, 4]) assert.deepEqual(c.texts(id), ['from-2', 'from-4']);
});

test('leadership transfer: the leader catches the target up, then it campaigns at once', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  c.isolate(3);
  for (let i = 0; i < 3; i++) c.node(1).propose([bytes(`x${i}`)]);
  c.run();
  c.heal();
  assert.equal(c.node(1).transferLeadership(3), undefined);
  assert.equal(c.node(1).propose([bytes('refused')]), false, 'proposals are refused during a transfer');
  assert.equal(c.node(1).proposeConfigChange({ op: 'add-learner', id: 4, context: 'x' }), 'a leadership transfer is in progress');
  c.run();
  const timeoutNow = c.sent.findIndex((m) => m.type === 'timeout-now');
  const caughtUp = c.sent.findIndex((m) => m.type === 'append-resp' && m.from === 3 && !m.reject && m.index === 4);
  assert.ok(caughtUp >= 0 && caughtUp < timeoutNow, 'timeout-now only once the target has everything');
  assert.equal(c.node(3).role, 'leader');
  assert.equal(c.node(3).term, 2);
  assert.equal(c.node(1).role, 'follower');
  assert.ok(ofType(c.sent, 'vote').filter((m) => m.term === 2).every((m) => m.transfer));
  assert.deepEqual(c.texts(3), ['x0', 'x1', 'x2']);

  assert.equal(c.node(3).transferLeadership(3), 'already the leader');
  assert.equal(c.node(1).transferLeadership(2), 'not the leader');
  assert.equal(c.node(3).transferLeadership(9), 'member 9 is not a voter');
});

test('a leadership transfer to an unreachable member is abandoned after an election timeout', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  c.isolate(3);
  c.node(1).propose([bytes('x')]);
  c.run();
  assert.equal(c.node(1).transferLeadership(3), undefined);
  c.tick(9, [1, 2]);
  assert.equal(c.node(1).propose([bytes('y')]), false);
  c.tick(1, [1, 2]);
  assert.equal(c.node(1).role, 'leader');
  assert.equal(c.node(1).propose([bytes('y')]), true);
});

test('learners receive the log but never campaign or count toward a quorum', () => {
  const c = new Cluster([1, 2, 3], [4]);
  assert.equal(c.node(4).role, 'learner');
  c.tick(100, [4]);
  assert.equal(c.node(4).role, 'learner');
  assert.equal(c.sent.length, 0, 'a learner never campaigns');
  c.elect(1);
  c.node(1).propose([bytes('a')]);
  c.run();
  assert.deepEqual(c.texts(4), ['a']);
  // With both other voters cut off, the learner's acknowledgement does not commit anything.
  c.cut.add('1>2').add('1>3');
  const before = c.node(1).commit;
  c.node(1).propose([bytes('b')]);
  c.run();
  assert.equal(c.node(4).lastIndex, before + 1);
  assert.equal(c.node(1).commit, before);
  assert.equal(c.node(1).status().peers.find((p) => p.id === 4)?.voter, false);
});

test('membership changes: add a learner, promote it, add a voter from an empty bootstrap; every member learns the addresses', () => {
  const c = new Cluster([1, 2, 3]);
  const empty: Restored = { hardState: { term: 0, vote: 0, commit: 0 }, entries: [], bootstrap: { membership: { voters: [], learners: [] }, contexts: {} }, applied: 0 };
  c.add(4, new RaftNode(raftConfig(4), empty));
  c.add(5, new RaftNode(raftConfig(5), empty));
  c.elect(1);
  c.tick(1);
  const leader = c.node(1);
  assert.equal(leader.proposeConfigChange({ op: 'add-learner', id: 4, context: '10.0.0.4:2888' }), undefined);
  assert.equal(leader.proposeConfigChange({ op: 'add-voter', id: 5, context: '10.0.0.5:2888' }), 'a configuration change is still uncommitted');
  c.run();
  assert.equal(c.node(4).role, 'learner');
  assert.equal(leader.proposeConfigChange({ op: 'add-voter', id: 4, context: '10.0.0.4:2888' }), undefined);
  c.run();
  assert.equal(c.node(4).role, 'follower');
  assert.equal(leader.proposeConfigChange({ op: 'add-voter', id: 5, context: '10.0.0.5:2888' }), undefined);
  c.run();
  for (const [id, n] of c.nodes) {
    assert.deepEqual(n.membership(), { voters: [1, 2, 3, 4, 5], learners: [] }, `member ${id}`);
    assert.equal(n.contexts()[4], '10.0.0.4:2888');
    assert.equal(n.contexts()[1], '127.0.0.1:2881');
  }
  const meta = c.node(5).snapshotMeta(c.node(5).applied)!;
  assert.deepEqual(meta.membership.voters, [1, 2, 3, 4, 5]);
  assert.equal(meta.contexts[5], '10.0.0.5:2888');
  // Quorum is now 3 of 5: cut two voters off and commits still happen, cut three and they do not.
  c.cut.add('1>2').add('1>3');
  leader.propose([bytes('q')]);
  c.run();
  assert.deepEqual(c.texts(5), ['q']);
  c.cut.add('1>4');
  const commit = leader.commit;
  leader.propose([bytes('r')]);
  c.run();
  assert.equal(leader.commit, commit);
});

test('membership changes are refused when unsafe or meaningless', () => {
  const c = new Cluster([1, 2, 3]);
  assert.equal(c.node(1).proposeConfigChange({ op: 'remove', id: 2, context: '' }), 'not the leader');
  // The empty entry of term 1 is not committed yet (the other members have not received it).
  c.hold = (m) => m.type === 'append';
  c.elect(1);
  const leader = c.node(1);
  assert.equal(leader.proposeConfigChange({ op: 'remove', id: 2, context: '' }), 'the leader has not yet committed an entry in its term');
  c.hold = undefined;
  for (const m of c.held.splice(0)) c.node(m.to).step(m);
  c.run();
  assert.equal(leader.proposeConfigChange({ op: 'add-voter', id: 2, context: '' }), 'member 2 is already a voter');
  assert.equal(leader.proposeConfigChange({ op: 'add-learner', id: 2, context: '' }), 'member 2 is a voter; remove it first');
  assert.equal(leader.proposeConfigChange({ op: 'remove', id: 7, context: '' }), 'member 7 is not a member');
  assert.equal(leader.proposeConfigChange({ op: 'add-voter', id: 0, context: '' }), 'invalid member id 0');
  assert.match(leader.proposeConfigChange({ op: 'add-voter', id: 4, context: 'x'.repeat(5000) })!, /at most 4096/);

  const solo = new Cluster([1]);
  solo.elect(1);
  solo.tick(1);
  assert.equal(solo.node(1).proposeConfigChange({ op: 'remove', id: 1, context: '' }), 'cannot remove the last voter');
});

test('a configuration takes effect when appended, and is rolled back if its entry is overwritten', () => {
  const follower = new RaftNode(raftConfig(2), fresh([1, 2, 3]));
  const change = (term: number): Entry => ({
    index: 1,
    term,
    kind: 'config',
    change: { op: 'add-learner', id: 4, context: 'x' },
    config: { membership: { voters: [1, 2, 3], learners: [4] }, contexts: { ...bootstrap([1, 2, 3]).contexts, 4: 'x' } },
  });
  follower.step({ type: 'append', from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: [change(1)], commit: 0 });
  drain(follower);
  assert.deepEqual(follower.membership().learners, [4], 'in effect before it commits');
  follower.step({ type: 'append', from: 3, to: 2, term: 2, index: 0, logTerm: 0, entries: [{ index: 1, term: 2, kind: 'empty' }], commit: 0 });
  drain(follower);
  assert.deepEqual(follower.membership().learners, [], 'back to the bootstrap configuration');
  assert.equal(follower.contexts()[4], undefined);
});

test('a leader that removes itself leads until the removal commits, then steps down; the rest elect a new leader', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  assert.equal(c.node(1).proposeConfigChange({ op: 'remove', id: 1, context: '' }), undefined);
  assert.equal(c.node(1).role, 'leader', 'still leading while the removal is uncommitted');
  c.run();
  assert.equal(c.node(1).role, 'follower');
  assert.equal(c.node(1).leader, 0);
  assert.deepEqual(c.node(2).membership().voters, [2, 3]);
  assert.equal(c.node(2).commit, c.node(1).commit, 'the removal commit reached the others before it stepped down');
  c.tick(40);
  const leader = c.leader();
  assert.ok(leader && leader.id !== 1);
  assert.equal(c.node(1).role, 'follower', 'the removed member never campaigns');
  assert.equal(c.node(1).term, 1);
});

test('a member whose removal is not yet committed still helps elect the leader that commits it', () => {
  // Member 1 holds an uncommitted entry removing itself; 2 cannot win without 1's vote, so 1 campaigns.
  const removal: Entry = {
    index: 2,
    term: 1,
    kind: 'config',
    change: { op: 'remove', id: 1, context: '' },
    config: { membership: { voters: [2], learners: [] }, contexts: { 2: bootstrap([2]).contexts[2] } },
  };
  const base = (entries: Entry[]): Restored => ({ hardState: { term: 1, vote: 0, commit: 1 }, entries, bootstrap: bootstrap([1, 2]), applied: 0 });
  const first: Entry = { index: 1, term: 1, kind: 'empty' };
  const c = new Cluster([]);
  c.add(1, new RaftNode(raftConfig(1), base([first, removal])));
  c.add(2, new RaftNode(raftConfig(2), base([first])));
  c.tick(60);
  assert.deepEqual(c.node(2).membership().voters, [2]);
  assert.ok(c.node(2).commit >= 2);
  assert.equal(c.leader()?.id, 2);
});

test('read index: deferred until the leader commits in its term, then confirmed by a heartbeat round to a quorum', () => {
  const c = new Cluster([1, 2, 3]);
  c.hold = (m) => m.type === 'append';
  c.elect(1);
  const leader = c.node(1);
  assert.ok(leader.readIndex(42));
  c.run();
  assert.equal(ofType(c.held, 'heartbeat').filter((m) => m.context > 0).length, 0, 'no read round before the first commit');
  c.hold = undefined;
  for (const m of c.held.splice(0)) c.node(m.to).step(m);
  c.run();
  assert.deepEqual(c.readStates.get(1), [{ index: 1, context: 42 }]);
  const rounds = ofType(c.sent, 'heartbeat').filter((m) => m.context > 0);
  assert.ok(rounds.length >= 1);

  // A leader cut off from the others cannot confirm a read.
  c.isolate(1);
  leader.propose([bytes('x')]);
  leader.readIndex(43);
  c.tick(5, [1]);
  assert.deepEqual(c.readStates.get(1), [{ index: 1, context: 42 }]);
});

test('read index on a follower is forwarded to the leader and answered with its commit index', () => {
  const c = new Cluster([1, 2, 3]);
  assert.equal(c.node(2).readIndex(1), false, 'no leader known');
  c.elect(1);
  c.tick(1);
  c.node(1).propose([bytes('a'), bytes('b')]);
  c.run();
  assert.ok(c.node(2).readIndex(7));
  c.run();
  assert.deepEqual(c.readStates.get(2), [{ index: 3, context: 7 }]);
  assert.equal(ofType(c.sent, 'read-index').length, 1);
});

test('snapshots: a follower that needs compacted entries gets a snapshot, installs it and catches up', () => {
  const c = new Cluster([1, 2, 3], [], { keepBehindSnapshot: 2 });
  c.elect(1);
  c.tick(1);
  c.isolate(3);
  for (let i = 0; i < 10; i++) c.node(1).propose([bytes(`v${i}`)]);
  c.run();
  const leader = c.node(1);
  const meta = leader.snapshotMeta(leader.applied)!;
  assert.equal(meta.index, 11);
  assert.equal(leader.snapshotMeta(leader.applied + 1), undefined);
  leader.snapshotTaken(meta);
  assert.equal(leader.termAt(8), undefined, 'compacted up to 11 - 2');
  assert.equal(leader.termAt(9), 1);
  c.heal();
  c.hold = (m) => m.type === 'snapshot';
  c.tick(1);
  const [snap] = ofType(c.held, 'snapshot');
  assert.deepEqual(snap.snapshot, meta);
  assert.equal(leader.status().peers.find((p) => p.id === 3)?.state, 'snapshot');
  c.hold = undefined;
  const follower = c.node(3);
  follower.step(snap);
  const rd = follower.ready();
  assert.deepEqual(rd.snapshot, meta);
  assert.equal(rd.committed.length, 0, 'the snapshot replaces the entries it covers');
  follower.advance(rd);
  assert.equal(follower.applied, 11);
  assert.equal(follower.lastIndex, 11);
  assert.equal(follower.termAt(10), undefined, 'the log restarts after the snapshot');
  leader.reportSnapshot(3, true);
  c.run();
  leader.propose([bytes('after')]);
  c.tick(2);
  assert.deepEqual(c.texts(3), ['after']);
  assert.equal(leader.status().peers.find((p) => p.id === 3)?.state, 'replicate');
});

test('snapshots: a follower just behind the compaction point still gets entries, not a snapshot', () => {
  const c = new Cluster([1, 2, 3], [], { keepBehindSnapshot: 5 });
  c.elect(1);
  c.tick(1);
  c.isolate(3);
  for (let i = 0; i < 3; i++) c.node(1).propose([bytes(`v${i}`)]);
  c.run();
  c.node(1).snapshotTaken(c.node(1).snapshotMeta(c.node(1).applied)!);
  c.heal();
  c.tick(2);
  assert.equal(ofType(c.sent, 'snapshot').length, 0);
  assert.deepEqual(c.texts(3), ['v0', 'v1', 'v2']);
});

test('restart: a member restored from storage keeps its term, vote, log and configuration', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  c.node(1).proposeConfigChange({ op: 'add-learner', id: 4, context: 'l4' });
  c.run();
  c.node(1).propose([bytes('a')]);
  c.run();
  // Rebuild member 2 from what its Readies persisted.
  const persisted: Entry[] = [];
  const n2 = new RaftNode(raftConfig(2), fresh([1, 2, 3]));
  for (const m of c.sent.filter((m) => m.to === 2)) n2.step(m);
  let hard = { term: 0, vote: 0, commit: 0 };
  while (n2.hasReady()) {
    const rd = n2.ready();
    for (const e of rd.entries) persisted[e.index - 1] = e;
    if (rd.hardState) hard = rd.hardState;
    n2.advance(rd);
  }
  const restarted = new RaftNode(raftConfig(2), { hardState: hard, entries: persisted, bootstrap: bootstrap([1, 2, 3]), applied: 0 });
  assert.equal(restarted.term, 1);
  assert.equal(restarted.commit, 3);
  assert.deepEqual(restarted.membership().learners, [4]);
  assert.deepEqual(drain(restarted).committed.map(text), ['<empty>', '<config>', 'a'], 'committed entries are applied again after a restart');
});

test('reportUnreachable drops a pipelining follower back to probing', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  assert.equal(c.node(1).status().peers[0].state, 'replicate');
  c.node(1).reportUnreachable(2);
  assert.equal(c.node(1).status().peers[0].state, 'probe');
  c.tick(2);
  assert.equal(c.node(1).status().peers[0].state, 'replicate');
});

test('status reports per-peer progress on the leader', () => {
  const c = new Cluster([1, 2, 3], [4]);
  c.elect(1);
  c.tick(1);
  c.isolate(3);
  c.tick(3);
  const s = c.node(1).status();
  assert.equal(s.role, 'leader');
  assert.deepEqual(
    s.peers.map((p) => [p.id, p.voter, p.match, p.state]),
    [
      [2, true, 1, 'replicate'],
      [3, true, 1, 'replicate'],
      [4, false, 1, 'replicate'],
    ],
  );
  assert.equal(s.peers.find((p) => p.id === 3)!.ticksSinceHeard, 3);
  assert.equal(s.peers.find((p) => p.id === 2)!.ticksSinceHeard, 0);
  assert.deepEqual(c.node(2).status().peers, []);
});

test('malformed or misaddressed messages are dropped with a reason, never thrown', () => {
  const node = new RaftNode(raftConfig(2), fresh([1, 2, 3]));
  const base = { from: 1, to: 2, term: 1 };
  const bad: [unknown, RegExp][] = [
    [{ ...base, to: 3, type: 'heartbeat', commit: 0, context: 0 }, /addressed to 3/],
    [{ ...base, from: 2, type: 'heartbeat', commit: 0, context: 0 }, /bad sender/],
    [{ ...base, term: -1, type: 'heartbeat', commit: 0, context: 0 }, /bad term/],
    [{ ...base, type: 'gossip' }, /unknown message type/],
    [{ ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [{ index: 2, term: 1, kind: 'normal', data: bytes('x') }] }, /index 2 where 1/],
    [{ ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [{ index: 1, term: 1, kind: 'config', change: { op: 'remove', id: 3, context: '' } }] }, /without its change and configuration/],
    [{ ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [{ index: 1, term: 5, kind: 'empty' }] }, /out of order/],
    [{ ...base, type: 'propose', entries: [{ index: 0, term: 0, kind: 'empty' }] }, /other than commands/],
    [{ ...base, type: 'snapshot', snapshot: { index: 1, term: 1, membership: { voters: [1, 1], learners: [] }, contexts: {} } }, /malformed snapshot/],
    [null, /not a message/],
  ];
  for (const [m, reason] of bad) assert.match(node.step(m as Message) ?? '', reason);
  assert.equal(node.term, 0);
  assert.equal(node.hasReady(), false);
});

test('bad configuration and inconsistent restored state are refused with clear errors', () => {
  assert.throws(() => new RaftNode(raftConfig(1, { heartbeatTicks: 10 }), fresh([1])), /heartbeatTicks must be below electionTicks/);
  assert.throws(() => new RaftNode(raftConfig(0), fresh([1])), /id must be a positive integer/);
  assert.throws(() => new RaftNode(raftConfig(1), { ...fresh([1]), hardState: { term: 1, vote: 0, commit: 3 } }), /commit 3 is beyond the last entry 0/);
  const gap = restoredWith([1], [1, 1], 1);
  gap.entries[1] = { ...gap.entries[1], index: 5 };
  assert.throws(() => new RaftNode(raftConfig(1), gap), /index 5 where 2 was expected/);
});

test('the leader refuses proposals while its uncommitted entries exceed maxUncommittedBytes', () => {
  const c = new Cluster([1, 2, 3], [], { maxUncommittedBytes: 200 });
  c.elect(1);
  c.tick(1);
  c.isolate(1);
  const leader = c.node(1);
  const entry = bytes('x'.repeat(60));
  assert.ok(leader.propose([entry, entry]));
  assert.equal(leader.propose([entry, entry]), false, 'about 170 bytes uncommitted, 170 more would pass 200');
  c.heal();
  c.run();
  assert.ok(leader.propose([entry, entry]), 'committed entries no longer count');
});

test('reads that arrive before a heartbeat round leaves share it', () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tick(1);
  const before = ofType(c.sent, 'heartbeat').length;
  for (const ctx of [1, 2, 3]) c.node(1).readIndex(ctx);
  c.run();
  assert.equal(ofType(c.sent, 'heartbeat').length - before, 2, 'one round to the two followers');
  assert.deepEqual(c.readStates.get(1)!.map((r) => r.context), [1, 2, 3]);
});
