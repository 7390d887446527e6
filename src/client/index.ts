export { PulseClient, OPEN_ACL_UNSAFE, parseConnectionString, type ClientOptions, type ConnectionState, type CreateOptions, type Mode, type TxOp, type WatchEvent, type WatchListener } from './client.js';
export * from './errors.js';
export type { ACL, Id, Stat, ClientInfo, MultiResult } from '../protocol/records.js';
