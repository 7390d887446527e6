/** The role-assignment rule, pure: evenness, determinism and stickiness over random histories. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rebalance, rolesByMember } from '../../src/recipes/index.js';

function prng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

function assertEven(owners: Map<string, string>, members: string[], roles: string[]) {
  assert.equal(owners.size, members.length ? roles.length : 0, 'every role has an owner');
  const counts = [...rolesByMember(owners, members).values()].map((r) => r.length);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `uneven: ${counts}`);
  for (const m of owners.values()) assert.ok(members.includes(m), `${m} is not live`);
}

test('even, and the same whatever order members are listed in', () => {
  const roles = Array.from({ length: 12 }, (_, i) => `shard-${i}`);
  const three = rebalance(new Map(), ['a', 'b', 'c'], roles);
  assertEven(three, ['a', 'b', 'c'], roles);
  assert.deepEqual(rebalance(new Map(), ['c', 'a', 'b'], [...roles].reverse()), three);
  assert.deepEqual(rebalance(new Map(), [], roles), new Map());
  assert.deepEqual(rolesByMember(rebalance(new Map(), ['a', 'b', 'c'], ['x'])), new Map([['a', ['x']]]));
});

test('over random histories of joins and failures, only the roles that must move do', () => {
  const random = prng(7);
  let moves = 0;
  let needed = 0;
  let joins = 0;
  for (let history = 0; history < 200; history++) {
    const roles = Array.from({ length: 1 + Math.floor(random() * 40) }, (_, i) => `r${i}`);
    let members = ['m0'];
    let owners = rebalance(new Map(), members, roles);
    for (let step = 0, next = 1; step < 12; step++) {
      const joining = members.length < 2 || random() < 0.6;
      const before = owners;
      if (joining) {
        const newcomer = `m${next++}`;
        members = [...members, newcomer];
        owners = rebalance(before, members, roles);
        assertEven(owners, members, roles);
        for (const [role, owner] of owners) {
          // A role changes hands only to go to the newcomer: no reshuffle among the others.
          if (before.get(role) !== owner) {
            assert.equal(owner, newcomer, `${role} moved from ${before.get(role)} to ${owner}`);
            moves++;
          }
        }
        needed += Math.floor(roles.length / members.length);
        joins++;
      } else {
        const failed = members[Math.floor(random() * members.length)];
        members = members.filter((m) => m !== failed);
        owners = rebalance(before, members, roles);
        assertEven(owners, members, roles);
        for (const [role, owner] of owners) {
          // Survivors keep what they had; only the failed member's roles find new owners.
          if (before.get(role) !== owner) assert.equal(before.get(role), failed, `${role} moved between survivors`);
        }
      }
    }
  }
  // A newcomer takes floor or ceil of its share, never more than evenness needs.
  assert.ok(moves >= needed && moves <= needed + joins, `${moves} moves for ${needed} needed in ${joins} joins`);
});

test('a role list that changes keeps the owners of roles that remain', () => {
  const before = rebalance(new Map(), ['a', 'b'], ['x', 'y', 'z', 'w']);
  const after = rebalance(before, ['a', 'b'], ['x', 'y', 'z', 'w', 'v', 'u']);
  for (const r of ['x', 'y', 'z', 'w']) assert.equal(after.get(r), before.get(r));
  assertEven(after, ['a', 'b'], ['x', 'y', 'z', 'w', 'v', 'u']);
});
