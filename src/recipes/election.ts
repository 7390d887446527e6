/**
 * Leader election: each candidate creates an ephemeral sequential znode; the
 * lowest is the leader; every other candidate watches only its predecessor, so a
 * leader's death wakes exactly one candidate (no herd). Leadership is given up at
 * once when the connection is suspended, so two leaders never act at the same
 * time; the czxid of the leader's znode is a fencing token that only grows.
 */
import { EventEmitter } from 'node:events';
import { NoNodeError, type PulseClient } from '../client/index.js';
import { deleteIfExists, ensurePath, sequenceOf } from './util.js';

export class LeaderElection extends EventEmitter {
  private node: string | undefined;
  private leader = false;
  private token = 0;
  private stopped = false;

  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
    private readonly id: string,
  ) {
    super();
    client.on('suspended', () => this.lose());
    client.on('expired', () => this.lose());
    client.on('reconnected', () => void this.check());
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** The fencing token of the current leadership (the czxid of the leader's znode), 0 when not leader. */
  get fencingToken(): number {
    return this.leader ? this.token : 0;
  }

  /** Enters the election; `elected` is emitted when this candidate leads. */
  async start(): Promise<void> {
    this.stopped = false;
    await ensurePath(this.client, this.path);
    const { path, stat } = await this.client.create2(`${this.path}/n_`, Buffer.from(this.id), { mode: 'ephemeral-sequential' });
    this.node = path;
    this.token = stat.czxid;
    await this.check();
  }

  private lose(): void {
    if (!this.leader) return;
    this.leader = false;
    this.emit('notLeader');
  }

  private async check(): Promise<void> {
    if (this.stopped || !this.node) return;
    let children: string[];
    try {
      children = (await this.client.getChildren(this.path)).sort((a, b) => sequenceOf(a) - sequenceOf(b));
    } catch {
      return;
    }
    const mine = this.node.slice(this.path.length + 1);
    const i = children.indexOf(mine);
    if (i < 0) {
      // Our node is gone (the session expired): this candidacy is over.
      this.lose();
      return;
    }
    if (i === 0) {
      if (!this.leader) {
        this.leader = true;
        this.emit('elected', this.token);
      }
      return;
    }
    const predecessor = `${this.path}/${children[i - 1]}`;
    let stat;
    try {
      stat = await this.client.exists(predecessor, (e) => {
        if (e.type === 'deleted') void this.check();
      });
    } catch {
      return; // disconnected: checked again on reconnect
    }
    if (!stat) await this.check();
  }

  /** The current leader's id, as everyone can read it. */
  async getLeader(): Promise<string | undefined> {
    const children = (await this.client.getChildren(this.path)).sort((a, b) => sequenceOf(a) - sequenceOf(b));
    for (const c of children) {
      try {
        return (await this.client.getData(`${this.path}/${c}`)).data.toString();
      } catch (e) {
        if (!(e instanceof NoNodeError)) throw e;
      }
    }
    return undefined;
  }

  /** Gives up leadership (or candidacy) voluntarily. */
  async resign(): Promise<void> {
    this.stopped = true;
    this.lose();
    if (this.node) await deleteIfExists(this.client, this.node);
    this.node = undefined;
  }
}
