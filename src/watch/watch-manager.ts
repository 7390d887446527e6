/**
 * Server-side watches with ZooKeeper 3.8's semantics. A watcher is a connection
 * (as ZooKeeper's ServerCnxn); its registrations go when the connection does.
 *
 * As in ZooKeeper there are two tables, data watches (getData, exists) and child
 * watches (getChildren); addWatch puts a persistent or persistent-recursive entry
 * in both. Each (watcher, path) entry of a table has one mode, the one registered
 * last. A standard entry fires once; a persistent one every time; a recursive one
 * for events on its path and below, except NodeChildrenChanged.
 */
import { ErrorCode } from '../protocol/errors.js';
import { EventType, WatcherType } from '../protocol/opcodes.js';
import type { SetWatchesRequest } from '../protocol/records.js';

export type WatcherId = number;

export const enum WatchMode {
  Standard = 0,
  Persistent = 1,
  Recursive = 2,
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

function parentPath(path: string): string | undefined {
  if (path === '/') return undefined;
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** One of ZooKeeper's two watch tables. */
class WatchTable {
  readonly byPath = new Map<string, Map<WatcherId, WatchMode>>();
  readonly byWatcher = new Map<WatcherId, Set<string>>();
  private recursive = 0;

  add(path: string, w: WatcherId, mode: WatchMode): void {
    let m = this.byPath.get(path);
    if (!m) this.byPath.set(path, (m = new Map()));
    const had = m.get(w);
    if (had === WatchMode.Recursive) this.recursive--;
    if (mode === WatchMode.Recursive) this.recursive++;
    m.set(w, mode);
    let paths = this.byWatcher.get(w);
    if (!paths) this.byWatcher.set(w, (paths = new Set()));
    paths.add(path);
  }

  remove(path: string, w: WatcherId): boolean {
    const m = this.byPath.get(path);
    const had = m?.get(w);
    if (!m || had === undefined) return false;
    if (had === WatchMode.Recursive) this.recursive--;
    m.delete(w);
    if (m.size === 0) this.byPath.delete(path);
    const paths = this.byWatcher.get(w)!;
    paths.delete(path);
    if (paths.size === 0) this.byWatcher.delete(w);
    return true;
  }

  removeWatcher(w: WatcherId): void {
    const paths = this.byWatcher.get(w);
    if (!paths) return;
    for (const path of [...paths]) this.remove(path, w);
  }

  /** ZooKeeper's containsWatcher: any watcher on the path counts, or this watcher's recursive entry. */
  contains(path: string, w: WatcherId): boolean {
    const m = this.byPath.get(path);
    return m !== undefined && m.size > 0;
  }

  /** Adds the watchers an event reaches to `hit`, consuming standard entries. */
  trigger(type: EventType, path: string, hit: Set<WatcherId>, skip?: Set<WatcherId>): void {
    const m = this.byPath.get(path);
    if (m) {
      for (const [w, mode] of m) {
        if (mode === WatchMode.Recursive) {
          if (type !== EventType.NodeChildrenChanged && !skip?.has(w)) hit.add(w);
          continue;
        }
        if (!skip?.has(w)) hit.add(w);
        if (mode === WatchMode.Standard) this.remove(path, w);
      }
    }
    if (this.recursive === 0 || type === EventType.NodeChildrenChanged) return;
    for (let p = parentPath(path); p !== undefined; p = parentPath(p)) {
      const pm = this.byPath.get(p);
      if (!pm) continue;
      for (const [w, mode] of pm) if (mode === WatchMode.Recursive && !skip?.has(w)) hit.add(w);
    }
  }
}

export class WatchManager {
  private readonly data = new WatchTable();
  private readonly child = new WatchTable();

  addData(path: string, w: WatcherId): void {
    this.data.add(path, w, WatchMode.Standard);
  }
  addChild(path: string, w: WatcherId): void {
    this.child.add(path, w, WatchMode.Standard);
  }
  addPersistent(path: string, w: WatcherId, recursive: boolean): void {
    const mode = recursive ? WatchMode.Recursive : WatchMode.Persistent;
    this.data.add(path, w, mode);
    this.child.add(path, w, mode);
  }

  /**
   * The watchers to notify of one tree event; standard entries are consumed.
   * Each watcher hears an event once, however many entries it reached.
   */
  trigger(type: EventType, path: string, out: Notification[] = []): Notification[] {
    const hit = new Set<WatcherId>();
    switch (type) {
      case EventType.NodeCreated:
      case EventType.NodeDataChanged:
        this.data.trigger(type, path, hit);
        break;
      case EventType.NodeDeleted: {
        this.data.trigger(type, path, hit);
        const more = new Set<WatcherId>();
        this.child.trigger(type, path, more, hit);
        for (const w of more) hit.add(w);
        break;
      }
      case EventType.NodeChildrenChanged:
        this.child.trigger(type, path, hit);
        break;
    }
    for (const watcher of hit) out.push({ watcher, type, path });
    return out;
  }

  /** Forgets every watch of a connection that closed. */
  removeWatcher(w: WatcherId): void {
    this.data.removeWatcher(w);
    this.child.removeWatcher(w);
  }

  /** removeWatches: OK when something was removed, NOWATCHER otherwise. */
  removeWatches(path: string, watcherType: number, w: WatcherId): number {
    let removed = false;
    if (watcherType === WatcherType.Children || watcherType === WatcherType.Any) removed = this.child.remove(path, w) || removed;
    if (watcherType === WatcherType.Data || watcherType === WatcherType.Any) removed = this.data.remove(path, w) || removed;
    return removed ? ErrorCode.OK : ErrorCode.NOWATCHER;
  }

  /** checkWatches, with ZooKeeper 3.8's rule that any watcher on the path counts. */
  checkWatches(path: string, watcherType: number, w: WatcherId): number {
    let found = false;
    if (watcherType === WatcherType.Children || watcherType === WatcherType.Any) found = this.child.contains(path, w);
    if (!found && (watcherType === WatcherType.Data || watcherType === WatcherType.Any)) found = this.data.contains(path, w);
    return found ? ErrorCode.OK : ErrorCode.NOWATCHER;
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
  // As ZooKeeper 3.8's wchs, wchc and wchp, these list the data-watch table only
  // (getData, exists, and addWatch's entry there); count() takes in both tables, as mntr's.

  summary(): { connections: number; paths: number; total: number } {
    let total = 0;
    for (const m of this.data.byPath.values()) total += m.size;
    return { connections: this.data.byWatcher.size, paths: this.data.byPath.size, total };
  }

  /** Entries in both tables. */
  count(): number {
    let total = 0;
    for (const m of this.data.byPath.values()) total += m.size;
    for (const m of this.child.byPath.values()) total += m.size;
    return total;
  }

  pathsOf(w: WatcherId): string[] {
    return [...(this.data.byWatcher.get(w) ?? [])];
  }

  watchers(): WatcherId[] {
    return [...this.data.byWatcher.keys()];
  }

  watchersOf(path: string): WatcherId[] {
    return [...(this.data.byPath.get(path)?.keys() ?? [])];
  }

  paths(): string[] {
    return [...this.data.byPath.keys()];
  }
}
