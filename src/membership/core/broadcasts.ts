/**
 * The queue of membership news waiting to be piggybacked: at most one item per
 * member (newer news replaces older), handed out least-sent first and, among
 * items sent equally often, newest first. Items live in one linked list per
 * send count, so taking k items costs O(k) however long the queue is (plus the
 * items skipped for not fitting the byte budget).
 */
import { gossipSize } from './size.js';
import type { Gossip } from './types.js';

interface Entry {
  member: number;
  gossip: Gossip;
  bytes: number;
  transmits: number;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** The smallest item there can be (a one-byte id and nothing else): below this much room, stop looking. */
const MIN_ITEM_BYTES = 8;

export class BroadcastQueue {
  private readonly byMember = new Map<number, Entry>();
  /** Head of the list of items sent exactly i times. */
  private readonly heads: (Entry | undefined)[] = [];

  get size(): number {
    return this.byMember.size;
  }

  /** Queues news of a member, replacing whatever was queued about it. */
  put(member: number, gossip: Gossip): void {
    const old = this.byMember.get(member);
    if (old) this.unlink(old);
    const e: Entry = { member, gossip, bytes: gossipSize(gossip), transmits: 0, prev: undefined, next: undefined };
    this.byMember.set(member, e);
    this.link(e);
  }

  /**
   * Items, least-sent first, whose encoded sizes add up to at most maxBytes (one item is
   * taken even if alone it is larger); each counts as sent once more and is dropped after
   * `limit` sends.
   */
  take(maxBytes: number, limit: number): Gossip[] {
    const picked: Entry[] = [];
    let room = maxBytes;
    for (let t = 0; t < this.heads.length && room >= MIN_ITEM_BYTES; t++) {
      for (let e = this.heads[t]; e && room >= MIN_ITEM_BYTES; e = e.next) {
        if (e.bytes <= room || picked.length === 0) {
          picked.push(e);
          room -= e.bytes;
        }
      }
    }
    const out: Gossip[] = [];
    for (const e of picked) {
      this.unlink(e);
      if (++e.transmits >= limit) this.byMember.delete(e.member);
      else this.link(e);
      out.push(e.gossip);
    }
    return out;
  }

  private link(e: Entry): void {
    while (this.heads.length <= e.transmits) this.heads.push(undefined);
    const head = this.heads[e.transmits];
    e.prev = undefined;
    e.next = head;
    if (head) head.prev = e;
    this.heads[e.transmits] = e;
  }

  private unlink(e: Entry): void {
    if (e.prev) e.prev.next = e.next;
    else this.heads[e.transmits] = e.next;
    if (e.next) e.next.prev = e.prev;
    e.prev = e.next = undefined;
  }
}
