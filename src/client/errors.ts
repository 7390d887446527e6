/** Typed errors, one class per ZooKeeper error code, all ZooKeeperError with .code and .path. */
import { ErrorCode, errorName } from '../protocol/errors.js';
import type { MultiResult } from '../protocol/records.js';

export class ZooKeeperError extends Error {
  override name = 'ZooKeeperError';
  /** For a failed multi: every operation's result, and the index of the one that failed. */
  results?: MultiResult[];
  failedOp?: number;
  constructor(
    readonly code: number,
    readonly path?: string,
    message?: string,
  ) {
    super(message ?? `${errorName(code)}${path ? ` for ${path}` : ''}`);
  }
}

function errorClass(name: string, code: number) {
  const C = class extends ZooKeeperError {
    constructor(path?: string, message?: string) {
      super(code, path, message);
      this.name = name;
    }
  };
  Object.defineProperty(C, 'name', { value: name });
  return C;
}

export const SystemError = errorClass('SystemError', ErrorCode.SYSTEMERROR);
export const RuntimeInconsistencyError = errorClass('RuntimeInconsistencyError', ErrorCode.RUNTIMEINCONSISTENCY);
export const DataInconsistencyError = errorClass('DataInconsistencyError', ErrorCode.DATAINCONSISTENCY);
export const ConnectionLossError = errorClass('ConnectionLossError', ErrorCode.CONNECTIONLOSS);
export const MarshallingError = errorClass('MarshallingError', ErrorCode.MARSHALLINGERROR);
export const UnimplementedError = errorClass('UnimplementedError', ErrorCode.UNIMPLEMENTED);
export const OperationTimeoutError = errorClass('OperationTimeoutError', ErrorCode.OPERATIONTIMEOUT);
export const BadArgumentsError = errorClass('BadArgumentsError', ErrorCode.BADARGUMENTS);
export const UnknownSessionError = errorClass('UnknownSessionError', ErrorCode.UNKNOWNSESSION);
export const NewConfigNoQuorumError = errorClass('NewConfigNoQuorumError', ErrorCode.NEWCONFIGNOQUORUM);
export const ReconfigInProgressError = errorClass('ReconfigInProgressError', ErrorCode.RECONFIGINPROGRESS);
export const APIError = errorClass('APIError', ErrorCode.APIERROR);
export const NoNodeError = errorClass('NoNodeError', ErrorCode.NONODE);
export const NoAuthError = errorClass('NoAuthError', ErrorCode.NOAUTH);
export const BadVersionError = errorClass('BadVersionError', ErrorCode.BADVERSION);
export const NoChildrenForEphemeralsError = errorClass('NoChildrenForEphemeralsError', ErrorCode.NOCHILDRENFOREPHEMERALS);
export const NodeExistsError = errorClass('NodeExistsError', ErrorCode.NODEEXISTS);
export const NotEmptyError = errorClass('NotEmptyError', ErrorCode.NOTEMPTY);
export const SessionExpiredError = errorClass('SessionExpiredError', ErrorCode.SESSIONEXPIRED);
export const InvalidCallbackError = errorClass('InvalidCallbackError', ErrorCode.INVALIDCALLBACK);
export const InvalidACLError = errorClass('InvalidACLError', ErrorCode.INVALIDACL);
export const AuthFailedError = errorClass('AuthFailedError', ErrorCode.AUTHFAILED);
export const SessionMovedError = errorClass('SessionMovedError', ErrorCode.SESSIONMOVED);
export const NotReadOnlyError = errorClass('NotReadOnlyError', ErrorCode.NOTREADONLY);
export const EphemeralOnLocalSessionError = errorClass('EphemeralOnLocalSessionError', ErrorCode.EPHEMERALONLOCALSESSION);
export const NoWatcherError = errorClass('NoWatcherError', ErrorCode.NOWATCHER);
export const RequestTimeoutError = errorClass('RequestTimeoutError', ErrorCode.REQUESTTIMEOUT);
export const ReconfigDisabledError = errorClass('ReconfigDisabledError', ErrorCode.RECONFIGDISABLED);
export const SessionClosedRequireSaslAuthError = errorClass('SessionClosedRequireSaslAuthError', ErrorCode.SESSIONCLOSEDREQUIRESASLAUTH);
export const QuotaExceededError = errorClass('QuotaExceededError', ErrorCode.QUOTAEXCEEDED);
export const ThrottledOpError = errorClass('ThrottledOpError', ErrorCode.THROTTLEDOP);

const byCode = new Map<number, new (path?: string, message?: string) => ZooKeeperError>(
  [
    SystemError, RuntimeInconsistencyError, DataInconsistencyError, ConnectionLossError, MarshallingError, UnimplementedError,
    OperationTimeoutError, BadArgumentsError, UnknownSessionError, NewConfigNoQuorumError, ReconfigInProgressError, APIError,
    NoNodeError, NoAuthError, BadVersionError, NoChildrenForEphemeralsError, NodeExistsError, NotEmptyError, SessionExpiredError,
    InvalidCallbackError, InvalidACLError, AuthFailedError, SessionMovedError, NotReadOnlyError, EphemeralOnLocalSessionError,
    NoWatcherError, RequestTimeoutError, ReconfigDisabledError, SessionClosedRequireSaslAuthError, QuotaExceededError, ThrottledOpError,
  ].map((C) => [new C().code, C]),
);

/** The typed error for a code (a plain ZooKeeperError for codes this version does not know). */
export function errorFor(code: number, path?: string): ZooKeeperError {
  const C = byCode.get(code);
  return C ? new C(path) : new ZooKeeperError(code, path);
}
