export {
  PulseClient,
  OPEN_ACL_UNSAFE,
  WatchOverflowError,
  type ClientOptions,
  type ConnectionState,
  type CreateOptions,
  type Credentials,
  type Mode,
  type TxOp,
  type WatchEvent,
  type WatchKind,
  type WatchListener,
  type WatchStream,
} from './client.js';
export { parseConnectionString, type ConnectionString, type HostPort } from './hosts.js';
export * from './errors.js';
export type { ACL, Id, Stat, ClientInfo, MultiResult } from '../protocol/records.js';
