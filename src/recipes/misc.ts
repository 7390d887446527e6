/** Smaller recipes: a watched configuration value, barriers and a distributed counter. */
import { BadVersionError, ConnectionLossError, NodeExistsError, NoNodeError, SessionExpiredError, type PulseClient, type Stat } from '../client/index.js';
import { createProtected, delay, deleteIfExists, ensurePath, retryOnLoss, waitForDeletion } from './util.js';

/**
 * A configuration value as a typed stream: the current value first, then each
 * new version (a version is never yielded twice, even across reconnects). While
 * the node does not exist the stream waits for it. It carries on through
 * reconnects and session renewal and ends when the client closes; a value that
 * `parse` rejects ends it with parse's error.
 */
export async function* watchConfig<T>(client: PulseClient, path: string, parse: (data: Buffer) => T): AsyncGenerator<T> {
  let seen = -1;
  for (;;) {
    let fire!: () => void;
    const changed = new Promise<void>((r) => (fire = r));
    let value: { data: Buffer; stat: Stat } | undefined;
    try {
      value = await client.getData(path, () => fire());
    } catch (e) {
      if (e instanceof NoNodeError) {
        // Not there: wait for its creation (or read at once if it just appeared).
        try {
          if (await client.exists(path, () => fire())) continue;
        } catch {
          continue;
        }
      } else if (e instanceof ConnectionLossError || e instanceof SessionExpiredError) {
        if (client.state === 'closed') return;
        try {
          await client.whenConnected(Infinity);
        } catch {
          return; // closed, or expired for good
        }
        continue;
      } else throw e;
    }
    if (value && value.stat.mzxid !== seen) {
      seen = value.stat.mzxid;
      yield parse(value.data);
    }
    let stop!: () => void;
    const ended = new Promise<void>((r) => (stop = r));
    const onState = () => client.state === 'closed' && stop();
    client.on('state', onState);
    await Promise.race([changed, ended]);
    client.off('state', onState);
    if (client.state === 'closed') return;
  }
}

export class BarrierTimeoutError extends Error {
  override name = 'BarrierTimeoutError';
}

/** A barrier: clients wait until whoever set it removes it. */
export class Barrier {
  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
  ) {}

  async set(): Promise<void> {
    await ensurePath(this.client, this.path);
  }

  async remove(): Promise<void> {
    await deleteIfExists(this.client, this.path);
  }

  /** Resolves once the barrier is removed (BarrierTimeoutError after timeoutMs). */
  async wait(timeoutMs = Infinity): Promise<void> {
    if (!(await waitForDeletion(this.client, this.path, performance.now() + timeoutMs))) {
      throw new BarrierTimeoutError(`barrier ${this.path} still up after ${timeoutMs} ms`);
    }
  }
}

/**
 * A double barrier: `count` participants enter together and leave together.
 * Entering registers an ephemeral node; the participant that completes the count
 * creates a persistent `ready` node, which everyone waiting watches, so a fast
 * participant leaving again cannot strand a slow one still entering. Leaving
 * deletes the node and waits until every participant's is gone. A participant
 * that dies leaves by its session's expiry. One barrier path serves one round.
 */
export class DoubleBarrier {
  private node: string | undefined;

  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
    private readonly count: number,
  ) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`participant count must be a positive integer, got ${count}`);
  }

  private get readyPath(): string {
    return `${this.path}/ready`;
  }

  private async participants(watch?: () => void): Promise<number> {
    return (await retryOnLoss(this.client, () => this.client.getChildren(this.path, watch))).filter((n) => n !== 'ready').length;
  }

  /** Resolves once `count` participants have entered (BarrierTimeoutError after timeoutMs, leaving the barrier). */
  async enter(timeoutMs = Infinity): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    await ensurePath(this.client, this.path);
    let fire!: () => void;
    const readyCreated = new Promise<void>((r) => (fire = r));
    const ready = await retryOnLoss(this.client, () => this.client.exists(this.readyPath, () => fire()));
    this.node = (await createProtected(this.client, this.path, 'p-')).path;
    if (ready) return;
    if ((await this.participants()) >= this.count) {
      await retryOnLoss(this.client, async () => {
        try {
          await this.client.create(this.readyPath);
        } catch (e) {
          if (!(e instanceof NodeExistsError)) throw e;
        }
      });
      return;
    }
    if (await Promise.race([readyCreated.then(() => false), delay(deadline - performance.now()).then(() => true)])) {
      await deleteIfExists(this.client, this.node);
      this.node = undefined;
      throw new BarrierTimeoutError(`${this.count} participants did not enter ${this.path} within ${timeoutMs} ms`);
    }
  }

  /** Resolves once every participant has left (BarrierTimeoutError after timeoutMs). */
  async leave(timeoutMs = Infinity): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    if (this.node) await deleteIfExists(this.client, this.node);
    this.node = undefined;
    for (;;) {
      let fire!: () => void;
      const changed = new Promise<void>((r) => (fire = r));
      if ((await this.participants(() => fire())) === 0) break;
      if (await Promise.race([changed.then(() => false), delay(deadline - performance.now()).then(() => true)])) {
        throw new BarrierTimeoutError(`participants still in ${this.path} after ${timeoutMs} ms`);
      }
    }
    await deleteIfExists(this.client, this.readyPath);
  }
}

/**
 * A counter updated with compare-and-set on the znode's version. An add whose
 * reply is lost fails with ConnectionLossError: it may or may not have been
 * applied, and it is not retried.
 */
export class DistributedCounter {
  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
  ) {}

  private static parse(path: string, data: Buffer): number {
    const text = data.toString();
    const n = Number(text || '0');
    if (!Number.isSafeInteger(n)) throw new Error(`counter ${path} holds "${text.slice(0, 40)}", not an integer`);
    return n;
  }

  async get(): Promise<number> {
    try {
      return DistributedCounter.parse(this.path, (await retryOnLoss(this.client, () => this.client.getData(this.path))).data);
    } catch (e) {
      if (e instanceof NoNodeError) return 0;
      throw e;
    }
  }

  /** Adds delta atomically; returns the new value. */
  async add(delta = 1): Promise<number> {
    for (;;) {
      let current: { data: Buffer; stat: Stat };
      try {
        current = await retryOnLoss(this.client, () => this.client.getData(this.path));
      } catch (e) {
        if (!(e instanceof NoNodeError)) throw e;
        await ensurePath(this.client, this.path);
        continue;
      }
      const next = DistributedCounter.parse(this.path, current.data) + delta;
      try {
        await this.client.setData(this.path, Buffer.from(String(next)), current.stat.version);
        return next;
      } catch (e) {
        if (!(e instanceof BadVersionError)) throw e;
      }
    }
  }
}
