/**
 * Member names interned as small integers, so a node keeps its view of the
 * cluster in flat typed arrays indexed by member instead of an object per member.
 * Each name also has a default address (the first one seen); a node stores an
 * address of its own only when it differs.
 *
 * One table can be shared by many nodes in one process (the simulator runs
 * 10,000 of them): interning changes no protocol decision, only memory. A node
 * that owns its table releases the indexes of members it forgot, so names that
 * come and go do not grow it; a shared table keeps every name.
 */
export class MemberIds {
  private readonly byName = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly addresses: string[] = [];
  private readonly free: number[] = [];

  /** capacity bounds how many names are held at once; news of more members is ignored. */
  constructor(readonly capacity = 1 << 20) {}

  /** One past the highest index in use: the length a node's tables need. */
  get span(): number {
    return this.names.length;
  }

  find(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** The name's index, assigned now if new; undefined when the table is full. */
  intern(name: string, address: string): number | undefined {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    if (this.byName.size >= this.capacity) return undefined;
    const i = this.free.pop() ?? this.names.length;
    this.byName.set(name, i);
    this.names[i] = name;
    this.addresses[i] = address;
    return i;
  }

  name(i: number): string {
    return this.names[i];
  }

  defaultAddress(i: number): string {
    return this.addresses[i];
  }

  release(i: number): void {
    this.byName.delete(this.names[i]);
    this.names[i] = '';
    this.addresses[i] = '';
    this.free.push(i);
  }
}
