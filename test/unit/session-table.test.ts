import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionTable } from '../../src/tree/session-table.js';

const password = (b: number) => Buffer.alloc(16, b);

test('session table: set, get, has, delete, size and iteration', () => {
  const t = new SessionTable();
  t.set(1n, { timeoutMs: 4000, password: password(1) });
  t.set(2n, { timeoutMs: 6000, password: password(2) });
  assert.equal(t.size, 2);
  assert.ok(t.has(1n) && !t.has(3n));
  assert.deepEqual(t.get(2n), { timeoutMs: 6000, password: password(2) });
  assert.equal(t.get(3n), undefined);
  t.set(2n, { timeoutMs: 8000, password: password(9) }); // replaced in place
  assert.deepEqual([...t], [
    [1n, { timeoutMs: 4000, password: password(1) }],
    [2n, { timeoutMs: 8000, password: password(9) }],
  ]);
  assert.ok(t.delete(1n));
  assert.ok(!t.delete(1n));
  assert.equal(t.size, 1);
  assert.throws(() => t.set(5n, { timeoutMs: 1, password: Buffer.alloc(8) }), /16 bytes/);
});

test('session table: what was read stays as it was after the slot is reused, across growth', () => {
  const t = new SessionTable();
  t.set(1n, { timeoutMs: 4000, password: password(1) });
  const before = t.get(1n)!;
  const snapshot = [...t];
  t.delete(1n);
  t.set(7n, { timeoutMs: 9000, password: password(7) }); // takes the freed slot
  for (let i = 100n; i < 3000n; i++) t.set(i, { timeoutMs: Number(i), password: password(Number(i) & 0xff) });
  assert.deepEqual(before, { timeoutMs: 4000, password: password(1) });
  assert.deepEqual(snapshot, [[1n, { timeoutMs: 4000, password: password(1) }]]);
  assert.deepEqual(t.get(7n), { timeoutMs: 9000, password: password(7) });
  assert.deepEqual(t.get(2999n), { timeoutMs: 2999, password: password(2999 & 0xff) });
  assert.equal(t.size, 2901);
});

test('session table: a copy holds every session in columns and stays as it was', () => {
  const t = new SessionTable();
  for (let i = 1n; i <= 5n; i++) t.set(i, { timeoutMs: Number(i) * 1000, password: password(Number(i)) });
  t.delete(3n);
  const c = t.copy();
  t.set(9n, { timeoutMs: 9000, password: password(9) }); // takes slot 3's place after the copy
  const rows = Array.from(c.ids, (id, k) => [id, c.timeouts[k], Buffer.from(c.passwords.subarray(k * 16, k * 16 + 16))]);
  assert.deepEqual(rows, [1n, 2n, 4n, 5n].map((id) => [id, Number(id) * 1000, password(Number(id))]));
});
