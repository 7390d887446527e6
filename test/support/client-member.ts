/**
 * A member process for the recipe fault tests: it joins a group, stands for
 * election, takes a lock and a write lock, and takes part in role assignment
 * under one base path, then obeys commands on stdin ("barrier": enter a double
 * barrier of two; "count": add to a counter until killed), reporting each step on
 * stdout as a JSON line. The test kills it with SIGKILL.
 *
 * argv[2]: JSON { connectionString, sessionTimeoutMs, id, base, roles }
 */
import { createInterface } from 'node:readline';
import { PulseClient } from '../../src/client/index.js';
import { DistributedCounter, DoubleBarrier, GroupMembership, LeaderElection, Lock, ReadWriteLock, RoleAssignment } from '../../src/recipes/index.js';

export interface MemberConfig {
  connectionString: string;
  /** Use the hosts in the order given (as the test's own clients do on an ensemble). */
  keepHostOrder?: boolean;
  sessionTimeoutMs: number;
  id: string;
  base: string;
  roles: string[];
}

const cfg = JSON.parse(process.argv[2]) as MemberConfig;
const say = (event: string, extra: object = {}) => process.stdout.write(JSON.stringify({ event, ...extra }) + '\n');

const client = await PulseClient.connect(cfg.connectionString, { sessionTimeoutMs: cfg.sessionTimeoutMs, random: cfg.keepHostOrder ? () => 0.99 : undefined });
say('connected', { sessionId: String(client.sessionId) });
await GroupMembership.join(client, { path: `${cfg.base}/group`, id: cfg.id });
const election = new LeaderElection(client, `${cfg.base}/election`, cfg.id);
const elected = new Promise<number>((resolve) => election.once('elected', resolve));
await election.start();
say('elected', { token: await elected });
await new Lock(client, `${cfg.base}/lock`).acquire();
await new ReadWriteLock(client, `${cfg.base}/rw`).writeLock.acquire();
const roles = await RoleAssignment.start(client, { path: `${cfg.base}/roles`, roles: cfg.roles, id: cfg.id });
roles.on('assigned', (mine: string[]) => say('roles', { mine }));
say('ready', { mine: roles.mine });

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'barrier') {
    await new DoubleBarrier(client, `${cfg.base}/double`, 2).enter();
    say('entered');
  } else if (line === 'count') {
    const counter = new DistributedCounter(client, `${cfg.base}/counter`);
    for (let i = 0; i < 1_000_000; i++) say('added', { value: await counter.add() });
  }
}
