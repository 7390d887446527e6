/** Shared by the storage tests: temporary directories, a capturing logger, deterministic entries. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { createLogger, type Logger } from '../../src/util/log.js';

export { entries, entry, payload } from './entries.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

export async function tempDir(prefix = 'pk-storage-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A logger that keeps its lines, parsed. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { logger: createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l)) }), lines };
}
