/**
 * A member's durable state, under its data directory:
 *
 *   <dataDir>/wal/ (or walDir)                       write-ahead log (wal.ts)
 *     0000000000000001-0000000000000001.log          segments: <seq>-<first index>.log
 *     0000000000000002-0000000000052817.log          a new one every segmentBytes (64 MiB)
 *   <dataDir>/snap/                                  snapshot files (snapshot-files.ts)
 *     snap-<term>-<index>.snap                       the newest two
 *
 * Recovery takes the newest snapshot whose CRC checks and the log's entries after
 * it. The log keeps entries back to the older of the two snapshots, so if the newest
 * one is found damaged the member still recovers from the one before it.
 *
 * The log may live on its own device (ZooKeeper's dataLogDir): its fsyncs then do
 * not wait behind snapshot writes.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry, HardState, SnapshotMeta } from '../consensus/types.js';
import { createLogger, type Logger } from '../util/log.js';
import { SnapshotStore, snapshotFileName, type StoredSnapshot } from './snapshot-files.js';
import { WriteAheadLog } from './wal.js';

export type { SnapshotReceiver, StoredSnapshot } from './snapshot-files.js';

export interface MemberStorageOptions {
  /** Directory of the log (default <dataDir>/wal). */
  walDir?: string;
  /** fdatasync the log on every sync (default true); ZooKeeper's forceSync. */
  forceSync?: boolean;
  logger?: Logger;
  /** Log segment size (default 64 MiB). */
  segmentBytes?: number;
  /** Largest log record (default 16 MiB). */
  maxRecordBytes?: number;
}

export interface RestoredStorage {
  hardState: HardState;
  /** The snapshot to load into the data tree first, if there is one. */
  snapshot?: { meta: SnapshotMeta; body: () => AsyncIterable<Buffer> };
  /** Log entries after the snapshot, in order. */
  entries: Entry[];
  /** Highest index the state machine holds once the snapshot is loaded. */
  applied: number;
}

export class MemberStorage {
  private constructor(
    readonly restored: RestoredStorage,
    readonly wal: WriteAheadLog,
    readonly snapshots: SnapshotStore,
  ) {}

  static async open(dataDir: string, opts: MemberStorageOptions = {}): Promise<MemberStorage> {
    const logger = opts.logger ?? createLogger();
    const snapshots = await SnapshotStore.open(join(dataDir, 'snap'), { logger });
    const latest = await snapshots.latest();
    const { wal, recovered } = await WriteAheadLog.open(opts.walDir ?? join(dataDir, 'wal'), {
      forceSync: opts.forceSync,
      segmentBytes: opts.segmentBytes,
      maxRecordBytes: opts.maxRecordBytes,
      snapshot: latest?.meta,
      logger,
    });
    const restored: RestoredStorage = {
      hardState: recovered.hardState,
      snapshot: latest && { meta: latest.meta, body: () => latest.body() },
      entries: recovered.entries,
      applied: latest?.meta.index ?? 0,
    };
    return new MemberStorage(restored, wal, snapshots);
  }

  /**
   * Step 1 of a Ready batch: the snapshot received from the leader (already
   * finished by snapshots.beginReceive), then the entries, then the hard state, made
   * durable by one sync shared with concurrent callers.
   */
  async persist(batch: { snapshot?: SnapshotMeta; entries: readonly Entry[]; hardState?: HardState }): Promise<void> {
    if (batch.snapshot) {
      const path = join(this.snapshots.dir, snapshotFileName(batch.snapshot));
      await access(path).catch(() => {
        throw new Error(`snapshot ${batch.snapshot!.index} must be received into ${path} before it is installed`);
      });
      this.wal.installSnapshot(batch.snapshot);
    }
    this.wal.append(batch.entries, batch.hardState);
    await this.wal.sync();
  }

  /**
   * Saves a snapshot of the applied state (body streamed from the live tree) and
   * drops the log segments the older kept snapshot no longer needs.
   */
  async saveSnapshot(meta: SnapshotMeta, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<StoredSnapshot> {
    const stored = await this.snapshots.write(meta, body);
    const older = (await this.snapshots.list())[1];
    if (older) await this.wal.releaseTo(older.index);
    return stored;
  }

  close(): Promise<void> {
    return this.wal.close();
  }
}

export function openMemberStorage(dataDir: string, opts: MemberStorageOptions = {}): Promise<MemberStorage> {
  return MemberStorage.open(dataDir, opts);
}
