/**
 * Configurations: membership changes, quorums, and the history of configurations along the
 * log (a member uses the latest configuration in its log, so a truncated config entry rolls
 * its configuration back).
 */
import type { ConfigChange, Configuration, MemberId } from './types.js';

/** Longest member context (address string) accepted in a change. */
export const MAX_CONTEXT_LENGTH = 4096;

export function isVoter(c: Configuration, id: MemberId): boolean {
  return c.membership.voters.includes(id);
}

export function isLearner(c: Configuration, id: MemberId): boolean {
  return c.membership.learners.includes(id);
}

export function quorum(voters: number): number {
  return (voters >> 1) + 1;
}

/** Why `change` cannot apply to `c`, or undefined if it can. */
export function checkChange(c: Configuration, change: ConfigChange): string | undefined {
  const { op, id, context } = change;
  if (!Number.isSafeInteger(id) || id <= 0) return `invalid member id ${id}`;
  if (typeof context !== 'string' || context.length > MAX_CONTEXT_LENGTH) return `context must be a string of at most ${MAX_CONTEXT_LENGTH} characters`;
  switch (op) {
    case 'add-voter':
      return isVoter(c, id) ? `member ${id} is already a voter` : undefined;
    case 'add-learner':
      if (isLearner(c, id)) return `member ${id} is already a learner`;
      return isVoter(c, id) ? `member ${id} is a voter; remove it first` : undefined;
    case 'remove':
      if (!isVoter(c, id) && !isLearner(c, id)) return `member ${id} is not a member`;
      return isVoter(c, id) && c.membership.voters.length === 1 ? 'cannot remove the last voter' : undefined;
    default:
      return `unknown change ${String(op)}`;
  }
}

/** The configuration after `change` (which checkChange accepted). Adding a voter that is a learner promotes it. */
export function applyChange(c: Configuration, change: ConfigChange): Configuration {
  const { op, id } = change;
  const voters = c.membership.voters.filter((v) => v !== id);
  const learners = c.membership.learners.filter((v) => v !== id);
  const contexts: Record<MemberId, string> = { ...c.contexts };
  if (op === 'add-voter') voters.push(id);
  if (op === 'add-learner') learners.push(id);
  if (op === 'remove') delete contexts[id];
  else contexts[id] = change.context;
  voters.sort((a, b) => a - b);
  learners.sort((a, b) => a - b);
  return { membership: { voters, learners }, contexts };
}

/** Checks a configuration that arrived from outside (storage, a peer). */
export function validConfiguration(c: Configuration | undefined): c is Configuration {
  if (!c || typeof c !== 'object' || !c.membership || typeof c.contexts !== 'object' || c.contexts === null) return false;
  const { voters, learners } = c.membership;
  if (!Array.isArray(voters) || !Array.isArray(learners)) return false;
  const ids = [...voters, ...learners];
  return ids.every((id) => Number.isSafeInteger(id) && id > 0) && new Set(ids).size === ids.length;
}

export function copyConfiguration(c: Configuration): Configuration {
  return {
    membership: { voters: [...c.membership.voters], learners: [...c.membership.learners] },
    contexts: { ...c.contexts },
  };
}

/** Configurations by the log index that introduced them; the first covers the start of the in-memory log. */
export class ConfigHistory {
  private items: { index: number; config: Configuration }[];

  constructor(base: Configuration, index: number) {
    this.items = [{ index, config: base }];
  }

  latest(): Configuration {
    return this.items[this.items.length - 1].config;
  }

  /** Index of the entry that introduced the latest configuration (or of the base). */
  latestIndex(): number {
    return this.items[this.items.length - 1].index;
  }

  at(index: number): Configuration {
    for (let i = this.items.length - 1; i > 0; i--) if (this.items[i].index <= index) return this.items[i].config;
    return this.items[0].config;
  }

  push(index: number, config: Configuration): void {
    this.items.push({ index, config });
  }

  /** Forgets configurations from entries at `index` and after (they were overwritten). */
  truncate(index: number): void {
    while (this.items.length > 1 && this.items[this.items.length - 1].index >= index) this.items.pop();
  }

  /** Forgets configurations superseded at or before `index` (the log was compacted there). */
  compact(index: number): void {
    let keep = 0;
    while (keep + 1 < this.items.length && this.items[keep + 1].index <= index) keep++;
    if (keep > 0) this.items = this.items.slice(keep);
  }

  reset(index: number, config: Configuration): void {
    this.items = [{ index, config }];
  }
}
