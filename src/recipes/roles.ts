/**
 * Role assignment: named roles (shards, partitions, duties) spread evenly over the
 * live members of a group and handed to survivors when a member fails.
 *
 * The assignment is one znode that every member watches, so all see the same
 * one. It is written only by a coordinator, chosen by leader election among the
 * members (compare-and-set on the znode's version), which recomputes it from the
 * previous one whenever the group changes: roles of live members stay where they
 * are as far as evenness allows, so a joining member takes only what evenness
 * needs and a failing member's roles go to survivors without other moves. A
 * member's node goes when its session expires, so its roles move within the
 * session timeout; the coordinator's own failure is covered by the election.
 * While its connection is suspended a member holds no roles (it may be declared
 * failed meanwhile), as a leader gives up leadership.
 *
 * Layout under the path: members/ (the group), coordinator/ (the election),
 * assignment (JSON {"roles": {role: member}}).
 */
import { EventEmitter } from 'node:events';
import { BadVersionError, NodeExistsError, ZooKeeperError, type ConnectionState, type PulseClient } from '../client/index.js';
import { LeaderElection } from './election.js';
import { GroupMembership } from './group.js';
import { ensurePath, retryOnLoss, singleFlight } from './util.js';

/** Role -> owning member. */
export type RoleOwners = ReadonlyMap<string, string>;

/**
 * The next assignment from the previous one: every member gets floor or ceil of
 * roles/members; as few roles as possible change owner. Deterministic: the same
 * inputs give the same output.
 */
export function rebalance(previous: RoleOwners, members: readonly string[], roles: readonly string[]): Map<string, string> {
  const next = new Map<string, string>();
  const live = [...new Set(members)].sort();
  if (live.length === 0) return next;
  const sortedRoles = [...new Set(roles)].sort();
  const kept = new Map<string, string[]>(live.map((m) => [m, []]));
  const orphans: string[] = [];
  for (const role of sortedRoles) {
    const owner = previous.get(role);
    if (owner !== undefined && kept.has(owner)) kept.get(owner)!.push(role);
    else orphans.push(role);
  }
  // The members keeping the most get the larger share, so the fewest roles move.
  const base = Math.floor(sortedRoles.length / live.length);
  let larger = sortedRoles.length % live.length;
  const byKept = [...live].sort((a, b) => kept.get(b)!.length - kept.get(a)!.length || (a < b ? -1 : 1));
  const share = new Map<string, number>();
  for (const m of byKept) share.set(m, base + (larger-- > 0 ? 1 : 0));
  for (const m of live) {
    const mine = kept.get(m)!;
    orphans.push(...mine.splice(share.get(m)!));
  }
  orphans.sort();
  // Hand out what is free to the members furthest below their share.
  for (const role of orphans) {
    const taker = live.reduce((best, m) => {
      const room = share.get(m)! - kept.get(m)!.length;
      const bestRoom = share.get(best)! - kept.get(best)!.length;
      return room > bestRoom ? m : best;
    });
    kept.get(taker)!.push(role);
  }
  for (const [m, rs] of kept) for (const r of rs) next.set(r, m);
  return next;
}

/** Member -> its roles (sorted), every live member present. */
export function rolesByMember(owners: RoleOwners, members: readonly string[] = []): Map<string, string[]> {
  const out = new Map<string, string[]>([...members].sort().map((m) => [m, []]));
  for (const [role, m] of [...owners].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!out.has(m)) out.set(m, []);
    out.get(m)!.push(role);
  }
  return out;
}

function decode(data: Buffer): Map<string, string> {
  try {
    const v = JSON.parse(data.toString() || '{}') as { roles?: Record<string, unknown> };
    return new Map(Object.entries(v.roles ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return new Map();
  }
}

function encode(owners: RoleOwners): Buffer {
  return Buffer.from(JSON.stringify({ roles: Object.fromEntries([...owners].sort(([a], [b]) => (a < b ? -1 : 1))) }));
}

const same = (a: RoleOwners, b: RoleOwners) => a.size === b.size && [...a].every(([r, m]) => b.get(r) === m);

export interface RoleOptions {
  /** Parent znode of the assignment. */
  path: string;
  /** The roles to spread (every member should pass the same list). */
  roles: readonly string[];
  /** This member's id; omit to only follow the assignment. */
  id?: string;
  /** This member's metadata in the group. */
  meta?: Uint8Array;
}

/**
 * A member's part in the assignment. Emits `assigned` (this member's roles, the
 * full assignment as member -> roles) whenever either changes.
 */
export class RoleAssignment extends EventEmitter {
  private owners = new Map<string, string>();
  private mineNow: string[] = [];
  /** What was last published, to emit only changes. */
  private published = '';
  private closed = false;
  private group: GroupMembership | undefined;
  private election: LeaderElection | undefined;
  private readonly read = singleFlight(() => this.readOnce());
  private readonly coordinate = singleFlight(() => this.coordinateOnce());

  private constructor(
    private readonly client: PulseClient,
    private readonly opts: RoleOptions,
  ) {
    super();
  }

  /** Joins as a member (or follows only) and resolves once the current assignment is read. */
  static async start(client: PulseClient, opts: RoleOptions): Promise<RoleAssignment> {
    const a = new RoleAssignment(client, opts);
    await ensurePath(client, opts.path);
    await retryOnLoss(client, async () => {
      try {
        await client.create(a.assignmentPath, encode(new Map()));
      } catch (e) {
        if (!(e instanceof NodeExistsError)) throw e;
      }
    });
    client.on('state', a.onState);
    await a.read();
    if (opts.id) {
      a.group = await GroupMembership.join(client, { path: `${opts.path}/members`, id: opts.id, meta: opts.meta });
      a.group.on('change', () => void a.coordinate());
      a.election = new LeaderElection(client, `${opts.path}/coordinator`, opts.id);
      a.election.on('elected', () => void a.coordinate());
      await a.election.start();
    }
    return a;
  }

  private get assignmentPath(): string {
    return `${this.opts.path}/assignment`;
  }

  private readonly onState = (s: ConnectionState) => {
    if (s === 'suspended' || s === 'expired' || s === 'closed') this.publish();
    if (s === 'connected' || s === 'reconnected') void this.read();
  };

  private readonly onAssignment = () => void this.read();

  private async readOnce(): Promise<void> {
    if (this.closed) return;
    try {
      this.owners = decode((await this.client.getData(this.assignmentPath, this.onAssignment)).data);
    } catch (e) {
      if (e instanceof ZooKeeperError) return; // read again on reconnect
      throw e;
    }
    this.publish();
  }

  /** Emits `assigned` if this member's roles or the assignment changed. */
  private publish(): void {
    if (this.closed) return;
    const connected = this.client.state === 'connected' || this.client.state === 'reconnected';
    this.mineNow = connected && this.opts.id ? this.rolesOf(this.opts.id) : [];
    const key = JSON.stringify([this.mineNow, [...this.owners]]);
    if (key === this.published) return;
    this.published = key;
    this.emit('assigned', this.mineNow, this.assignment);
  }

  private async coordinateOnce(): Promise<void> {
    if (this.closed || !this.election?.isLeader || !this.group) return;
    for (;;) {
      const members = this.group.members().map((m) => m.id);
      try {
        const { data, stat } = await this.client.getData(this.assignmentPath);
        const previous = decode(data);
        const next = rebalance(previous, members, this.opts.roles);
        if (same(previous, next) || !this.election.isLeader) return;
        await this.client.setData(this.assignmentPath, encode(next), stat.version);
        return;
      } catch (e) {
        if (e instanceof BadVersionError) continue;
        if (e instanceof ZooKeeperError) return; // disconnected: leadership is gone; the next coordinator recomputes
        throw e;
      }
    }
  }

  /** Roles of one member (this member's by default) as the assignment has them. */
  rolesOf(member = this.opts.id): string[] {
    if (member === undefined) return [];
    return [...this.owners].filter(([, m]) => m === member).map(([r]) => r).sort();
  }

  /** This member's roles now: none while its connection is suspended. */
  get mine(): string[] {
    return this.mineNow;
  }

  /** The whole assignment, member -> roles. */
  get assignment(): Map<string, string[]> {
    return rolesByMember(this.owners);
  }

  /** Leaves the group and the election (survivors take this member's roles) and stops following. */
  async close(): Promise<void> {
    this.closed = true;
    this.client.off('state', this.onState);
    await this.election?.close();
    await this.group?.leave();
  }
}
