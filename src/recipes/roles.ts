/**
 * Role assignment: named roles (shards, partitions, duties) spread evenly over the
 * live members of a group and handed to survivors when a member fails. Every
 * member computes the same assignment from the same view, with no coordination
 * beyond the group: rendezvous hashing with bounded load (no member gets more than
 * ceil(roles / members)), so a joining member takes over only what evenness needs
 * and the others keep their roles.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { MembershipView } from '../membership/events.js';

function score(role: string, member: string): bigint {
  return createHash('sha256').update(role).update('\u0000').update(member).digest().readBigUInt64BE(0);
}

/** The assignment of roles to members: the same for everyone given the same inputs. */
export function assignRoles(roles: readonly string[], members: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>(members.map((m) => [m, []]));
  if (members.length === 0) return out;
  const cap = Math.ceil(roles.length / members.length);
  for (const role of [...roles].sort()) {
    const ranked = [...members].sort((a, b) => {
      const d = score(role, b) - score(role, a);
      return d > 0n ? 1 : d < 0n ? -1 : a < b ? -1 : 1;
    });
    const owner = ranked.find((m) => out.get(m)!.length < cap)!;
    out.get(owner)!.push(role);
  }
  return out;
}

/** Keeps this member's roles current as the view changes; emits `assigned` with the full assignment. */
export class RoleAssignment extends EventEmitter {
  private current = new Map<string, string[]>();

  constructor(
    private readonly view: MembershipView,
    private readonly roles: readonly string[],
    private readonly self?: string,
  ) {
    super();
    view.on('change', () => this.recompute());
    this.recompute();
  }

  private recompute(): void {
    const members = this.view.members().map((m) => m.id).sort();
    const next = assignRoles(this.roles, members);
    const before = JSON.stringify([...this.current]);
    this.current = next;
    if (JSON.stringify([...next]) !== before) this.emit('assigned', next);
  }

  /** Roles of one member (this member's by default). */
  rolesOf(member = this.self): string[] {
    return member ? (this.current.get(member) ?? []) : [];
  }

  get assignment(): Map<string, string[]> {
    return this.current;
  }
}
