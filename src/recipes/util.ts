import { NodeExistsError, NoNodeError, type PulseClient } from '../client/index.js';

/** Creates every missing node of a path as persistent (mkdir -p). */
export async function ensurePath(client: PulseClient, path: string): Promise<void> {
  let at = '';
  for (const part of path.split('/').filter(Boolean)) {
    at += '/' + part;
    try {
      await client.create(at);
    } catch (e) {
      if (!(e instanceof NodeExistsError)) throw e;
    }
  }
}

/** Deletes a node, treating "already gone" as done. */
export async function deleteIfExists(client: PulseClient, path: string): Promise<void> {
  try {
    await client.delete(path);
  } catch (e) {
    if (!(e instanceof NoNodeError)) throw e;
  }
}

/** The sequence number ZooKeeper appended to a sequential node's name. */
export function sequenceOf(name: string): number {
  return Number(name.slice(-10));
}

/** Resolves when the node is deleted (or is already gone). */
export function waitForDeletion(client: PulseClient, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client
      .exists(path, (e) => {
        if (e.type === 'deleted') resolve();
        else waitForDeletion(client, path).then(resolve, reject);
      })
      .then((stat) => {
        if (!stat) resolve();
      }, reject);
  });
}
