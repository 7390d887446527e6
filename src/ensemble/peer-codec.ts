/**
 * The wire format between ensemble members: length-framed records (the same 4-byte
 * framing as the client protocol), each starting with a kind byte. Consensus messages
 * carry the core's Message; the rest are what the shell adds around it: the hello that
 * names a connection's sender, session touches for the leader, snapshot bytes, and
 * membership changes asked of the leader by another member.
 */
import type { ConfigChange, Configuration, Entry, Message, SnapshotMeta } from '../consensus/types.js';
import { DecodeError, JuteReader, JuteWriter } from '../protocol/jute.js';

export const PEER_PROTOCOL_VERSION = 1;

export type PeerFrame =
  | { kind: 'hello'; version: number; from: number; to: number }
  | { kind: 'raft'; message: Message }
  /** Sessions a follower or observer heard from since its last report (ids as signed 64-bit). */
  | { kind: 'touches'; ids: bigint[] }
  /** The leader tells a member how long ago (in ticks) it last heard from it: the way back may be cut while this way works. */
  | { kind: 'heard'; ticksAgo: number }
  /** A snapshot transfer starts: its chunks follow, then the consensus 'snapshot' message. */
  | { kind: 'snapshot-begin'; meta: SnapshotMeta }
  /** Part of the snapshot the next 'snapshot' message refers to. */
  | { kind: 'snapshot-chunk'; index: number; term: number; offset: number; data: Buffer }
  /** A member asks the leader for a membership change (a client's reconfig arrived there). */
  | { kind: 'reconfig'; requestId: number; change: ConfigChange }
  | { kind: 'reconfig-result'; requestId: number; err: number; index: number };

const KIND = { hello: 1, raft: 2, touches: 3, 'snapshot-chunk': 4, reconfig: 5, 'reconfig-result': 6, 'snapshot-begin': 7, heard: 8 } as const;
const MSG = {
  append: 1, 'append-resp': 2, heartbeat: 3, 'heartbeat-resp': 4, 'pre-vote': 5, vote: 6, 'pre-vote-resp': 7,
  'vote-resp': 8, snapshot: 9, 'snapshot-status': 10, 'timeout-now': 11, propose: 12, 'read-index': 13, 'read-index-resp': 14,
} as const;
const MSG_NAME = Object.fromEntries(Object.entries(MSG).map(([k, v]) => [v, k])) as Record<number, Message['type']>;
const ENTRY_KIND = { normal: 0, config: 1, empty: 2 } as const;
const ENTRY_KIND_NAME: Entry['kind'][] = ['normal', 'config', 'empty'];
const CHANGE_OP = { 'add-voter': 0, 'add-learner': 1, remove: 2 } as const;
const CHANGE_OP_NAME: ConfigChange['op'][] = ['add-voter', 'add-learner', 'remove'];

function writeChange(w: JuteWriter, c: ConfigChange): void {
  w.int(CHANGE_OP[c.op]).int(c.id).ustring(c.context);
}

function readChange(r: JuteReader): ConfigChange {
  const op = CHANGE_OP_NAME[r.int()];
  if (!op) throw new DecodeError('unknown membership change');
  return { op, id: r.int(), context: r.string() };
}

function writeConfiguration(w: JuteWriter, c: Configuration): void {
  w.vector(c.membership.voters, (w, id) => w.int(id));
  w.vector(c.membership.learners, (w, id) => w.int(id));
  w.vector(Object.entries(c.contexts), (w, [id, text]) => w.int(Number(id)).ustring(text));
}

function readConfiguration(r: JuteReader): Configuration {
  const voters = r.vector((r) => r.int()) ?? [];
  const learners = r.vector((r) => r.int()) ?? [];
  const contexts: Record<number, string> = {};
  for (const [id, text] of r.vector((r) => [r.int(), r.string()] as const, 8) ?? []) contexts[id] = text;
  return { membership: { voters, learners }, contexts };
}

function writeEntry(w: JuteWriter, e: Entry): void {
  w.long(e.index).long(e.term).int(ENTRY_KIND[e.kind]);
  if (e.kind === 'normal') w.buffer(e.data ?? Buffer.alloc(0));
  else if (e.kind === 'config') {
    writeChange(w, e.change!);
    writeConfiguration(w, e.config!);
  }
}

function readEntry(r: JuteReader): Entry {
  const index = r.long();
  const term = r.long();
  const kind = ENTRY_KIND_NAME[r.int()];
  if (!kind) throw new DecodeError('unknown entry kind');
  // Entries outlive the frame they came in (the log keeps them): copy the data out of the socket buffer.
  if (kind === 'normal') return { index, term, kind, data: Buffer.from(r.buffer() ?? Buffer.alloc(0)) };
  if (kind === 'config') return { index, term, kind, change: readChange(r), config: readConfiguration(r) };
  return { index, term, kind };
}

function writeMeta(w: JuteWriter, s: SnapshotMeta): void {
  w.long(s.index).long(s.term);
  writeConfiguration(w, s);
}

function readMeta(r: JuteReader): SnapshotMeta {
  const index = r.long();
  const term = r.long();
  return { index, term, ...readConfiguration(r) };
}

function writeMessage(w: JuteWriter, m: Message): void {
  w.int(MSG[m.type]).int(m.from).int(m.to).long(m.term);
  switch (m.type) {
    case 'append':
      w.long(m.index).long(m.logTerm).long(m.commit).vector(m.entries, writeEntry);
      break;
    case 'append-resp':
      w.bool(m.reject).long(m.index).long(m.hintIndex).long(m.hintTerm);
      break;
    case 'heartbeat':
      w.long(m.commit).long(m.context);
      break;
    case 'heartbeat-resp':
      w.long(m.context);
      break;
    case 'pre-vote':
    case 'vote':
      w.long(m.index).long(m.logTerm).bool(m.transfer);
      break;
    case 'pre-vote-resp':
    case 'vote-resp':
    case 'snapshot-status':
      w.bool(m.reject);
      break;
    case 'snapshot':
      writeMeta(w, m.snapshot);
      break;
    case 'timeout-now':
      break;
    case 'propose':
      w.vector(m.entries, writeEntry);
      break;
    case 'read-index':
      w.long(m.context);
      break;
    case 'read-index-resp':
      w.long(m.index).long(m.context);
      break;
  }
}

function readMessage(r: JuteReader): Message {
  const type = MSG_NAME[r.int()];
  if (!type) throw new DecodeError('unknown consensus message type');
  const base = { from: r.int(), to: r.int(), term: r.long() };
  switch (type) {
    case 'append': {
      const index = r.long();
      const logTerm = r.long();
      const commit = r.long();
      return { ...base, type, index, logTerm, commit, entries: r.vector(readEntry, 20) ?? [] };
    }
    case 'append-resp':
      return { ...base, type, reject: r.bool(), index: r.long(), hintIndex: r.long(), hintTerm: r.long() };
    case 'heartbeat':
      return { ...base, type, commit: r.long(), context: r.long() };
    case 'heartbeat-resp':
      return { ...base, type, context: r.long() };
    case 'pre-vote':
    case 'vote':
      return { ...base, type, index: r.long(), logTerm: r.long(), transfer: r.bool() };
    case 'pre-vote-resp':
    case 'vote-resp':
    case 'snapshot-status':
      return { ...base, type, reject: r.bool() };
    case 'snapshot':
      return { ...base, type, snapshot: readMeta(r) };
    case 'timeout-now':
      return { ...base, type };
    case 'propose':
      return { ...base, type, entries: r.vector(readEntry, 20) ?? [] };
    case 'read-index':
      return { ...base, type, context: r.long() };
    case 'read-index-resp':
      return { ...base, type, index: r.long(), context: r.long() };
  }
}

/** Appends one frame (length prefix included) to `w`. */
export function writePeerFrame(w: JuteWriter, f: PeerFrame): void {
  const start = w.beginFrame();
  w.int(KIND[f.kind]);
  switch (f.kind) {
    case 'hello':
      w.int(f.version).int(f.from).int(f.to);
      break;
    case 'raft':
      writeMessage(w, f.message);
      break;
    case 'touches':
      w.vector(f.ids, (w, id) => w.longBig(id));
      break;
    case 'snapshot-begin':
      writeMeta(w, f.meta);
      break;
    case 'heard':
      w.int(f.ticksAgo);
      break;
    case 'snapshot-chunk':
      w.long(f.index).long(f.term).long(f.offset).buffer(f.data);
      break;
    case 'reconfig':
      w.int(f.requestId);
      writeChange(w, f.change);
      break;
    case 'reconfig-result':
      w.int(f.requestId).int(f.err).long(f.index);
      break;
  }
  w.endFrame(start);
}

export function encodePeerFrame(f: PeerFrame): Buffer {
  const w = new JuteWriter(f.kind === 'snapshot-chunk' ? f.data.length + 64 : 256);
  writePeerFrame(w, f);
  return w.take();
}

/** Decodes one frame body (without its length prefix). Throws DecodeError on anything malformed. */
export function decodePeerFrame(body: Buffer): PeerFrame {
  const r = new JuteReader(body);
  const kind = r.int();
  let f: PeerFrame;
  switch (kind) {
    case KIND.hello:
      f = { kind: 'hello', version: r.int(), from: r.int(), to: r.int() };
      break;
    case KIND.raft:
      f = { kind: 'raft', message: readMessage(r) };
      break;
    case KIND.touches:
      f = { kind: 'touches', ids: r.vector((r) => r.longBig(), 8) ?? [] };
      break;
    case KIND['snapshot-begin']:
      f = { kind: 'snapshot-begin', meta: readMeta(r) };
      break;
    case KIND.heard:
      f = { kind: 'heard', ticksAgo: r.int() };
      break;
    case KIND['snapshot-chunk']:
      f = { kind: 'snapshot-chunk', index: r.long(), term: r.long(), offset: r.long(), data: r.buffer() ?? Buffer.alloc(0) };
      break;
    case KIND.reconfig:
      f = { kind: 'reconfig', requestId: r.int(), change: readChange(r) };
      break;
    case KIND['reconfig-result']:
      f = { kind: 'reconfig-result', requestId: r.int(), err: r.int(), index: r.long() };
      break;
    default:
      throw new DecodeError(`unknown peer frame kind ${kind}`);
  }
  if (r.remaining !== 0) throw new DecodeError(`${r.remaining} trailing bytes after a ${f.kind} frame`);
  return f;
}
