/**
 * Server-side watches with ZooKeeper 3.8's semantics. A watcher is a connection
 * (as ZooKeeper's ServerCnxn); its registrations go when the connection does.
 *
 * One-shot data watches (getData, exists) and child watches (getChildren) fire once;
 * persistent watches see every event on their path; persistent-recursive ones see
 * NodeCreated/NodeDeleted/NodeDataChanged on the path and below, never
 * NodeChildrenChanged. A watcher hears an event at most once however it registered.
 */
import { ErrorCode } from '../protocol/errors.js';
import { EventType, WatcherType } from '../protocol/opcodes.js';
import type { SetWatchesRequest } from '../protocol/records.js';

export type WatcherId = number;

const enum Kind {
  Data = 1,
  Child = 2,
  Persistent = 4,
  Recursive = 8,
}

/** What the setWatches catch-up needs to know of the tree. */
export interface WatchedTree {
  stat(path: string): { mzxid: number; pzxid: number } | undefined;
}

export interface Notification {
  watcher: WatcherId;
  type: EventType;
  path: string;
}

export class WatchManager {
  /** path -> watcher -> kinds bitmask */
  private readonly byPath = new Map<string, Map<WatcherId, number>>();
  /** watcher -> paths it watches */
  private readonly byWatcher = new Map<WatcherId, Set<string>>();
  private recursiveCount = 0;

  private add(path: string, w: WatcherId, kind: Kind): void {
    let m = this.byPath.get(path);
    if (!m) this.byPath.set(path, (m = new Map()));
    const had = m.get(w) ?? 0;
    if (kind === Kind.Recursive && !(had & Kind.Recursive)) this.recursiveCount++;
    m.set(w, had | kind);
    let paths = this.byWatcher.get(w);
    if (!paths) this.byWatcher.set(w, (paths = new Set()));
    paths.add(path);
  }

  addData(path: string, w: WatcherId): void {
    this.add(path, w, Kind.Data);
  }
  addChild(path: string, w: WatcherId): void {
    this.add(path, w, Kind.Child);
  }
  addPersistent(path: string, w: WatcherId, recursive: boolean): void {
    this.add(path, w, recursive ? Kind.Recursive : Kind.Persistent);
  }

  /** Clears kinds from one registration; returns the kinds that were actually there. */
  private clear(path: string, w: WatcherId, kinds: number): number {
    const m = this.byPath.get(path);
    const had = m?.get(w);
    if (!m || had === undefined) return 0;
    const removed = had & kinds;
    if (removed & Kind.Recursive) this.recursiveCount--;
    const left = had & ~kinds;
    if (left) m.set(w, left);
    else {
      m.delete(w);
      if (m.size === 0) this.byPath.delete(path);
      const paths = this.byWatcher.get(w);
      paths?.delete(path);
      if (paths && paths.size === 0) this.byWatcher.delete(w);
    }
    return removed;
  }

  /**
   * The watchers to notify of a tree event, in registration order of their
   * watches on the path; one-shot registrations are consumed.
   */
  trigger(type: EventType, path: string, out: Notification[] = []): Notification[] {
    const seen = new Set<WatcherId>();
    const oneShot = type === EventType.NodeChildrenChanged ? Kind.Child : type === EventType.NodeDeleted ? Kind.Data | Kind.Child : Kind.Data;
    const m = this.byPath.get(path);
    if (m) {
      for (const [w, kinds] of [...m]) {
        const persistentHit = kinds & Kind.Persistent || (kinds & Kind.Recursive && type !== EventType.NodeChildrenChanged);
        const consumed = kinds & oneShot;
        if (consumed) this.clear(path, w, consumed);
        if ((consumed || persistentHit) && !seen.has(w)) {
          seen.add(w);
          out.push({ watcher: w, type, path });
        }
      }
    }
    if (this.recursiveCount > 0 && type !== EventType.NodeChildrenChanged) {
      for (let p = parentPath(path); p !== undefined; p = parentPath(p)) {
        const pm = this.byPath.get(p);
        if (!pm) continue;
        for (const [w, kinds] of pm) {
          if (kinds & Kind.Recursive && !seen.has(w)) {
            seen.add(w);
            out.push({ watcher: w, type, path });
          }
        }
      }
    }
    return out;
  }

  /** Forgets every watch of a connection that closed. */
  removeWatcher(w: WatcherId): void {
    const paths = this.byWatcher.get(w);
    if (!paths) return;
    for (const path of [...paths]) this.clear(path, w, ~0);
  }

  private kindsFor(watcherType: number): number {
    switch (watcherType) {
      case WatcherType.Children:
        return Kind.Child;
      case WatcherType.Data:
        return Kind.Data;
      case WatcherType.Any:
        return Kind.Data | Kind.Child | Kind.Persistent | Kind.Recursive;
      default:
        return 0;
    }
  }

  /** removeWatches: OK when something was removed, NOWATCHER otherwise. */
  removeWatches(path: string, watcherType: number, w: WatcherId): number {
    return this.clear(path, w, this.kindsFor(watcherType)) ? ErrorCode.OK : ErrorCode.NOWATCHER;
  }

  /** checkWatches: OK when such a watch exists, NOWATCHER otherwise. */
  checkWatches(path: string, watcherType: number, w: WatcherId): number {
    const kinds = this.byPath.get(path)?.get(w) ?? 0;
    return kinds & this.kindsFor(watcherType) ? ErrorCode.OK : ErrorCode.NOWATCHER;
  }

  /**
   * setWatches after a reconnect: fires what the client missed since relZxid and
   * registers the rest (ZooKeeper's DataTree.setWatches).
   */
  setWatches(req: SetWatchesRequest, w: WatcherId, tree: WatchedTree, out: Notification[] = []): Notification[] {
    const rel = req.relativeZxid;
    for (const path of req.dataWatches) {
      const s = tree.stat(path);
      if (!s) out.push({ watcher: w, type: EventType.NodeDeleted, path });
      else if (s.mzxid > rel) out.push({ watcher: w, type: EventType.NodeDataChanged, path });
      else this.addData(path, w);
    }
    for (const path of req.existWatches) {
      if (tree.stat(path)) out.push({ watcher: w, type: EventType.NodeCreated, path });
      else this.addData(path, w);
    }
    for (const path of req.childWatches) {
      const s = tree.stat(path);
      if (!s) out.push({ watcher: w, type: EventType.NodeDeleted, path });
      else if (s.pzxid > rel) out.push({ watcher: w, type: EventType.NodeChildrenChanged, path });
      else this.addChild(path, w);
    }
    for (const path of req.persistentWatches) this.addPersistent(path, w, false);
    for (const path of req.persistentRecursiveWatches) this.addPersistent(path, w, true);
    return out;
  }

  // ---- introspection for the four-letter words --------------------------------

  summary(): { connections: number; paths: number; total: number } {
    let total = 0;
    for (const m of this.byPath.values()) total += m.size;
    return { connections: this.byWatcher.size, paths: this.byPath.size, total };
  }

  pathsOf(w: WatcherId): string[] {
    return [...(this.byWatcher.get(w) ?? [])];
  }

  watchers(): IterableIterator<WatcherId> {
    return this.byWatcher.keys();
  }

  watchersOf(path: string): WatcherId[] {
    return [...(this.byPath.get(path)?.keys() ?? [])];
  }

  paths(): IterableIterator<string> {
    return this.byPath.keys();
  }
}

function parentPath(path: string): string | undefined {
  if (path === '/') return undefined;
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
