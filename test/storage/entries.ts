/** Deterministic entries, shared by the storage tests and the crash child process. */
import type { Entry } from '../../src/consensus/types.js';

/** Content that depends only on index and term, so a reader can check any entry. */
export function payload(index: number, term = 1): Buffer {
  const unit = `${index}/${term};`;
  return Buffer.from(unit.repeat(1 + ((index * 7919) % 37)));
}

export function entry(index: number, term = 1): Entry {
  return { index, term, kind: 'normal', data: payload(index, term) };
}

export function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}
