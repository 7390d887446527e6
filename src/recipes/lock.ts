/**
 * Locks on the coordination service: a mutex (optionally reentrant) and a
 * read-write lock. Waiters queue as ephemeral sequential znodes and each watches
 * only the node it waits for, so a release wakes one waiter (no herd). Queue
 * nodes carry a unique tag, so a create whose reply was lost is found again
 * rather than left behind to block the queue. A lock held by a session that
 * expires is released by the server; its holder hears `lost`. While the
 * connection is suspended the lock may be lost without the holder knowing yet
 * (the server expires the session after its timeout): code that must never
 * overlap stops on the client's `suspended` event, as a leader does.
 */
import { EventEmitter } from 'node:events';
import type { ConnectionState, PulseClient } from '../client/index.js';
import { bySequence, createProtected, deleteIfExists, ensurePath, retryOnLoss, waitForDeletion } from './util.js';

export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
}

/** The queue node vanished while waiting: the session expired. */
export class LockLostError extends Error {
  override name = 'LockLostError';
}

/** Given my node and the queue in order, the node I must wait for (none: I hold the lock). */
type Blocker = (mine: string, queue: string[]) => string | undefined;

/** The node just before mine, whatever kind it is. */
const predecessor: Blocker = (mine, queue) => {
  const i = queue.indexOf(mine);
  return i > 0 ? queue[i - 1] : undefined;
};

/** For a reader: the last writer queued before it. */
const writerBefore: Blocker = (mine, queue) =>
  queue
    .slice(0, queue.indexOf(mine))
    .filter((n) => n.startsWith('write-'))
    .pop();

/** A lock over one queue of znodes; Lock and the halves of ReadWriteLock. Emits `lost`. */
export class QueueLock extends EventEmitter {
  private node: string | undefined;
  private holds = 0;
  private acquiring = false;

  /** @internal */
  constructor(
    private readonly client: PulseClient,
    private readonly dir: string,
    private readonly prefix: string,
    private readonly blocker: Blocker,
    private readonly reentrant: boolean,
  ) {
    super();
  }

  private readonly onState = (s: ConnectionState) => {
    if (s !== 'expired' || !this.node) return;
    this.node = undefined;
    this.holds = 0;
    this.client.off('state', this.onState);
    this.emit('lost');
  };

  /** Acquires the lock, waiting at most timeoutMs (LockTimeoutError after). */
  async acquire(timeoutMs = Infinity): Promise<void> {
    if (this.node && this.reentrant) {
      this.holds++;
      return;
    }
    if (this.node) throw new Error(`${this.dir} is already held (use a reentrant lock to acquire it again)`);
    if (this.acquiring) throw new Error(`${this.dir} is being acquired already`);
    this.acquiring = true;
    try {
      const deadline = performance.now() + timeoutMs;
      await ensurePath(this.client, this.dir);
      const { path } = await createProtected(this.client, this.dir, this.prefix);
      try {
        await this.waitTurn(path, deadline, timeoutMs);
      } catch (e) {
        // Leave the queue; if disconnected, as soon as a connection is back.
        const leaving = deleteIfExists(this.client, path).catch(() => {});
        if (this.client.state === 'connected' || this.client.state === 'reconnected') await leaving;
        throw e;
      }
      this.node = path;
      this.holds = 1;
      this.client.on('state', this.onState);
    } finally {
      this.acquiring = false;
    }
  }

  private async waitTurn(path: string, deadline: number, timeoutMs: number): Promise<void> {
    const mine = path.slice(this.dir.length + 1);
    for (;;) {
      const queue = (await retryOnLoss(this.client, () => this.client.getChildren(this.dir))).sort(bySequence);
      if (!queue.includes(mine)) throw new LockLostError(`queue node ${path} vanished while waiting (session expired)`);
      const blocker = this.blocker(mine, queue);
      if (!blocker) return;
      if (!(await waitForDeletion(this.client, `${this.dir}/${blocker}`, deadline))) {
        throw new LockTimeoutError(`${this.dir} not acquired within ${timeoutMs} ms`);
      }
    }
  }

  /** Releases one hold; the last one deletes the queue node. */
  async release(): Promise<void> {
    if (!this.node) throw new Error(`${this.dir} is not held`);
    if (--this.holds > 0) return;
    const node = this.node;
    this.node = undefined;
    this.client.off('state', this.onState);
    await deleteIfExists(this.client, node);
  }

  get held(): boolean {
    return this.node !== undefined;
  }
}

export class Lock extends QueueLock {
  constructor(client: PulseClient, path: string, opts: { reentrant?: boolean } = {}) {
    super(client, path, 'lock-', predecessor, opts.reentrant ?? false);
  }
}

/** Readers share; a writer excludes everyone. Queue order is fair: a reader waits for writers queued before it. */
export class ReadWriteLock {
  readonly readLock: QueueLock;
  readonly writeLock: QueueLock;

  constructor(client: PulseClient, path: string, opts: { reentrant?: boolean } = {}) {
    this.readLock = new QueueLock(client, path, 'read-', writerBefore, opts.reentrant ?? false);
    this.writeLock = new QueueLock(client, path, 'write-', predecessor, opts.reentrant ?? false);
  }
}
