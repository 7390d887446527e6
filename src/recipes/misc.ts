/** Smaller recipes: a watched configuration value, barriers and a distributed counter. */
import { BadVersionError, NodeExistsError, NoNodeError, type PulseClient } from '../client/index.js';
import { deleteIfExists, ensurePath, waitForDeletion } from './util.js';

/** A configuration value as a typed stream: the current value first, then every change. */
export async function* watchConfig<T>(client: PulseClient, path: string, parse: (data: Buffer) => T): AsyncGenerator<T> {
  for (;;) {
    let wake!: () => void;
    const changed = new Promise<void>((r) => (wake = r));
    try {
      const { data } = await client.getData(path, () => wake());
      yield parse(data);
    } catch (e) {
      if (!(e instanceof NoNodeError)) throw e;
      // Not there yet: wait for it to be created (or retry at once if it just was).
      if (await client.exists(path, () => wake())) continue;
    }
    await changed;
  }
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

  async wait(): Promise<void> {
    await waitForDeletion(this.client, this.path);
  }
}

/** A double barrier: `count` participants enter together and leave together. */
export class DoubleBarrier {
  private readonly node: string;

  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
    private readonly count: number,
    id: string,
  ) {
    this.node = `${path}/${id}`;
  }

  private async waitForCount(pred: (n: number) => boolean): Promise<void> {
    for (;;) {
      const wake = new Promise<void>((resolve) => {
        this.client.getChildren(this.path, () => resolve()).then((c) => {
          if (pred(c.filter((n) => n !== 'ready').length)) resolve();
        }, resolve);
      });
      await wake;
      const now = (await this.client.getChildren(this.path)).filter((n) => n !== 'ready').length;
      if (pred(now)) return;
    }
  }

  async enter(): Promise<void> {
    await ensurePath(this.client, this.path);
    await this.client.create(this.node, Buffer.alloc(0), { mode: 'ephemeral' }).catch((e) => {
      if (!(e instanceof NodeExistsError)) throw e;
    });
    await this.waitForCount((n) => n >= this.count);
  }

  async leave(): Promise<void> {
    await deleteIfExists(this.client, this.node);
    await this.waitForCount((n) => n === 0);
  }
}

/** A counter updated with compare-and-set on the znode's version. */
export class DistributedCounter {
  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
  ) {}

  async get(): Promise<number> {
    try {
      return Number((await this.client.getData(this.path)).data.toString() || '0');
    } catch (e) {
      if (e instanceof NoNodeError) return 0;
      throw e;
    }
  }

  /** Adds delta atomically; returns the new value. */
  async add(delta = 1): Promise<number> {
    for (;;) {
      try {
        const { data, stat } = await this.client.getData(this.path);
        const next = Number(data.toString() || '0') + delta;
        await this.client.setData(this.path, Buffer.from(String(next)), stat.version);
        return next;
      } catch (e) {
        if (e instanceof NoNodeError) {
          await ensurePath(this.client, this.path);
          continue;
        }
        if (e instanceof BadVersionError) continue;
        throw e;
      }
    }
  }
}
