/**
 * Group membership: each member holds an ephemeral znode named by its id (its
 * data is the member's metadata); everyone watches the group and keeps a live
 * view with join, updated, left and failed events. A member whose session ends
 * (it stopped heartbeating) disappears within its session timeout and is
 * reported failed. A member that loses its session rejoins as soon as its client
 * has a new one. One that leaves first records its node's czxid in the group
 * node's data (a short list of recent departures), then deletes its node, so
 * observers, reading the list when they see the node go, report it left.
 * The same MembershipView interface as gossip membership.
 */
import { EventEmitter } from 'node:events';
import { BadVersionError, ConnectionLossError, NodeExistsError, ZooKeeperError, type ConnectionState, type PulseClient } from '../client/index.js';
import type { Member, MembershipEvent, MembershipEventType, MembershipListener, MembershipView } from '../membership/events.js';
import { deleteIfExists, ensurePath, retryOnLoss, singleFlight, waitForDeletion } from './util.js';

/** How many recent departures the group node remembers. */
const DEPARTURES = 64;

function departures(data: Buffer): number[] {
  try {
    const v = JSON.parse(data.toString() || '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'number') : [];
  } catch {
    return [];
  }
}

export interface GroupOptions {
  /** Parent znode of the group. */
  path: string;
  /** This member's name; omit to watch the group without joining. */
  id?: string;
  meta?: Uint8Array;
  /** The group owns its client: closing or leaving the group closes it (ends the session). */
  ownsClient?: boolean;
}

export class GroupMembership implements MembershipView {
  private readonly emitter = new EventEmitter();
  private readonly view = new Map<string, Member>();
  /** czxid of each member's node: which incarnation of the member it is. */
  private readonly czxids = new Map<string, number>();
  private readonly memberWatchers = new Map<string, () => void>();
  private meta: Buffer;
  private leaving = false;
  private closed = false;
  readonly refresh = singleFlight(() => this.refreshOnce());
  private readonly register = singleFlight(() => this.registerOnce());

  private constructor(
    private readonly client: PulseClient,
    private readonly opts: GroupOptions,
  ) {
    this.meta = Buffer.from(opts.meta ?? []);
  }

  /**
   * Joins (or only watches) the group; resolves once this member's node exists and
   * the first view is read. If an earlier incarnation of the same id is still
   * there (its session not yet expired), joining waits for it to go.
   */
  static async join(client: PulseClient, opts: GroupOptions): Promise<GroupMembership> {
    const g = new GroupMembership(client, opts);
    await ensurePath(client, opts.path);
    client.on('state', g.onState);
    if (opts.id) await g.register();
    await g.refresh();
    return g;
  }

  private readonly onState = (s: ConnectionState) => {
    // Same session: catch up with what was missed. New session: the node went with the old one; refresh rejoins.
    if (s === 'reconnected' || s === 'connected') void this.refresh();
  };

  private readonly onChildren = () => void this.refresh();

  private get ownPath(): string {
    return `${this.opts.path}/${this.opts.id}`;
  }

  private async registerOnce(): Promise<void> {
    for (;;) {
      if (this.leaving || this.closed) return;
      try {
        await this.client.create(this.ownPath, this.meta, { mode: 'ephemeral' });
        return;
      } catch (e) {
        if (!(e instanceof NodeExistsError) && !(e instanceof ConnectionLossError)) throw e;
      }
      // The node exists: ours (created before a lost reply) or an earlier incarnation's, which is awaited.
      const stat = await retryOnLoss(this.client, () => this.client.exists(this.ownPath));
      if (stat && stat.ephemeralOwner === this.client.sessionId) return;
      if (stat) await waitForDeletion(this.client, this.ownPath);
    }
  }

  private emit(type: MembershipEventType, member: Member): void {
    const ev: MembershipEvent = { type, member };
    this.emitter.emit(type, ev);
    this.emitter.emit('change', ev);
  }

  /** Re-reads the children (re-arming the child watch) and diffs against the view. */
  private async refreshOnce(): Promise<void> {
    if (this.closed) return;
    let children: string[];
    try {
      children = await this.client.getChildren(this.opts.path, this.onChildren);
    } catch (e) {
      if (e instanceof ZooKeeperError) return; // disconnected or expired: the next state change refreshes again
      throw e;
    }
    const now = new Set(children);
    const gone = [...this.view.keys()].filter((id) => !now.has(id));
    if (gone.length > 0) {
      let left: number[] = [];
      try {
        left = departures((await this.client.getData(this.opts.path)).data);
      } catch {
        // unreadable now: report them failed rather than not at all
      }
      for (const id of gone) {
        const m = this.view.get(id);
        if (!m) continue;
        this.view.delete(id);
        const graceful = left.includes(this.czxids.get(id) ?? -1);
        this.czxids.delete(id);
        this.memberWatchers.delete(id);
        this.emit(graceful ? 'left' : 'failed', { ...m, state: graceful ? 'left' : 'failed' });
      }
    }
    for (const id of children) if (!this.view.has(id)) await this.watchMember(id);
    // Our node went (session expired, or deleted by hand) while we mean to stay: rejoin.
    if (this.opts.id && !now.has(this.opts.id) && !this.leaving) void this.register().catch(() => {});
  }

  /** Reads a member's data with a watch, so updates are seen. */
  private async watchMember(id: string): Promise<void> {
    if (this.closed) return;
    let watcher = this.memberWatchers.get(id);
    if (!watcher) this.memberWatchers.set(id, (watcher = () => void this.watchMember(id)));
    try {
      const { data, stat } = await this.client.getData(`${this.opts.path}/${id}`, watcher);
      this.czxids.set(id, stat.czxid);
      const known = this.view.get(id);
      const member: Member = { id, meta: new Uint8Array(data), state: 'alive' };
      this.view.set(id, member);
      if (!known) this.emit('join', member);
      else if (!Buffer.from(known.meta).equals(data)) this.emit('updated', member);
    } catch (e) {
      // Gone already (the child watch reports it), or the connection dropped (the reconnect refresh catches up).
      if (!(e instanceof ZooKeeperError)) throw e;
    }
  }

  members(): Member[] {
    return [...this.view.values()];
  }

  on(type: MembershipEventType | 'change', listener: MembershipListener): this {
    this.emitter.on(type, listener);
    return this;
  }

  once(type: MembershipEventType | 'change', listener: MembershipListener): this {
    this.emitter.once(type, listener);
    return this;
  }

  off(type: MembershipEventType | 'change', listener: MembershipListener): this {
    this.emitter.off(type, listener);
    return this;
  }

  /** Publishes new metadata for this member (kept for rejoining, too). */
  async update(meta: Uint8Array): Promise<void> {
    if (!this.opts.id) throw new Error('not a member');
    this.meta = Buffer.from(meta);
    await this.client.setData(this.ownPath, this.meta);
  }

  /** Leaves the group gracefully (others see `left`), then stops watching. */
  async leave(): Promise<void> {
    this.leaving = true;
    if (this.opts.id) {
      const mine = await retryOnLoss(this.client, () => this.client.exists(this.ownPath));
      if (mine && mine.ephemeralOwner === this.client.sessionId) {
        // Record the departure before the node goes (compare-and-set on the group node).
        for (;;) {
          const { data, stat } = await retryOnLoss(this.client, () => this.client.getData(this.opts.path));
          if (departures(data).includes(mine.czxid)) break;
          const list = [...departures(data), mine.czxid].slice(-DEPARTURES);
          try {
            await this.client.setData(this.opts.path, Buffer.from(JSON.stringify(list)), stat.version);
            break;
          } catch (e) {
            if (!(e instanceof BadVersionError) && !(e instanceof ConnectionLossError)) throw e;
            // A lost reply may have been applied: the next read shows it.
          }
        }
        await deleteIfExists(this.client, this.ownPath);
      }
    }
    await this.close();
  }

  /**
   * Stops watching (the member's node stays until its session ends; leave() removes it).
   * With ownsClient the client is closed too, so the session ends and others see `failed` at once.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.client.off('state', this.onState);
    this.emitter.removeAllListeners();
    if (this.opts.ownsClient) await this.client.close();
  }
}
