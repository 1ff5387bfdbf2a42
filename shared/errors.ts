/**
 * Error codes with ZooKeeper's numeric values, and ZkError, the one error
 * class every failed operation rejects with. Codes are stable strings
 * (`err.code === 'NO_NODE'`); `errorNumber(code)` gives the wire value.
 * Imports nothing of ours but assert.
 */

export const ErrorCode = {
  OK: 'OK',
  SYSTEM_ERROR: 'SYSTEM_ERROR',
  RUNTIME_INCONSISTENCY: 'RUNTIME_INCONSISTENCY',
  DATA_INCONSISTENCY: 'DATA_INCONSISTENCY',
  CONNECTION_LOSS: 'CONNECTION_LOSS',
  MARSHALLING_ERROR: 'MARSHALLING_ERROR',
  UNIMPLEMENTED: 'UNIMPLEMENTED',
  OPERATION_TIMEOUT: 'OPERATION_TIMEOUT',
  BAD_ARGUMENTS: 'BAD_ARGUMENTS',
  UNKNOWN_SESSION: 'UNKNOWN_SESSION',
  NEW_CONFIG_NO_QUORUM: 'NEW_CONFIG_NO_QUORUM',
  RECONFIG_IN_PROGRESS: 'RECONFIG_IN_PROGRESS',
  API_ERROR: 'API_ERROR',
  NO_NODE: 'NO_NODE',
  NO_AUTH: 'NO_AUTH',
  BAD_VERSION: 'BAD_VERSION',
  NO_CHILDREN_FOR_EPHEMERALS: 'NO_CHILDREN_FOR_EPHEMERALS',
  NODE_EXISTS: 'NODE_EXISTS',
  NOT_EMPTY: 'NOT_EMPTY',
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  INVALID_CALLBACK: 'INVALID_CALLBACK',
  INVALID_ACL: 'INVALID_ACL',
  AUTH_FAILED: 'AUTH_FAILED',
  SESSION_MOVED: 'SESSION_MOVED',
  NOT_READ_ONLY: 'NOT_READ_ONLY',
  EPHEMERAL_ON_LOCAL_SESSION: 'EPHEMERAL_ON_LOCAL_SESSION',
  NO_WATCHER: 'NO_WATCHER',
  RECONFIG_DISABLED: 'RECONFIG_DISABLED',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  THROTTLED_OP: 'THROTTLED_OP',
  OUTCOME_UNKNOWN: 'OUTCOME_UNKNOWN',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** ZooKeeper's numeric values (KeeperException.Code). */
const NUMBERS: Record<ErrorCode, number> = {
  OK: 0,
  SYSTEM_ERROR: -1,
  RUNTIME_INCONSISTENCY: -2,
  DATA_INCONSISTENCY: -3,
  CONNECTION_LOSS: -4,
  MARSHALLING_ERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATION_TIMEOUT: -7,
  BAD_ARGUMENTS: -8,
  UNKNOWN_SESSION: -12,
  NEW_CONFIG_NO_QUORUM: -13,
  RECONFIG_IN_PROGRESS: -14,
  API_ERROR: -100,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_CALLBACK: -113,
  INVALID_ACL: -114,
  AUTH_FAILED: -115,
  SESSION_MOVED: -118,
  NOT_READ_ONLY: -119,
  EPHEMERAL_ON_LOCAL_SESSION: -120,
  NO_WATCHER: -121,
  RECONFIG_DISABLED: -123,
  QUOTA_EXCEEDED: -125,
  THROTTLED_OP: -127,
  // Conclave's own, outside ZooKeeper's range: only an exactly-once write is answered with it
  // (the ensemble no longer remembers whether that write was applied).
  OUTCOME_UNKNOWN: -200,
}

const BY_NUMBER = new Map<number, ErrorCode>(
  Object.entries(NUMBERS).map(([code, n]) => [n, code as ErrorCode]),
)

export function errorNumber(code: ErrorCode): number {
  return NUMBERS[code]
}

/** The code for a wire value; an unknown value maps to SYSTEM_ERROR. */
export function errorCodeOf(n: number): ErrorCode {
  return BY_NUMBER.get(n) ?? ErrorCode.SYSTEM_ERROR
}

export type MultiErrorResult = { op: 'error'; code: ErrorCode }

const BRAND = Symbol.for('conclave.ZkError')

export class ZkError extends Error {
  override name = 'ZkError'
  readonly code: ErrorCode
  readonly path: string | undefined
  /** For a failed multi: one entry per op. */
  readonly results: MultiErrorResult[] | undefined
  readonly [BRAND] = true

  constructor(code: ErrorCode, path?: string, message?: string, results?: MultiErrorResult[]) {
    super(message ?? (path === undefined ? code : `${code}: ${path}`))
    this.code = code
    this.path = path
    this.results = results
  }

  /** ZooKeeper's numeric value of this error's code. */
  get errno(): number {
    return NUMBERS[this.code]
  }

  static is(value: unknown, code?: ErrorCode): value is ZkError {
    if (typeof value !== 'object' || value === null || !(BRAND in value)) return false
    return code === undefined || (value as ZkError).code === code
  }
}
