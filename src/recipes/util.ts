/** Pieces the recipes share: idempotent retries across reconnects, protected sequential nodes, waiting for deletion. */
import { randomUUID } from 'node:crypto';
import { ConnectionLossError, NodeExistsError, NoNodeError, type PulseClient, type Stat } from '../client/index.js';

/**
 * Runs an idempotent operation, running it again after each ConnectionLossError
 * once the client is connected again. Non-idempotent operations must not go
 * through here: their fate is unknown after a lost reply.
 */
export async function retryOnLoss<T>(client: PulseClient, op: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof ConnectionLossError) || client.state === 'closed') throw e;
      await client.whenConnected(Infinity);
    }
  }
}

/** Creates every missing node of a path as persistent (mkdir -p); safe to repeat. */
export async function ensurePath(client: PulseClient, path: string): Promise<void> {
  let at = '';
  for (const part of path.split('/').filter(Boolean)) {
    at += '/' + part;
    await retryOnLoss(client, async () => {
      try {
        await client.create(at);
      } catch (e) {
        if (!(e instanceof NodeExistsError)) throw e;
      }
    });
  }
}

/** Deletes a node, treating "already gone" as done; safe to repeat. */
export async function deleteIfExists(client: PulseClient, path: string): Promise<void> {
  await retryOnLoss(client, async () => {
    try {
      await client.delete(path);
    } catch (e) {
      if (!(e instanceof NoNodeError)) throw e;
    }
  });
}

/** The sequence number the server appended to a sequential node's name. */
export function sequenceOf(name: string): number {
  return Number(name.slice(-10));
}

export const bySequence = (a: string, b: string) => sequenceOf(a) - sequenceOf(b);

/**
 * Creates an ephemeral sequential node whose name carries a unique tag, so that
 * when the reply is lost the node can be found again instead of being created
 * twice (an orphan would block a queue until the session ends).
 */
export async function createProtected(client: PulseClient, dir: string, prefix: string, data: Buffer = Buffer.alloc(0)): Promise<{ path: string; stat: Stat }> {
  const name = `${prefix}${randomUUID()}-`;
  for (;;) {
    try {
      return await client.create2(`${dir}/${name}`, data, { mode: 'ephemeral-sequential' });
    } catch (e) {
      if (!(e instanceof ConnectionLossError) || client.state === 'closed') throw e;
    }
    await client.whenConnected(Infinity);
    const found = (await retryOnLoss(client, () => client.getChildren(dir))).find((c) => c.startsWith(name));
    if (!found) continue;
    const stat = await retryOnLoss(client, () => client.exists(`${dir}/${found}`));
    if (stat && stat.ephemeralOwner === client.sessionId) return { path: `${dir}/${found}`, stat };
  }
}

/** Resolves after ms, or never when ms is not finite; the timer does not hold the process. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (Number.isFinite(ms)) setTimeout(resolve, Math.max(0, ms)).unref();
  });
}

/**
 * Waits until a node is gone: true when it is (or was already), false if the
 * deadline (performance.now() time) passes first. Survives reconnects: the watch
 * is re-registered and a deletion missed meanwhile is reported on reconnect.
 */
export async function waitForDeletion(client: PulseClient, path: string, deadline = Infinity): Promise<boolean> {
  for (;;) {
    let fire!: () => void;
    const changed = new Promise<void>((r) => (fire = r));
    let stat: Stat | null;
    try {
      stat = await client.exists(path, () => fire());
    } catch (e) {
      if (!(e instanceof ConnectionLossError) || client.state === 'closed') throw e;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      try {
        await client.whenConnected(left);
      } catch {
        return false;
      }
      continue;
    }
    if (!stat) return true;
    const timedOut = await Promise.race([changed.then(() => false), delay(deadline - performance.now()).then(() => true)]);
    if (timedOut) return false;
  }
}

/** Runs `task` so that calls made while it runs fold into one more run after it (single flight). */
export function singleFlight(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
}
