/**
 * Linearizability checker for recorded histories: Wing & Gong's search with Lowe's memoisation
 * (a cache of (set of linearized operations, state) pairs already explored), as Porcupine does.
 * The history is partitioned by key and each key is checked on its own: a history is
 * linearizable if and only if each key's sub-history is (for models whose keys are independent,
 * like one register per znode).
 *
 * An operation whose outcome is unknown (connection lost, timeout) has no output and no return
 * time: it may take effect once at any point after its call, or never.
 *
 * Such pending operations are what makes the search expensive (each one never placed stays a
 * candidate to the end), so the search narrows them without losing linearizations: at each point
 * it tries completed operations before pending ones, never places a pending operation that would
 * leave the state unchanged (leaving it unplaced allows strictly more), stops as soon as only
 * pending operations remain, and places pending operations that the model declares
 * interchangeable in call order (k of them then give k + 1 choices instead of 2^k subsets).
 */

/** A sequential specification. `step` must be pure and deterministic. */
export interface Model<State, Input, Output> {
  /** The state of a key before any operation on it. */
  init(key: string): State;
  /** Applies one operation; `output` is undefined when the outcome is unknown: accept any output. */
  step(state: State, input: Input, output: Output | undefined): readonly [ok: boolean, next: State];
  equal(a: State, b: State): boolean;
  hash(state: State): number;
  /**
   * Groups the inputs of pending operations into interchangeable sets, given the completed
   * operations of the same key: one label (or undefined: in no group) per pending input.
   * Swapping two operations of one group in a valid linearization must leave it valid, and one
   * must leave a state unchanged exactly when the other would.
   */
  interchangeable?(pending: readonly Input[], completed: readonly { input: Input; output: Output }[]): (string | undefined)[];
  /** Returns why an operation is malformed (an output that does not fit its input), or undefined. */
  validate?(input: Input, output: Output | undefined): string | undefined;
  describeOperation?(input: Input, output: Output | undefined): string;
  describeState?(state: State): string;
}

export interface Operation<Input, Output> {
  /** The partition key (a znode path for registers). */
  key: string;
  input: Input;
  /** Monotonic time of the call, in ms, all operations timed by one clock. */
  call: number;
  /** Monotonic time of the return; absent when the outcome is unknown. */
  return?: number;
  /** The output; absent when the outcome is unknown. */
  output?: Output;
  /** Who issued it; only shown in explanations. */
  client?: number | string;
}

export type CheckResult =
  | { ok: true }
  /** `operations`: indices into the history of the operations of the smallest failing prefix. */
  | { ok: false; key: string; explanation: string; operations: number[] }
  | { ok: 'unknown'; key: string; explanation: string };

export interface CheckOptions {
  /** Total time for the check, explanation included (default 30 s). */
  timeLimitMs?: number;
  /** Most (linearized set, state) pairs cached in one search before giving up on a key (default 500,000). */
  maxStates?: number;
  /** Longest history accepted (default 1,000,000 operations). */
  maxOperations?: number;
  /** Monotonic clock for the time limit. */
  now?: () => number;
}

/** Checks a history against a model; see the module comment. Throws on a malformed history. */
export function checkLinearizable<S, I, O>(
  history: readonly Operation<I, O>[],
  model: Model<S, I, O>,
  options: CheckOptions = {},
): CheckResult {
  const maxOperations = options.maxOperations ?? 1_000_000;
  if (!Array.isArray(history)) throw new TypeError('history must be an array of operations');
  if (history.length > maxOperations) {
    throw new RangeError(`history has ${history.length} operations, more than the limit of ${maxOperations}`);
  }
  const now = options.now ?? (() => performance.now());
  const budget: Budget = {
    deadline: now() + (options.timeLimitMs ?? 30_000),
    maxStates: options.maxStates ?? 500_000,
    now,
  };

  const byKey = new Map<string, KeyedOperation<I, O>[]>();
  history.forEach((op, index) => {
    validateOperation(op, index, model);
    let ops = byKey.get(op.key);
    if (!ops) byKey.set(op.key, (ops = []));
    ops.push({ index, input: op.input, output: op.output, call: op.call, ret: op.return ?? Infinity });
  });

  let exhausted: { key: string; explanation: string } | undefined;
  for (const [key, ops] of byKey) {
    const result = search(ops, model.init(key), model, budget);
    if (result.outcome === 'ok') continue;
    if (result.outcome === 'unknown') {
      exhausted ??= { key, explanation: budgetExplanation(key, result.reason, ops.length) };
      if (result.reason === 'time') break;
      continue;
    }
    const smallest = smallestFailingPrefix(ops, result, model.init(key), model, budget);
    return {
      ok: false,
      key,
      explanation: explain(key, history, ops.length, smallest, model),
      operations: smallest.ops.map((o) => o.index),
    };
  }
  return exhausted ? { ok: 'unknown', ...exhausted } : { ok: true };
}

// ---------------------------------------------------------------- the register model

/** A ZooKeeper data version with the data: the register behind one znode. */
export interface RegisterState {
  value: string;
  version: number;
}

export type RegisterInput =
  | { kind: 'read' }
  /** setData with version -1. */
  | { kind: 'write'; value: string }
  /** setData with an expected version. */
  | { kind: 'cas'; expectedVersion: number; value: string };

export type RegisterOutput =
  | { kind: 'read'; value: string; version: number }
  /** A write or cas that took effect; `version` is the new data version when the Stat is known. */
  | { kind: 'ok'; version?: number }
  /** A cas answered BADVERSION. */
  | { kind: 'badversion' };

/**
 * One register per key, starting at version 0 with the initial value given (one for every key,
 * or one per key). Reads return (value, version); a write makes version + 1; a cas takes effect
 * only when its expected version is the current one, and otherwise answers BADVERSION.
 */
export function registerModel(
  initial: string | ReadonlyMap<string, string>,
): Model<RegisterState, RegisterInput, RegisterOutput> {
  return {
    init(key) {
      const value = typeof initial === 'string' ? initial : initial.get(key);
      if (value === undefined) throw new Error(`no initial value for key ${JSON.stringify(key)}`);
      return { value, version: 0 };
    },
    step(state, input, output) {
      if (input.kind === 'read') {
        const ok = output === undefined || (output.kind === 'read' && output.value === state.value && output.version === state.version);
        return [ok, state];
      }
      const written = { value: input.value, version: state.version + 1 };
      const applies = input.kind === 'write' || input.expectedVersion === state.version;
      if (output === undefined) return [true, applies ? written : state];
      if (output.kind === 'badversion') return [!applies, state];
      const versionFits = output.version === undefined || output.version === written.version;
      return [applies && versionFits, written];
    },
    equal: (a, b) => a.version === b.version && a.value === b.value,
    hash: (s) => (Math.imul(stringHash(s.value), 31) + s.version) | 0,
    interchangeable(pending, completed) {
      // A write whose value no read returned only moves the version on; cas compare versions alone.
      const observed = new Set<string>();
      for (const { output } of completed) if (output.kind === 'read') observed.add(output.value);
      return pending.map((input) =>
        input.kind === 'read' || observed.has(input.value) ? undefined : input.kind === 'write' ? 'write' : `cas ${input.expectedVersion}`,
      );
    },
    validate(input, output) {
      if (input === null || typeof input !== 'object') return 'input must be an object';
      if (input.kind !== 'read' && input.kind !== 'write' && input.kind !== 'cas') return `unknown input kind ${JSON.stringify((input as { kind: unknown }).kind)}`;
      if (input.kind === 'cas' && !(Number.isInteger(input.expectedVersion) && input.expectedVersion >= 0)) {
        return 'a cas needs a non-negative integer expectedVersion';
      }
      if ((input.kind === 'write' || input.kind === 'cas') && typeof input.value !== 'string') return `a ${input.kind} needs a string value`;
      if (output === undefined) return undefined;
      if (output === null || typeof output !== 'object') return 'output must be an object';
      const fits =
        input.kind === 'read'
          ? output.kind === 'read' && typeof output.value === 'string' && Number.isInteger(output.version)
          : output.kind === 'ok'
            ? output.version === undefined || Number.isInteger(output.version)
            : output.kind === 'badversion' && input.kind === 'cas';
      return fits ? undefined : `output ${JSON.stringify(output)} does not fit a ${input.kind}`;
    },
    describeOperation(input, output) {
      const call =
        input.kind === 'read'
          ? 'read'
          : input.kind === 'write'
            ? `write ${quote(input.value)}`
            : `cas(v${input.expectedVersion}, ${quote(input.value)})`;
      if (output === undefined) return `${call} -> ?`;
      if (output.kind === 'read') return `${call} -> ${quote(output.value)} v${output.version}`;
      if (output.kind === 'badversion') return `${call} -> BADVERSION`;
      return `${call} -> ok${output.version === undefined ? '' : ` v${output.version}`}`;
    },
    describeState: (s) => `${quote(s.value)} v${s.version}`,
  };
}

// ---------------------------------------------------------------- the search

interface KeyedOperation<I, O> {
  /** Index in the whole history. */
  index: number;
  input: I;
  output: O | undefined;
  call: number;
  /** Infinity when the outcome is unknown (or, in a prefix, not returned yet). */
  ret: number;
}

interface Budget {
  deadline: number;
  maxStates: number;
  now: () => number;
}

/** The deepest point the search reached: a linearization and the operations it could not extend it with. */
interface Stuck<S> {
  /** The linearized operations (indices into the searched ones), in order, and the state after each. */
  order: number[];
  states: S[];
  /** The unlinearized operation with the earliest return: something must be placed before it. */
  blocking: number;
  /** Unlinearized operations called before that return: the only ones that could come next. */
  candidates: number[];
}

type SearchResult<S> =
  | { outcome: 'ok' }
  | { outcome: 'unknown'; reason: 'time' | 'states' }
  | { outcome: 'fail'; stuck: Stuck<S> };

function search<S, I, O>(ops: readonly KeyedOperation<I, O>[], init: S, model: Model<S, I, O>, budget: Budget): SearchResult<S> {
  const n = ops.length;
  const pending = ops.map((o) => o.output === undefined);

  // Calls and returns in time order, calls first on ties so touching intervals count as concurrent.
  // Pending operations have no return event.
  const events: { time: number; op: number; call: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    events.push({ time: ops[i].call, op: i, call: true });
    if (!pending[i]) events.push({ time: ops[i].ret, op: i, call: false });
  }
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));

  // Two doubly linked lists from which an operation's events are lifted while it is linearized:
  // completed operations' calls and returns, and pending operations' calls. Node ids follow event
  // order, so "called before that return" is a comparison of ids.
  const HEAD = 0;
  const PENDING_HEAD = 1;
  const TAIL = events.length + 2;
  const PENDING_TAIL = events.length + 3;
  const next = new Int32Array(events.length + 4);
  const prev = new Int32Array(events.length + 4);
  const opOf = new Int32Array(events.length + 4);
  const isCall = new Uint8Array(events.length + 4);
  const returnNode = new Int32Array(n);
  let lastCompleted = HEAD;
  let lastPending = PENDING_HEAD;
  const append = (after: number, node: number): number => {
    next[after] = node;
    prev[node] = after;
    return node;
  };
  events.forEach((e, i) => {
    const node = i + 2;
    opOf[node] = e.op;
    isCall[node] = e.call ? 1 : 0;
    if (!e.call) returnNode[e.op] = node;
    if (pending[e.op]) lastPending = append(lastPending, node);
    else lastCompleted = append(lastCompleted, node);
  });
  append(lastCompleted, TAIL);
  append(lastPending, PENDING_TAIL);
  const unlink = (node: number): void => {
    next[prev[node]] = next[node];
    prev[next[node]] = prev[node];
  };
  const relink = (node: number): void => {
    next[prev[node]] = node;
    prev[next[node]] = node;
  };
  const lift = (call: number): void => {
    unlink(call);
    if (!pending[opOf[call]]) unlink(returnNode[opOf[call]]);
  };
  const unlift = (call: number): void => {
    if (!pending[opOf[call]]) relink(returnNode[opOf[call]]);
    relink(call);
  };

  // The linearized set as a bitset with an incrementally kept Zobrist hash.
  const linearized = new Uint32Array(Math.ceil(n / 32));
  const zobrist = new Int32Array(n);
  let seed = 0x2545f491;
  for (let i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    zobrist[i] = seed;
  }
  let setHash = 0;
  const flip = (op: number): void => {
    linearized[op >>> 5] ^= 1 << (op & 31);
    setHash ^= zobrist[op];
  };
  const isLinearized = (op: number): boolean => (linearized[op >>> 5] & (1 << (op & 31))) !== 0;

  const cache = new Map<number, { set: Uint32Array; state: S }[]>();
  let cached = 0;
  /** Adds (linearized, state) to the cache; false when it was there already. */
  const remember = (state: S): boolean => {
    const key = (setHash ^ Math.imul(model.hash(state), 0x9e3779b1)) | 0;
    let bucket = cache.get(key);
    if (!bucket) cache.set(key, (bucket = []));
    for (const seen of bucket) {
      if (model.equal(seen.state, state) && sameBits(seen.set, linearized)) return false;
    }
    bucket.push({ set: linearized.slice(), state });
    cached++;
    return true;
  };

  // For each pending operation, the previous one of its interchangeable group in call order.
  const groupPrevious = new Int32Array(n).fill(-1);
  if (model.interchangeable) {
    const pendingOps = ops.flatMap((o, i) => (pending[i] ? [i] : []));
    const completed = ops.flatMap((o) => (o.output === undefined ? [] : [{ input: o.input, output: o.output }]));
    const labels = model.interchangeable(
      pendingOps.map((i) => ops[i].input),
      completed,
    );
    const label = new Map(pendingOps.map((op, i) => [op, labels[i]]));
    const lastOfGroup = new Map<string, number>();
    for (const e of events) {
      const group = label.get(e.op);
      if (group === undefined) continue;
      groupPrevious[e.op] = lastOfGroup.get(group) ?? -1;
      lastOfGroup.set(group, e.op);
    }
  }

  const stackNodes: number[] = [];
  const stackStates: S[] = [];
  const stackBlocking: number[] = [];
  let state = init;
  let stuck: Stuck<S> | undefined;
  // The deepest point kept for the explanation is the one with the most completed operations
  // placed, then the fewest pending ones: pending ones placed early only muddle it.
  let completedPlaced = 0;
  let stuckCompleted = -1;
  let outOfStates = false;

  /** Linearizes the operation of a call node next if it fits and leads somewhere not yet explored. */
  const place = (call: number, blocking: number): boolean => {
    const op = opOf[call];
    if (pending[op] && groupPrevious[op] >= 0 && !isLinearized(groupPrevious[op])) return false;
    const [ok, after] = model.step(state, ops[op].input, ops[op].output);
    if (!ok || (pending[op] && model.equal(after, state))) return false;
    flip(op);
    if (!remember(after)) {
      flip(op);
      return false;
    }
    if (cached > budget.maxStates) outOfStates = true;
    stackNodes.push(call);
    stackStates.push(state);
    stackBlocking.push(blocking);
    if (!pending[op]) completedPlaced++;
    state = after;
    lift(call);
    return true;
  };

  // At each point completed operations called before the first return are tried first, then
  // pending ones called before it (pendingPhase); when none fits, the last choice is undone.
  let pendingPhase = false;
  let blocking = 0;
  let node = next[HEAD];
  let iterations = 0;
  for (;;) {
    if ((++iterations & 1023) === 0 && budget.now() > budget.deadline) return { outcome: 'unknown', reason: 'time' };
    if (outOfStates) return { outcome: 'unknown', reason: 'states' };
    if (!pendingPhase) {
      if (node === TAIL) return { outcome: 'ok' }; // every completed operation placed
      if (!isCall[node]) {
        blocking = node;
        pendingPhase = true;
        node = next[PENDING_HEAD];
      } else if (place(node, 0)) node = next[HEAD];
      else node = next[node];
      continue;
    }
    if (node !== PENDING_TAIL && node < blocking) {
      if (place(node, blocking)) {
        pendingPhase = false;
        node = next[HEAD];
      } else node = next[node];
      continue;
    }
    if (completedPlaced > stuckCompleted || (completedPlaced === stuckCompleted && stackNodes.length < stuck!.order.length)) {
      stuck = stuckAt(blocking);
      stuckCompleted = completedPlaced;
    }
    const top = stackNodes.pop();
    if (top === undefined) return { outcome: 'fail', stuck: stuck! };
    state = stackStates.pop() as S;
    const resumeBlocking = stackBlocking.pop() as number;
    const op = opOf[top];
    if (!pending[op]) completedPlaced--;
    flip(op);
    unlift(top);
    pendingPhase = pending[op];
    if (pendingPhase) blocking = resumeBlocking;
    node = next[top];
  }

  function stuckAt(blockingReturn: number): Stuck<S> {
    const candidates: number[] = [];
    for (let c = next[HEAD]; c !== blockingReturn; c = next[c]) candidates.push(opOf[c]);
    for (let c = next[PENDING_HEAD]; c !== PENDING_TAIL && c < blockingReturn; c = next[c]) candidates.push(opOf[c]);
    const order = stackNodes.map((c) => opOf[c]);
    const states = order.map((_, i) => (i + 1 < stackStates.length ? stackStates[i + 1] : state));
    return { order, states, blocking: opOf[blockingReturn], candidates };
  }
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- the smallest failing prefix

interface FailingPrefix<S, I, O> {
  /** The operations of the prefix, those not returned by its end as pending. */
  ops: KeyedOperation<I, O>[];
  /** The operation whose return ends the prefix, or undefined for the whole history. */
  end: KeyedOperation<I, O> | undefined;
  stuck: Stuck<S>;
  minimal: boolean;
}

/**
 * The history up to the return of one operation, with operations called by then but returning
 * later as pending. If a prefix is not linearizable no longer one is, so a binary search over
 * return events finds the shortest failing prefix.
 */
function smallestFailingPrefix<S, I, O>(
  ops: readonly KeyedOperation<I, O>[],
  whole: { stuck: Stuck<S> },
  init: S,
  model: Model<S, I, O>,
  budget: Budget,
): FailingPrefix<S, I, O> {
  // Positions in event order: calls before returns on equal times, as in the search.
  const returns = ops.map((o, i) => i).filter((i) => ops[i].ret !== Infinity);
  returns.sort((a, b) => ops[a].ret - ops[b].ret || a - b);
  const returnRank = new Int32Array(ops.length).fill(-1);
  returns.forEach((op, rank) => (returnRank[op] = rank));
  const prefix = (r: number): KeyedOperation<I, O>[] => {
    const endTime = ops[returns[r]].ret;
    const out: KeyedOperation<I, O>[] = [];
    ops.forEach((o, i) => {
      if (o.call > endTime) return;
      if (returnRank[i] >= 0 && returnRank[i] <= r) out.push(o);
      else out.push({ ...o, output: undefined, ret: Infinity });
    });
    return out;
  };

  let best: FailingPrefix<S, I, O> = { ops: [...ops], end: undefined, stuck: whole.stuck, minimal: false };
  let lo = 0;
  let hi = returns.length; // prefixes at or beyond hi fail; below lo they pass
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const candidate = prefix(mid);
    const result = search(candidate, init, model, budget);
    if (result.outcome === 'unknown') return best;
    if (result.outcome === 'ok') lo = mid + 1;
    else {
      hi = mid;
      best = { ops: candidate, end: ops[returns[mid]], stuck: result.stuck, minimal: false };
    }
  }
  best.minimal = true;
  return best;
}

// ---------------------------------------------------------------- explanations

const MAX_LINES = 20;

function explain<S, I, O>(
  key: string,
  history: readonly Operation<I, O>[],
  keyOperations: number,
  failing: FailingPrefix<S, I, O>,
  model: Model<S, I, O>,
): string {
  const { ops, stuck, end } = failing;
  const describeState = (s: S): string => (model.describeState ? model.describeState(s) : JSON.stringify(s));
  const describe = (o: KeyedOperation<I, O>): string => {
    const original = history[o.index];
    const client = original.client === undefined ? '' : ` client ${original.client}`;
    const what = model.describeOperation ? model.describeOperation(o.input, o.output) : `${JSON.stringify(o.input)} -> ${o.output === undefined ? '?' : JSON.stringify(o.output)}`;
    const pending = o.output !== undefined ? '' : original.output === undefined ? ' (outcome unknown)' : ' (not returned yet)';
    const interval = o.ret === Infinity ? `[${o.call}, ∞)` : `[${o.call}, ${o.ret}]`;
    return `op ${o.index}${client} ${interval} ${what}${pending}`;
  };

  const lines = [`Key ${JSON.stringify(key)} is not linearizable.`];
  const size = `${ops.length} of the ${keyOperations} operations on this key`;
  if (end === undefined) lines.push(`Failing history: all ${size} (not narrowed down within the budget).`);
  else {
    const which = failing.minimal ? 'Smallest failing prefix' : 'A failing prefix (not the smallest: the budget ran out)';
    lines.push(`${which}: everything up to the return of op ${end.index} at ${end.ret} ms, ${size}.`);
  }

  const placed = stuck.order.length;
  lines.push(`Furthest partial linearization found (${placed} of ${ops.length} placed), with the state after each:`);
  if (placed < MAX_LINES) lines.push(`  (initial state) => ${describeState(model.init(key))}`);
  else lines.push(`  ... ${placed - MAX_LINES + 1} earlier operations`);
  for (let i = Math.max(0, placed - MAX_LINES + 1); i < placed; i++) {
    lines.push(`  ${describe(ops[stuck.order[i]])} => ${describeState(stuck.states[i])}`);
  }

  const state = placed > 0 ? stuck.states[placed - 1] : model.init(key);
  const blocking = ops[stuck.blocking];
  lines.push(`Next must come op ${blocking.index}, which returns at ${time(blocking.ret)} ms, or another operation called by then:`);
  for (const c of stuck.candidates.slice(0, MAX_LINES)) {
    const [fits] = model.step(state, ops[c].input, ops[c].output);
    const why = fits ? 'possible here, but no linearization goes on from it' : `impossible in state ${describeState(state)}`;
    lines.push(`  ${describe(ops[c])}: ${why}`);
  }
  if (stuck.candidates.length > MAX_LINES) lines.push(`  ... and ${stuck.candidates.length - MAX_LINES} more`);
  return lines.join('\n');
}

function budgetExplanation(key: string, reason: 'time' | 'states', operations: number): string {
  const limit = reason === 'time' ? 'the time limit' : 'the limit on cached states';
  return `Key ${JSON.stringify(key)} (${operations} operations) could not be decided within ${limit}.`;
}

function validateOperation<S, I, O>(op: Operation<I, O>, index: number, model: Model<S, I, O>): void {
  const fail = (why: string): never => {
    throw new TypeError(`operation ${index}: ${why}`);
  };
  if (op === null || typeof op !== 'object') fail('must be an object');
  if (typeof op.key !== 'string') fail('key must be a string');
  if (typeof op.call !== 'number' || !Number.isFinite(op.call)) fail('call must be a finite time');
  if ((op.output === undefined) !== (op.return === undefined)) {
    fail('return and output go together: both present, or both absent for an unknown outcome');
  }
  if (op.return !== undefined && (typeof op.return !== 'number' || !Number.isFinite(op.return) || op.return < op.call)) {
    fail(`return ${op.return} must be a finite time not before the call at ${op.call}`);
  }
  const why = model.validate?.(op.input, op.output);
  if (why !== undefined) fail(why);
}

function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

function time(ms: number): string {
  return ms === Infinity ? '∞' : String(ms);
}

function quote(value: string): string {
  const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
  return JSON.stringify(shown);
}
