/**
 * Locks on the coordination service: a mutex (optionally reentrant) and a
 * read-write lock. Waiters queue as ephemeral sequential znodes and each watches
 * only the node it waits for, so a release wakes one waiter (no herd).
 */
import type { PulseClient } from '../client/index.js';
import { deleteIfExists, ensurePath, sequenceOf, waitForDeletion } from './util.js';

export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
}

async function acquireNode(
  client: PulseClient,
  dir: string,
  prefix: string,
  blockers: (mine: string, sorted: string[]) => string | undefined,
  timeoutMs: number,
): Promise<string> {
  await ensurePath(client, dir);
  const node = await client.create(`${dir}/${prefix}`, Buffer.alloc(0), { mode: 'ephemeral-sequential' });
  const mine = node.slice(dir.length + 1);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const sorted = (await client.getChildren(dir)).sort((a, b) => sequenceOf(a) - sequenceOf(b));
    const blocker = blockers(mine, sorted);
    if (!blocker) return node;
    const gone = waitForDeletion(client, `${dir}/${blocker}`);
    const timedOut = Number.isFinite(deadline)
      ? await Promise.race([gone.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), Math.max(0, deadline - performance.now())).unref())])
      : await gone.then(() => false);
    if (timedOut) {
      await deleteIfExists(client, node);
      throw new LockTimeoutError(`lock ${dir} not acquired within ${timeoutMs} ms`);
    }
  }
}

/** The node just before mine, whatever kind it is. */
const predecessor = (mine: string, sorted: string[]) => {
  const i = sorted.indexOf(mine);
  return i > 0 ? sorted[i - 1] : undefined;
};

export class Lock {
  private node: string | undefined;
  private holds = 0;

  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
    private readonly opts: { reentrant?: boolean } = {},
  ) {}

  /** Acquires the lock, waiting at most timeoutMs (LockTimeoutError after). */
  async acquire(timeoutMs = Infinity): Promise<void> {
    if (this.node && this.opts.reentrant) {
      this.holds++;
      return;
    }
    if (this.node) throw new Error('already held (use a reentrant lock to acquire again)');
    this.node = await acquireNode(this.client, this.path, 'lock-', predecessor, timeoutMs);
    this.holds = 1;
  }

  async release(): Promise<void> {
    if (!this.node) throw new Error('not held');
    if (--this.holds > 0) return;
    const node = this.node;
    this.node = undefined;
    await deleteIfExists(this.client, node);
  }

  get held(): boolean {
    return this.node !== undefined;
  }
}

/** Readers share; a writer excludes everyone. Queue order is fair. */
export class ReadWriteLock {
  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
  ) {}

  /** Resolves with a release function once the read lock is held. */
  async read(timeoutMs = Infinity): Promise<() => Promise<void>> {
    // A reader waits for the last writer queued before it.
    const node = await acquireNode(
      this.client,
      this.path,
      'read-',
      (mine, sorted) => sorted.slice(0, sorted.indexOf(mine)).filter((n) => n.startsWith('write-')).pop(),
      timeoutMs,
    );
    return () => deleteIfExists(this.client, node);
  }

  async write(timeoutMs = Infinity): Promise<() => Promise<void>> {
    const node = await acquireNode(this.client, this.path, 'write-', predecessor, timeoutMs);
    return () => deleteIfExists(this.client, node);
  }
}
