/** Waiting and fault helpers shared by the client, recipe and shell tests. */
import { PulseClient } from '../../src/client/index.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds; fails after `ms` naming what it waited for. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what = 'condition'): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Expires a client's session at once, as ZooKeeper's own tests do: another
 * connection attaches to the session with its id and password and closes it.
 * The client hears of it when it next reaches the server.
 */
export async function expireSession(connectionString: string, client: PulseClient): Promise<void> {
  const twin = await PulseClient.connect(connectionString, {
    session: { id: client.sessionId, password: client.sessionPassword },
    sessionTimeoutMs: client.sessionTimeoutMs,
    renewExpiredSession: false,
  });
  await twin.close();
}
