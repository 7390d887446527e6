/**
 * Group membership on the coordination service: each member holds an ephemeral
 * znode (its data is the member's metadata); everyone watches the group and sees
 * join, updated, left and failed events and a live view. A member whose session
 * ends (it stopped heartbeating) disappears within its session timeout and is
 * reported failed. One that leaves first records its node's czxid in the group
 * node's data (a short list of recent departures), then deletes its node, so
 * observers, reading the list after they see the node go, report it left.
 * The same MembershipView interface as gossip membership.
 */
import { EventEmitter } from 'node:events';
import { BadVersionError, NodeExistsError, ZooKeeperError, type PulseClient } from '../client/index.js';
import type { Member, MembershipEvent, MembershipEventType, MembershipListener, MembershipView } from '../membership/events.js';
import { deleteIfExists, ensurePath } from './util.js';

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
}

export class GroupMembership implements MembershipView {
  private readonly emitter = new EventEmitter();
  private readonly view = new Map<string, Member>();
  /** czxid of each member's node: which incarnation of the member it is. */
  private readonly czxids = new Map<string, number>();
  private closed = false;

  private constructor(
    private readonly client: PulseClient,
    private readonly opts: GroupOptions,
  ) {}

  /** Joins (or only watches) the group; resolves once the first view is read. */
  static async join(client: PulseClient, opts: GroupOptions): Promise<GroupMembership> {
    const g = new GroupMembership(client, opts);
    await ensurePath(client, opts.path);
    if (opts.id) await g.register();
    // After a reconnect the session's ephemerals are still there; after expiry the member must rejoin with a new client.
    client.on('reconnected', () => void g.refresh());
    await g.refresh();
    return g;
  }

  private async register(): Promise<void> {
    try {
      await this.client.create(`${this.opts.path}/${this.opts.id}`, Buffer.from(this.opts.meta ?? []), { mode: 'ephemeral' });
    } catch (e) {
      if (!(e instanceof NodeExistsError)) throw e;
      // A previous session's node not yet expired: take the name over once it goes.
      throw new Error(`member ${this.opts.id} is already in group ${this.opts.path}`);
    }
  }

  private emit(type: MembershipEventType, member: Member): void {
    const ev: MembershipEvent = { type, member };
    this.emitter.emit(type, ev);
    this.emitter.emit('change', ev);
  }

  /** Re-reads the children (re-arming the child watch) and diffs against the view. */
  private async refresh(): Promise<void> {
    if (this.closed) return;
    let children: string[];
    try {
      children = await this.client.getChildren(this.opts.path, () => void this.refresh());
    } catch {
      return; // disconnected: the reconnect handler refreshes again
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
        const m = this.view.get(id)!;
        this.view.delete(id);
        const graceful = left.includes(this.czxids.get(id) ?? -1);
        this.czxids.delete(id);
        this.emit(graceful ? 'left' : 'failed', { ...m, state: graceful ? 'left' : 'failed' });
      }
    }
    for (const id of children) if (!this.view.has(id)) await this.watchMember(id);
  }

  /** Reads a member's data with a watch, so updates and graceful leaving are seen. */
  private async watchMember(id: string): Promise<void> {
    const path = `${this.opts.path}/${id}`;
    try {
      const { data, stat } = await this.client.getData(path, (e) => {
        if (e.type === 'dataChanged') void this.watchMember(id);
      });
      this.czxids.set(id, stat.czxid);
      const known = this.view.get(id);
      const member: Member = { id, meta: new Uint8Array(data), state: 'alive' };
      this.view.set(id, member);
      if (!known) this.emit('join', member);
      else if (!Buffer.from(known.meta).equals(data)) this.emit('updated', member);
    } catch (e) {
      // Gone already, or the connection dropped: the reconnect refresh catches up.
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

  off(type: MembershipEventType | 'change', listener: MembershipListener): this {
    this.emitter.off(type, listener);
    return this;
  }

  /** Publishes new metadata for this member. */
  async update(meta: Uint8Array): Promise<void> {
    if (!this.opts.id) throw new Error('not a member');
    await this.client.setData(`${this.opts.path}/${this.opts.id}`, Buffer.from(meta));
  }

  /** Leaves the group gracefully (others see `left`). */
  async leave(): Promise<void> {
    if (this.opts.id) {
      const path = `${this.opts.path}/${this.opts.id}`;
      const mine = await this.client.exists(path);
      if (mine) {
        // Record the departure before the node goes (compare-and-set on the group node).
        for (;;) {
          const { data, stat } = await this.client.getData(this.opts.path);
          const list = [...departures(data), mine.czxid].slice(-DEPARTURES);
          try {
            await this.client.setData(this.opts.path, Buffer.from(JSON.stringify(list)), stat.version);
            break;
          } catch (e) {
            if (!(e instanceof BadVersionError)) throw e;
          }
        }
        await deleteIfExists(this.client, path);
      }
    }
    await this.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.emitter.removeAllListeners();
  }
}
