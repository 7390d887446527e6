/**
 * Child process of the crash test: appends batches from several concurrent
 * appenders and prints `synced <index>` once a sync() covering that index has
 * resolved. Usage: wal-crash-child.ts <dir> <snapshot index> <seed>. Opening also
 * releases the log up to the snapshot index, so kills land in recovery and removal
 * too. Stops by itself after 20 s; the test kills it long before.
 */
import { WriteAheadLog } from '../../src/storage/wal.js';
import { createLogger } from '../../src/util/log.js';
import { Rng } from '../support/random.js';
import { entries } from './entries.js';

const [dir, floorArg, seedArg] = process.argv.slice(2);
const floor = Number(floorArg);
const rng = new Rng(Number(seedArg));
const { wal } = await WriteAheadLog.open(dir, {
  segmentBytes: 64 * 1024,
  snapshot: floor > 0 ? { index: floor, term: 1 } : undefined,
  logger: createLogger({ level: 'warn' }),
});
await wal.releaseTo(floor);
process.stdout.write(`open ${wal.lastIndex}\n`);

const deadline = performance.now() + 20_000;
async function appender(): Promise<void> {
  while (performance.now() < deadline) {
    const from = wal.lastIndex + 1;
    const to = from + rng.int(20);
    wal.append(entries(from, to), { term: 1, vote: 1, commit: to });
    await wal.sync();
    process.stdout.write(`synced ${to}\n`);
  }
}
await Promise.all([appender(), appender(), appender(), appender()]);
await wal.close();
