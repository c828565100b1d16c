/**
 * The one catalogue of Weft error codes. A code is never reused for a different meaning.
 * HTTP statuses are decided in `server/` from `httpStatus` here; nothing else maps errors.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { httpStatus: 400, retryable: false, message: 'The request is not valid' },
  MALFORMED_BODY: { httpStatus: 400, retryable: false, message: 'The request body could not be parsed' },
  UNKNOWN_COLLECTION: { httpStatus: 404, retryable: false, message: 'No such collection' },
  WORKFLOW_NOT_FOUND: { httpStatus: 404, retryable: false, message: 'No such workflow' },
  DOCUMENT_NOT_FOUND: { httpStatus: 404, retryable: false, message: 'No such document' },
  ROUTE_NOT_FOUND: { httpStatus: 404, retryable: false, message: 'Route not found' },
  METHOD_NOT_ALLOWED: { httpStatus: 405, retryable: false, message: 'Method not allowed' },
  REVISION_CONFLICT: { httpStatus: 409, retryable: true, message: 'Conflicting revision' },
  /** manage_status_change answers a stale `_rev` with 400, as Torc does (clients rely on it). */
  STALE_REVISION: { httpStatus: 400, retryable: false, message: 'The revision in the request is stale' },
  DUPLICATE_KEY: { httpStatus: 409, retryable: false, message: 'A document with this key exists' },
  STATE_CONFLICT: { httpStatus: 409, retryable: false, message: 'The state does not allow this change' },
  INVALID_TRANSITION: { httpStatus: 400, retryable: false, message: 'The job status change is not allowed' },
  RUN_ID_MISMATCH: { httpStatus: 400, retryable: false, message: 'run_id does not match the workflow run' },
  SPEC_INVALID: { httpStatus: 400, retryable: false, message: 'The workflow specification is not valid' },
  DEPENDENCY_CYCLE: { httpStatus: 400, retryable: false, message: 'The jobs depend on each other in a cycle' },
  WORKFLOW_ARCHIVED: { httpStatus: 400, retryable: false, message: 'The workflow is archived' },
  PAYLOAD_TOO_LARGE: { httpStatus: 413, retryable: false, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415, retryable: false, message: 'Unsupported content type' },
  STORE_UNAVAILABLE: { httpStatus: 503, retryable: true, message: 'The store is unavailable' },
  SCHEDULER_FAILED: { httpStatus: 502, retryable: true, message: 'The scheduler command failed' },
  SSH_CONNECTION_FAILED: { httpStatus: 502, retryable: true, message: 'The SSH connection could not be made' },
  SSH_HOST_KEY_REJECTED: { httpStatus: 502, retryable: false, message: 'The SSH host key is unknown or has changed' },
  SSH_AUTH_FAILED: { httpStatus: 502, retryable: false, message: 'SSH authentication failed' },
  INTERNAL: { httpStatus: 500, retryable: false, message: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem in a request: where (a field path) and which rule it broke. */
export interface ErrorDetail {
  path: (string | number)[];
  message: string;
  rule?: string;
}

/** Every error Weft raises on purpose. Carries a catalogue code and optional details. */
export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, opts: { details?: ErrorDetail[]; extra?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message ?? ERROR_CODES[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'WeftError';
    this.code = code;
    this.details = opts.details;
    this.extra = opts.extra;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].httpStatus;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }
}

export function notFound(collection: string, key: string): WeftError {
  return new WeftError('DOCUMENT_NOT_FOUND', `${collection} document ${key} not found`, { extra: { collection, key } });
}

export function revisionConflict(id: string, currentRev: string): WeftError {
  return new WeftError('REVISION_CONFLICT', `Revision conflict for ${id}: _rev=${currentRev}`, { extra: { id, _rev: currentRev } });
}
