/**
 * A transaction: what the commit step orders and every replica applies. It holds
 * the request as the client sent it plus what applying it needs to come out the
 * same everywhere (time, session, the connection's identities); the outcome
 * (NONODE, BADVERSION, NOAUTH, ...) is decided by the apply step.
 */
import type { AuthId } from '../acl/acl.js';
import type { OpCode } from '../protocol/opcodes.js';
import type {
  CheckVersionRequest,
  CreateRequest,
  CreateTTLRequest,
  DeleteRequest,
  MultiOp,
  SetACLRequest,
  SetDataRequest,
} from '../protocol/records.js';

export interface CreateSessionBody {
  type: typeof OpCode.createSession;
  timeoutMs: number;
  /** Chosen by the member that created the session; every member checks reattaches against it. */
  password: Buffer;
}
export interface CloseSessionBody {
  type: typeof OpCode.closeSession;
}
/** The ensemble's membership as /zookeeper/config shows it (ZooKeeper's reconfig txn). */
export interface ConfigBody {
  type: typeof OpCode.reconfig;
  data: Buffer;
}
/**
 * A write the server could not turn into a transaction (an undecodable body, a read op
 * inside multi, reconfig while it is disabled): it still takes a zxid and answers `err`,
 * as ZooKeeper's error transaction does.
 */
export interface ErrorBody {
  type: typeof OpCode.error;
  err: number;
}
export interface MultiWriteBody {
  type: typeof OpCode.multi;
  ops: MultiOp[];
}

export type WriteBody =
  | CreateRequest
  | CreateTTLRequest
  | DeleteRequest
  | SetDataRequest
  | SetACLRequest
  | CheckVersionRequest
  | MultiWriteBody
  | CreateSessionBody
  | CloseSessionBody
  | ConfigBody
  | ErrorBody;

export interface Txn {
  zxid: number;
  /** Wall-clock ms for ctime/mtime, chosen once when the txn is prepared. */
  time: number;
  sessionId: bigint;
  auth: AuthId[];
  body: WriteBody;
}
