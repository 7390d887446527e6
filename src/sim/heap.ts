/** A binary min-heap of events ordered by time, then by insertion (so runs are deterministic). */
export class EventHeap<T> {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly items: T[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(time: number, item: T): void {
    const seq = this.seq++;
    // Move the hole up from the end, then drop the new entry into it.
    let i = this.items.length;
    this.times.push(time);
    this.seqs.push(seq);
    this.items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = this.times[p];
      if (pt < time || (pt === time && this.seqs[p] < seq)) break;
      this.move(p, i);
      i = p;
    }
    this.times[i] = time;
    this.seqs[i] = seq;
    this.items[i] = item;
  }

  peekTime(): number {
    return this.items.length ? this.times[0] : Infinity;
  }

  pop(): { time: number; item: T } | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const top = { time: this.times[0], item: this.items[0] };
    const time = this.times.pop()!;
    const seq = this.seqs.pop()!;
    const item = this.items.pop()!;
    const m = n - 1;
    if (m === 0) return top;
    // Move the hole down from the root, then put the former last entry into it.
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= m) break;
      const r = c + 1;
      if (r < m && (this.times[r] < this.times[c] || (this.times[r] === this.times[c] && this.seqs[r] < this.seqs[c]))) c = r;
      const ct = this.times[c];
      if (time < ct || (time === ct && seq < this.seqs[c])) break;
      this.move(c, i);
      i = c;
    }
    this.times[i] = time;
    this.seqs[i] = seq;
    this.items[i] = item;
    return top;
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from];
    this.seqs[to] = this.seqs[from];
    this.items[to] = this.items[from];
  }
}
