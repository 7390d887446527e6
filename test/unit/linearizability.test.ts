import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkLinearizable,
  registerModel,
  type Model,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
  type RegisterState,
} from '../support/linearizability.js';
import { Rng } from '../support/random.js';

type RegisterOperation = Operation<RegisterInput, RegisterOutput>;
const model = registerModel('init');
// The long run (test/long/linearizability-long.test.ts) raises these.
const GENERATED_SEEDS = Number(process.env.LINEARIZABILITY_SEEDS ?? 150);
const SMALL_SEEDS = Number(process.env.LINEARIZABILITY_SMALL_SEEDS ?? 400);

// Builders; a missing return time means the outcome is unknown.
const write = (client: number, value: string, call: number, ret?: number, key = '/r'): RegisterOperation =>
  ret === undefined ? { key, client, input: { kind: 'write', value }, call } : { key, client, input: { kind: 'write', value }, call, return: ret, output: { kind: 'ok' } };
const read = (client: number, call: number, ret: number, value: string, version: number, key = '/r'): RegisterOperation => ({
  key,
  client,
  input: { kind: 'read' },
  call,
  return: ret,
  output: { kind: 'read', value, version },
});
const cas = (client: number, expectedVersion: number, value: string, call: number, ret?: number, won?: boolean, key = '/r'): RegisterOperation => {
  const op: RegisterOperation = { key, client, input: { kind: 'cas', expectedVersion, value }, call };
  return ret === undefined ? op : { ...op, return: ret, output: won ? { kind: 'ok' } : { kind: 'badversion' } };
};

function assertLinearizable(history: RegisterOperation[], m: Model<RegisterState, RegisterInput, RegisterOutput> = model): void {
  const result = checkLinearizable(history, m);
  assert.equal(result.ok, true, result.ok === false ? result.explanation : JSON.stringify(result));
}

function assertViolation(history: RegisterOperation[], ...mentions: string[]): string {
  const result = checkLinearizable(history, model);
  assert.equal(result.ok, false, JSON.stringify(result));
  if (result.ok !== false) throw new Error('unreachable');
  for (const text of mentions) assert.ok(result.explanation.includes(text), `explanation lacks ${JSON.stringify(text)}:\n${result.explanation}`);
  return result.explanation;
}

// ---------------------------------------------------------------- hand-written histories

test('concurrent writes may take effect in either order', () => {
  const writes = [write(1, 'a', 0, 10), write(2, 'b', 5, 15)];
  assertLinearizable([...writes, read(3, 20, 25, 'b', 2)]);
  assertLinearizable([...writes, read(3, 20, 25, 'a', 2)]);
  assertViolation([...writes, read(3, 20, 25, 'a', 1)], 'op 2', 'impossible in state');
});

test('reads overlapping a write may see the old or the new value, but not go back', () => {
  const slow = write(1, 'a', 0, 100);
  assertLinearizable([slow, read(2, 10, 20, 'init', 0), read(3, 30, 40, 'a', 1)]);
  assertLinearizable([slow, read(2, 10, 20, 'a', 1), read(3, 30, 40, 'a', 1)]);
  // Two overlapping reads may disagree either way round.
  assertLinearizable([slow, read(2, 10, 50, 'a', 1), read(3, 20, 40, 'init', 0)]);
  // A read after a read that saw the write must see it too, even while the write is in flight.
  assertViolation([slow, read(2, 10, 20, 'a', 1), read(3, 30, 40, 'init', 0)], 'up to the return of op 2 at 40 ms');
});

test('cas races: exactly one of two cas on the same version wins', () => {
  assertLinearizable([cas(1, 0, 'a', 0, 10, true), cas(2, 0, 'b', 2, 12, false), read(3, 20, 30, 'a', 1)]);
  assertLinearizable([cas(1, 0, 'a', 0, 10, false), cas(2, 0, 'b', 2, 12, true), read(3, 20, 30, 'b', 1)]);
  // The loser may also lose to a write that came first.
  assertLinearizable([write(1, 'w', 0, 10), cas(2, 0, 'b', 2, 12, false), read(3, 20, 30, 'w', 1)]);
  const explanation = assertViolation(
    [cas(1, 0, 'a', 0, 10, true), cas(2, 0, 'b', 2, 12, true)],
    'cas(v0, "a") -> ok',
    'cas(v0, "b") -> ok',
  );
  assert.match(explanation, /impossible in state "[ab]" v1/);
  // Both losing while nothing else happened is wrong too.
  assertViolation([cas(1, 0, 'a', 0, 10, false), cas(2, 0, 'b', 2, 12, false)], '-> BADVERSION: impossible in state "init" v0');
});

test('unknown-outcome writes may or may not take effect, at any time after their call', () => {
  const lost = write(1, 'a', 0);
  assertLinearizable([lost, read(2, 50, 60, 'a', 1)], model);
  assertLinearizable([lost, read(2, 50, 60, 'init', 0)]);
  assertLinearizable([lost, read(2, 50, 60, 'init', 0), read(2, 1000, 1010, 'a', 1)], model);
  assertLinearizable([cas(1, 0, 'a', 0), cas(2, 0, 'b', 5, 15, false), read(3, 20, 30, 'a', 1)]);
  assertLinearizable([cas(1, 0, 'a', 0), cas(2, 0, 'b', 5, 15, true), read(3, 20, 30, 'b', 1)]);
  // But it takes effect once: seen, then unseen, is impossible.
  assertViolation([lost, read(2, 50, 60, 'a', 1), read(2, 70, 80, 'init', 0)], '(outcome unknown)');
  // And not before its call.
  assertViolation([read(2, 0, 10, 'a', 1), write(1, 'a', 20)]);
  // An unknown read constrains nothing.
  assertLinearizable([{ key: '/r', input: { kind: 'read' }, call: 0 }, write(1, 'a', 5, 10)]);
});

test('many unknown writes stay cheap: those whose value nobody read are interchangeable', () => {
  // Forty timed-out writes, one of them seen later: 2^40 subsets without the grouping.
  const history: RegisterOperation[] = [];
  for (let i = 0; i < 40; i++) history.push(write(i, `lost${i}`, i));
  for (let i = 0; i < 30; i++) history.push(read(100, 100 + i * 10, 105 + i * 10, 'init', 0));
  const seen = [...history, read(100, 500, 505, 'lost17', 1), write(101, 'x', 510, 515), read(100, 520, 525, 'x', 4)];
  assert.deepEqual(checkLinearizable(seen, model, { maxStates: 20_000 }), { ok: true });
  const result = checkLinearizable([...seen, read(100, 530, 535, 'x', 43)], model, { maxStates: 20_000 });
  assert.equal(result.ok, false, JSON.stringify(result));
});

test('non-linearizable: stale read after a completed write', () => {
  const explanation = assertViolation(
    [write(1, 'a', 0, 10), read(2, 20, 30, 'init', 0)],
    'Key "/r" is not linearizable',
    'Smallest failing prefix: everything up to the return of op 1 at 30 ms',
    'op 0 client 1 [0, 10] write "a" -> ok => "a" v1',
    'op 1 client 2 [20, 30] read -> "init" v0: impossible in state "a" v1',
  );
  assert.ok(explanation.split('\n').length < 10, explanation);
});

test('non-linearizable: a read of a value never written', () => {
  assertViolation([write(1, 'a', 0, 10), read(2, 5, 30, 'zz', 1)], 'read -> "zz" v1: impossible in state');
  assertViolation([read(2, 5, 30, 'init', 3)], 'impossible in state "init" v0');
});

test('non-linearizable: a read going back in time', () => {
  const history = [write(1, 'a', 0, 10), write(1, 'b', 20, 30), read(2, 40, 50, 'b', 2), read(3, 60, 70, 'a', 1)];
  assertViolation(history, 'up to the return of op 3 at 70 ms', 'op 3 client 3 [60, 70] read -> "a" v1: impossible in state "b" v2');
});

test('non-linearizable: a lost acknowledged write', () => {
  // Both writes returned ok, so a later read must see version 2, whichever won.
  const writes = [write(1, 'a', 0, 10), write(2, 'b', 0, 10)];
  assertViolation([...writes, read(3, 20, 30, 'b', 1)], 'op 2 client 3 [20, 30] read -> "b" v1');
  // A write reporting a version it cannot have made.
  assertViolation([write(1, 'a', 0, 10), { ...write(2, 'b', 20, 30), output: { kind: 'ok', version: 1 } }], 'write "b" -> ok v1');
});

test('the smallest failing prefix is reported even when the violation is deep in a long history', () => {
  const history: RegisterOperation[] = [];
  for (let i = 0; i < 50; i++) history.push(write(1, `v${i}`, i * 10, i * 10 + 5));
  history.push(read(2, 200, 205, 'init', 0)); // stale by 20 writes
  for (let i = 50; i < 80; i++) history.push(write(1, `v${i}`, i * 10, i * 10 + 5));
  const result = checkLinearizable(history, model);
  assert.equal(result.ok, false);
  if (result.ok !== false) return;
  assert.ok(result.explanation.includes('Smallest failing prefix: everything up to the return of op 50 at 205 ms, 22 of the 81'), result.explanation);
  assert.ok(result.operations.includes(50) && !result.operations.includes(60), String(result.operations));
  assert.ok(result.explanation.split('\n').length < 30, 'explanations stay short');
});

test('keys are checked independently and the failing key is named', () => {
  const history = [
    write(1, 'a', 0, 10, '/x'),
    write(1, 'b', 0, 10, '/y'),
    read(2, 20, 30, 'a', 1, '/x'),
    read(2, 20, 30, 'a', 1, '/y'),
  ];
  const result = checkLinearizable(history, model);
  assert.equal(result.ok, false);
  if (result.ok === false) assert.equal(result.key, '/y');
  const initial = new Map([
    ['/x', 'x0'],
    ['/y', 'y0'],
  ]);
  assertLinearizable([read(1, 0, 1, 'x0', 0, '/x'), read(1, 0, 1, 'y0', 0, '/y')], registerModel(initial));
  assert.throws(() => checkLinearizable([read(1, 0, 1, 'z0', 0, '/z')], registerModel(initial)), /no initial value for key "\/z"/);
});

test('malformed histories are refused with a clear error', () => {
  assert.throws(() => checkLinearizable([read(1, 10, 5, 'init', 0)], model), /operation 0: return 5 must be a finite time not before the call at 10/);
  assert.throws(() => checkLinearizable([{ ...read(1, 0, 5, 'init', 0), output: { kind: 'ok' } }], model), /operation 0: output .* does not fit a read/);
  assert.throws(() => checkLinearizable([{ ...write(1, 'a', 0, 5), output: { kind: 'badversion' } }], model), /does not fit a write/);
  assert.throws(() => checkLinearizable([{ key: '/r', input: { kind: 'read' }, call: 0, return: 3 }], model), /return and output go together/);
  assert.throws(() => checkLinearizable([cas(1, -1, 'a', 0, 5, true)], model), /non-negative integer expectedVersion/);
  assert.throws(() => checkLinearizable([{ key: '/r', input: { kind: 'delete' } as never, call: 0 }], model), /unknown input kind "delete"/);
  assert.throws(() => checkLinearizable([write(1, 'a', 0, 1)], model, { maxOperations: 0 }), /more than the limit of 0/);
});

test('the budget gives up with unknown instead of running on', () => {
  // Twenty concurrent writes and an impossible read after them: proving it means trying every order.
  const history: RegisterOperation[] = [];
  for (let i = 0; i < 20; i++) history.push(write(i, `w${i}`, 0, 100));
  history.push(read(99, 200, 210, 'never', 20));
  const byStates = checkLinearizable(history, model, { maxStates: 1000 });
  assert.equal(byStates.ok, 'unknown');
  if (byStates.ok === 'unknown') assert.match(byStates.explanation, /"\/r" \(21 operations\) could not be decided within the limit on cached states/);
  let clock = 0;
  const byTime = checkLinearizable(history, model, { timeLimitMs: 5, now: () => (clock += 1) });
  assert.equal(byTime.ok, 'unknown');
  if (byTime.ok === 'unknown') assert.match(byTime.explanation, /within the time limit/);
  // A definite violation on another key still wins over a key left undecided.
  const both = checkLinearizable([...history, write(1, 'a', 0, 1, '/b'), read(2, 5, 6, 'init', 0, '/b')], model, { maxStates: 1000 });
  assert.equal(both.ok, false);
});

test('the model is generic: a counter with increments and reads', () => {
  type CounterInput = { add: number } | { read: true };
  const counter: Model<number, CounterInput, number> = {
    init: () => 0,
    step: (n, input, output) => ('add' in input ? [true, n + input.add] : [output === undefined || output === n, n]),
    equal: (a, b) => a === b,
    hash: (n) => n,
  };
  const add = (amount: number, call: number, ret: number): Operation<CounterInput, number> => ({ key: 'c', input: { add: amount }, call, return: ret, output: 0 });
  const get = (value: number, call: number, ret: number): Operation<CounterInput, number> => ({ key: 'c', input: { read: true }, call, return: ret, output: value });
  assert.deepEqual(checkLinearizable([add(1, 0, 10), add(2, 0, 10), get(1, 5, 6), get(3, 20, 21)], counter), { ok: true });
  const result = checkLinearizable([add(1, 0, 10), add(2, 0, 10), get(2, 5, 6), get(1, 7, 8)], counter);
  assert.equal(result.ok, false);
  if (result.ok === false) assert.match(result.explanation, /"add":2/);
});

// ---------------------------------------------------------------- randomised histories

interface GeneratedHistory {
  history: RegisterOperation[];
  /** Count of writes and cas per key: no version beyond it can ever be read. */
  updates: Map<string, number>;
}

/**
 * A history of a sequential register per key, run at random linearization points inside random
 * overlapping intervals: each client issues one operation at a time. Unknown outcomes take effect
 * at a random later time, or never.
 */
function generate(rng: Rng, operations: number, keys: number, clients: number, unknownRate = 0.05): GeneratedHistory {
  const clientFree = new Array<number>(clients).fill(0);
  const planned: { op: RegisterOperation; at: number; applies: boolean; kind: RegisterInput['kind'] }[] = [];
  const updates = new Map<string, number>();
  for (let i = 0; i < operations; i++) {
    const client = rng.int(clients);
    const key = `/k${rng.int(keys)}`;
    const call = clientFree[client] + rng.int(3);
    const ret = call + 1 + rng.int(30);
    clientFree[client] = ret + rng.int(2);
    const kind = rng.weighted<RegisterInput['kind']>([
      [4, 'read'],
      [3, 'write'],
      [3, 'cas'],
    ]);
    if (kind !== 'read') updates.set(key, (updates.get(key) ?? 0) + 1);
    const unknown = rng.chance(unknownRate);
    const op: RegisterOperation = { key, client, input: { kind: 'read' }, call, return: ret };
    if (unknown) delete op.return;
    // Distinct fractional points: no two operations take effect at the same instant.
    const at = unknown ? call + rng.int(200) + rng.next() : call + rng.next() * (ret - call);
    planned.push({ op, at, applies: !unknown || rng.chance(0.5), kind });
  }
  planned.sort((a, b) => a.at - b.at);
  const registers = new Map<string, RegisterState>();
  let serial = 0;
  for (const { op, applies, kind } of planned) {
    const state = registers.get(op.key) ?? { value: 'init', version: 0 };
    const value = `${op.key}:${serial++}`;
    if (kind === 'read') {
      op.input = { kind: 'read' };
      if (op.return !== undefined) op.output = { kind: 'read', ...state };
    } else if (kind === 'write') {
      op.input = { kind: 'write', value };
      if (applies) registers.set(op.key, { value, version: state.version + 1 });
      if (op.return !== undefined) op.output = rng.chance(0.5) ? { kind: 'ok', version: state.version + 1 } : { kind: 'ok' };
    } else {
      const expectedVersion = rng.chance(0.6) ? state.version : Math.max(0, state.version - 1 - rng.int(2));
      op.input = { kind: 'cas', expectedVersion, value };
      const wins = expectedVersion === state.version;
      if (wins && applies) registers.set(op.key, { value, version: state.version + 1 });
      if (op.return !== undefined) op.output = wins ? { kind: 'ok' } : { kind: 'badversion' };
    }
  }
  const history = planned.map((p) => p.op).sort((a, b) => a.call - b.call);
  return { history, updates };
}

const knownReads = (history: RegisterOperation[]): number[] =>
  history.flatMap((op, i) => (op.input.kind === 'read' && op.output?.kind === 'read' ? [i] : []));

/** Replaces one read's output and checks the violation is found and pinned on that read. */
function assertCaught(history: RegisterOperation[], victim: number, output: RegisterOutput, seed: number): void {
  const mutated = history.map((op, i) => (i === victim ? { ...op, output } : op));
  const result = checkLinearizable(mutated, model);
  assert.equal(result.ok, false, `seed ${seed}: mutation of op ${victim} not caught (${JSON.stringify(result)})`);
  if (result.ok !== false) return;
  assert.equal(result.key, history[victim].key);
  // Everything before that read returns is genuine, so the smallest failing prefix ends there.
  assert.ok(result.explanation.includes(`up to the return of op ${victim} at`), `seed ${seed}:\n${result.explanation}`);
  assert.ok(result.operations.includes(victim));
}

test('randomised: generated histories are linearizable, and provably impossible mutations are caught', () => {
  for (let seed = 1; seed <= GENERATED_SEEDS; seed++) {
    const rng = new Rng(seed);
    const { history, updates } = generate(rng, 20 + rng.int(150), 1 + rng.int(4), 2 + rng.int(8));
    const result = checkLinearizable(history, model);
    assert.equal(result.ok, true, `seed ${seed}: ${result.ok === false ? result.explanation : JSON.stringify(result)}`);

    const reads = knownReads(history);
    if (reads.length === 0) continue;
    // A value nobody wrote.
    const victim = rng.pick(reads);
    const seen = history[victim].output as { version: number };
    assertCaught(history, victim, { kind: 'read', value: 'never written', version: seen.version }, seed);
    // A version beyond every update of the key.
    assertCaught(history, victim, { kind: 'read', value: 'init', version: (updates.get(history[victim].key) ?? 0) + 1 }, seed);
    // Back in time: after a read saw version v > 0 and returned, another read sees the initial state.
    const pairs = reads.flatMap((a) =>
      reads
        .filter((b) => history[b].key === history[a].key && history[a].return! < history[b].call)
        .filter(() => (history[a].output as { version: number }).version > 0)
        .map((b) => b),
    );
    if (pairs.length > 0) assertCaught(history, rng.pick(pairs), { kind: 'read', value: 'init', version: 0 }, seed);
  }
});

/** All orders consistent with real time, pending operations placed anywhere after their call or not at all. */
function bruteForce(history: RegisterOperation[]): boolean {
  const byKey = new Map<string, RegisterOperation[]>();
  for (const op of history) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  const linearizable = (ops: RegisterOperation[], placed: boolean[], state: RegisterState): boolean => {
    if (ops.every((op, i) => placed[i] || op.output === undefined)) return true;
    for (let i = 0; i < ops.length; i++) {
      if (placed[i]) continue;
      const blocked = ops.some((other, j) => !placed[j] && j !== i && other.return !== undefined && other.return < ops[i].call);
      if (blocked) continue;
      const [ok, next] = model.step(state, ops[i].input, ops[i].output);
      if (!ok) continue;
      placed[i] = true;
      const found = linearizable(ops, placed, next);
      placed[i] = false;
      if (found) return true;
    }
    return false;
  };
  return [...byKey.values()].every((ops) => linearizable(ops, ops.map(() => false), { value: 'init', version: 0 }));
}

test('randomised: agrees with an exhaustive search on small histories with random outputs', () => {
  let violations = 0;
  for (let seed = 1; seed <= SMALL_SEEDS; seed++) {
    const rng = new Rng(10_000 + seed);
    const { history } = generate(rng, 2 + rng.int(6), 1 + rng.int(2), 2 + rng.int(3), 0.2);
    // Scramble some outputs so that both verdicts occur.
    for (const op of history) {
      if (op.output === undefined || !rng.chance(0.3)) continue;
      if (op.output.kind === 'read') op.output = { kind: 'read', value: rng.chance(0.5) ? 'init' : op.output.value, version: rng.int(4) };
      else if (op.input.kind === 'cas') op.output = op.output.kind === 'ok' ? { kind: 'badversion' } : { kind: 'ok' };
      else op.output = { kind: 'ok', version: 1 + rng.int(3) };
    }
    const expected = bruteForce(history);
    const result = checkLinearizable(history, model);
    assert.equal(result.ok, expected, `seed ${seed}: ${JSON.stringify(history)}\n${result.ok === false ? result.explanation : ''}`);
    if (!expected) violations++;
  }
  assert.ok(violations > SMALL_SEEDS / 8 && violations < (SMALL_SEEDS * 7) / 8, `both verdicts occur (${violations} violations of ${SMALL_SEEDS})`);
});

test('performance: 2,000 operations over 10 keys with 10 clients (timing reported, not asserted)', (t) => {
  for (const keys of [10, 1]) {
    const { history } = generate(new Rng(7), 2000, keys, 10);
    const start = performance.now();
    const result = checkLinearizable(history, model);
    const ms = performance.now() - start;
    assert.equal(result.ok, true);
    t.diagnostic(`2000 operations, ${keys} key(s), 10 clients: ${ms.toFixed(1)} ms`);
  }
});
