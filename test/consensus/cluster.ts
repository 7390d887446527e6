/**
 * Unit-test support: RaftNodes on a synchronous, lossless in-memory network with instant
 * storage, where a test can cut links and drive every tick and message by hand.
 */
import { RaftNode } from '../../src/consensus/raft.js';
import type { Configuration, Entry, MemberId, Message, RaftConfig, ReadState, Restored } from '../../src/consensus/types.js';
import { Rng } from '../support/random.js';

export function raftConfig(id: MemberId, over: Partial<RaftConfig> = {}): RaftConfig {
  const rng = new Rng(id * 7919);
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxInflight: 4,
    maxMessageBytes: 1 << 20,
    keepBehindSnapshot: 0,
    random: () => rng.next(),
    ...over,
  };
}

export function bootstrap(voters: MemberId[], learners: MemberId[] = []): Configuration {
  const contexts: Record<MemberId, string> = {};
  for (const id of [...voters, ...learners]) contexts[id] = `127.0.0.1:${2880 + id}`;
  return { membership: { voters, learners }, contexts };
}

export function fresh(voters: MemberId[], learners: MemberId[] = []): Restored {
  return { hardState: { term: 0, vote: 0, commit: 0 }, entries: [], bootstrap: bootstrap(voters, learners), applied: 0 };
}

export const bytes = (s: string) => new TextEncoder().encode(s);
export const text = (e: Entry) => (e.data ? new TextDecoder().decode(e.data) : `<${e.kind}>`);

/** What one member's Readies produced, for assertions. */
export interface Output {
  messages: Message[];
  /** Of `messages`, those that were in messagesBeforePersist. */
  early: Message[];
  committed: Entry[];
  readStates: ReadState[];
  persisted: Entry[];
}

/** Runs ready/advance until the node is quiet, persisting and applying at once. */
export function drain(node: RaftNode): Output {
  const out: Output = { messages: [], early: [], committed: [], readStates: [], persisted: [] };
  while (node.hasReady()) {
    const rd = node.ready();
    out.early.push(...rd.messagesBeforePersist);
    out.messages.push(...rd.messagesBeforePersist, ...rd.messages);
    out.committed.push(...rd.committed);
    out.readStates.push(...rd.readStates);
    out.persisted.push(...rd.entries);
    node.advance(rd);
  }
  return out;
}

export class Cluster {
  readonly nodes = new Map<MemberId, RaftNode>();
  readonly applied = new Map<MemberId, Entry[]>();
  readonly readStates = new Map<MemberId, ReadState[]>();
  /** Directed links that drop everything: "from>to". */
  readonly cut = new Set<string>();
  /** Every message sent, in order, for tests that look at traffic. */
  readonly sent: Message[] = [];
  /** Messages taken off the wire by `hold` instead of delivered. */
  readonly held: Message[] = [];
  hold?: (m: Message) => boolean;

  constructor(voters: MemberId[], learners: MemberId[] = [], over: Partial<RaftConfig> = {}) {
    for (const id of [...voters, ...learners]) this.add(id, new RaftNode(raftConfig(id, over), fresh(voters, learners)));
  }

  add(id: MemberId, node: RaftNode): RaftNode {
    this.nodes.set(id, node);
    if (!this.applied.has(id)) this.applied.set(id, []);
    if (!this.readStates.has(id)) this.readStates.set(id, []);
    return node;
  }

  node(id: MemberId): RaftNode {
    return this.nodes.get(id)!;
  }

  isolate(id: MemberId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Delivers messages until nothing is left to do. */
  run(limit = 10_000): void {
    for (let round = 0; ; round++) {
      if (round > limit) throw new Error('cluster did not settle');
      const queue: Message[] = [];
      for (const [id, node] of this.nodes) {
        const out = drain(node);
        this.applied.get(id)!.push(...out.committed);
        this.readStates.get(id)!.push(...out.readStates);
        queue.push(...out.messages);
      }
      if (queue.length === 0) return;
      for (const m of queue) {
        this.sent.push(m);
        if (this.cut.has(`${m.from}>${m.to}`)) continue;
        if (this.hold?.(m)) {
          this.held.push(m);
          continue;
        }
        this.nodes.get(m.to)?.step(m);
      }
    }
  }

  /** Ticks every member (or those given) n times, running the network after each tick. */
  tick(n = 1, ids: MemberId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.nodes.get(id)!.tick();
      this.run();
    }
  }

  /** Ticks `id` alone until it campaigns, then lets the election run. */
  elect(id: MemberId): void {
    const node = this.node(id);
    for (let i = 0; i < 100 && node.role !== 'leader'; i++) {
      node.tick();
      this.run();
    }
    if (node.role !== 'leader') throw new Error(`member ${id} did not become leader`);
  }

  leader(): RaftNode | undefined {
    return [...this.nodes.values()].find((n) => n.role === 'leader');
  }

  texts(id: MemberId): string[] {
    return this.applied.get(id)!.filter((e) => e.kind === 'normal').map(text);
  }
}
