/**
 * Leader election: each candidate creates an ephemeral sequential znode; the
 * lowest is the leader; every other candidate watches only its predecessor, so a
 * leader's death wakes exactly one candidate (no herd). Leadership is given up at
 * once when the connection is suspended or the session expires, so two leaders
 * never act at the same time: the old leader stops after two thirds of the
 * session timeout without the server, the next one starts only after the server
 * expired the session. After a reconnect the candidate leads again if its node is
 * still first; after expiry it stands again with a new node. The czxid of the
 * leader's node is a fencing token that only grows.
 */
import { EventEmitter } from 'node:events';
import { NoNodeError, ZooKeeperError, type ConnectionState, type PulseClient } from '../client/index.js';
import { bySequence, createProtected, deleteIfExists, ensurePath, retryOnLoss, singleFlight } from './util.js';

export class LeaderElection extends EventEmitter {
  private node: string | undefined;
  private leader = false;
  private token = 0;
  private running = false;
  private readonly check = singleFlight(() => this.checkOnce());

  constructor(
    private readonly client: PulseClient,
    private readonly path: string,
    readonly id: string,
  ) {
    super();
    client.on('state', this.onState);
  }

  private readonly onState = (s: ConnectionState) => {
    if (s === 'suspended' || s === 'expired' || s === 'closed') this.lose();
    if (s === 'expired') this.node = undefined;
    if (s === 'reconnected') void this.check();
    if (s === 'connected' && this.running && !this.node) void this.stand().catch(() => {});
  };

  private readonly onPredecessor = () => void this.check();

  get isLeader(): boolean {
    return this.leader;
  }

  /** The fencing token of the current leadership (the czxid of the leader's znode), 0 when not leader. */
  get fencingToken(): number {
    return this.leader ? this.token : 0;
  }

  /** Enters the election; `elected` (with the fencing token) is emitted when this candidate leads, `notLeader` when it stops. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.stand();
  }

  private async stand(): Promise<void> {
    await ensurePath(this.client, this.path);
    const { path, stat } = await createProtected(this.client, this.path, 'n_', Buffer.from(this.id));
    this.node = path;
    this.token = stat.czxid;
    await this.check();
  }

  private lose(): void {
    if (!this.leader) return;
    this.leader = false;
    this.emit('notLeader');
  }

  private async checkOnce(): Promise<void> {
    const node = this.node;
    if (!this.running || !node) return;
    let children: string[];
    try {
      children = (await this.client.getChildren(this.path)).sort(bySequence);
    } catch (e) {
      if (e instanceof ZooKeeperError) return; // disconnected: checked again on reconnect
      throw e;
    }
    const mine = node.slice(this.path.length + 1);
    const i = children.indexOf(mine);
    if (i < 0) {
      // Our node is gone with our session still here (deleted by hand): stand again.
      this.lose();
      if (this.node === node && this.client.sessionId !== 0n) {
        this.node = undefined;
        void this.stand().catch(() => {});
      }
      return;
    }
    if (i === 0) {
      // Only while connected: a reply from before a suspension must not make a leader.
      if (!this.leader && (this.client.state === 'connected' || this.client.state === 'reconnected')) {
        this.leader = true;
        this.emit('elected', this.token);
      }
      return;
    }
    try {
      if (!(await this.client.exists(`${this.path}/${children[i - 1]}`, this.onPredecessor))) await this.checkOnce();
    } catch (e) {
      if (!(e instanceof ZooKeeperError)) throw e;
    }
  }

  /** The current leader's id, as everyone can read it (undefined when there is no candidate). */
  async getLeader(): Promise<string | undefined> {
    const children = (await retryOnLoss(this.client, () => this.client.getChildren(this.path))).sort(bySequence);
    for (const c of children) {
      try {
        return (await retryOnLoss(this.client, () => this.client.getData(`${this.path}/${c}`))).data.toString();
      } catch (e) {
        if (!(e instanceof NoNodeError)) throw e;
      }
    }
    return undefined;
  }

  /** Gives up leadership (or candidacy) voluntarily; start() stands again. */
  async resign(): Promise<void> {
    this.running = false;
    this.lose();
    const node = this.node;
    this.node = undefined;
    if (node) await deleteIfExists(this.client, node);
  }

  /** Resigns and stops following the client. */
  async close(): Promise<void> {
    await this.resign();
    this.client.off('state', this.onState);
  }
}
