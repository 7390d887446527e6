/**
 * The queue of membership news waiting to be piggybacked: at most one item per
 * member (newer news replaces older), handed out least-sent first and, among
 * items sent equally often, newest first. Items live in one linked list per
 * send count, so taking k items costs O(k) however long the queue is (plus the
 * items skipped for not fitting the byte budget).
 *
 * An item put with `encore` gets a second round of sends once the first is used
 * up, handed out only to takers that ask for it (messages that go anyway), after
 * everything still in its first round.
 */
import { gossipSize } from './size.js';
import type { Gossip } from './types.js';

interface Entry {
  member: number;
  gossip: Gossip;
  bytes: number;
  transmits: number;
  /** Still to have its second round. */
  encore: boolean;
  /** In its second round. */
  late: boolean;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** The smallest item there can be (a one-byte id and nothing else): below this much room, stop looking. */
const MIN_ITEM_BYTES = 8;

export class BroadcastQueue {
  private readonly byMember = new Map<number, Entry>();
  /** Head of the list of first-round items sent exactly i times (lateHeads: the same for second-round items). */
  private readonly heads: (Entry | undefined)[] = [];
  private readonly lateHeads: (Entry | undefined)[] = [];
  private lateCount = 0;

  /** Items queued, in either round. */
  get size(): number {
    return this.byMember.size;
  }

  /** Items still in their first round. */
  get fresh(): number {
    return this.byMember.size - this.lateCount;
  }

  /** Queues news of a member, replacing whatever was queued about it. */
  put(member: number, gossip: Gossip, encore = false): void {
    const old = this.byMember.get(member);
    if (old) this.remove(old);
    const e: Entry = { member, gossip, bytes: gossipSize(gossip), transmits: 0, encore, late: false, prev: undefined, next: undefined };
    this.byMember.set(member, e);
    this.link(e);
  }

  /**
   * Items, least-sent first, whose encoded sizes add up to at most maxBytes (one item is
   * taken even if alone it is larger); each counts as sent once more and ends its round
   * after `limit` sends. With `late`, items in their second round fill what room is left.
   */
  take(maxBytes: number, limit: number, late = false): Gossip[] {
    const picked: Entry[] = [];
    const room = this.pick(this.heads, maxBytes, picked);
    if (late) this.pick(this.lateHeads, room, picked);
    const out: Gossip[] = [];
    for (const e of picked) {
      out.push(e.gossip);
      if (e.transmits + 1 < limit) {
        this.unlink(e);
        e.transmits++;
        this.link(e);
      } else if (e.encore && !e.late) {
        this.unlink(e);
        e.late = true;
        e.transmits = 0;
        this.lateCount++;
        this.link(e);
      } else this.remove(e);
    }
    return out;
  }

  /** Adds to `picked` what fits `room` from these lists, least-sent first; returns the room left. */
  private pick(heads: (Entry | undefined)[], room: number, picked: Entry[]): number {
    for (let t = 0; t < heads.length && room >= MIN_ITEM_BYTES; t++) {
      for (let e = heads[t]; e && room >= MIN_ITEM_BYTES; e = e.next) {
        if (e.bytes <= room || picked.length === 0) {
          picked.push(e);
          room -= e.bytes;
        }
      }
    }
    return room;
  }

  private remove(e: Entry): void {
    this.unlink(e);
    this.byMember.delete(e.member);
    if (e.late) this.lateCount--;
  }

  private link(e: Entry): void {
    const heads = e.late ? this.lateHeads : this.heads;
    while (heads.length <= e.transmits) heads.push(undefined);
    const head = heads[e.transmits];
    e.prev = undefined;
    e.next = head;
    if (head) head.prev = e;
    heads[e.transmits] = e;
  }

  private unlink(e: Entry): void {
    if (e.prev) e.prev.next = e.next;
    else (e.late ? this.lateHeads : this.heads)[e.transmits] = e.next;
    if (e.next) e.next.prev = e.prev;
    e.prev = e.next = undefined;
  }
}
