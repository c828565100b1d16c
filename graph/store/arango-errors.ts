/**
 * How the ArangoDB adapter reads arangojs failures: which ones are transient (retried with
 * exponential backoff and full jitter), and which WeftError each one becomes.
 *
 * Transient means the server told us it did not do the work (503, a cluster leadership change, a
 * lock timeout, a write-write conflict) or the request never reached it (connection refused).
 * A connection that broke mid-request is transient only for reads: a write may have landed.
 */
import { isArangoError, isNetworkError } from 'arangojs/errors';
import { WeftError } from '../errors.js';

/** ArangoDB error numbers the adapter acts on (arangod's errors.dat). */
export const ARANGO_ERRORS = {
  FORBIDDEN: 11,
  LOCK_TIMEOUT: 18,
  SHUTTING_DOWN: 30,
  HTTP_UNAUTHORIZED: 401,
  HTTP_SERVICE_UNAVAILABLE: 503,
  CONFLICT: 1200,
  DOCUMENT_NOT_FOUND: 1202,
  DATA_SOURCE_NOT_FOUND: 1203,
  DUPLICATE_NAME: 1207,
  UNIQUE_CONSTRAINT_VIOLATED: 1210,
  DOCUMENT_KEY_BAD: 1221,
  DATABASE_NOT_FOUND: 1228,
  DOCUMENT_HANDLE_BAD: 1205,
  EDGE_ATTRIBUTE_MISSING: 1233,
  CLUSTER_TIMEOUT: 1457,
  CLUSTER_MUST_NOT_SPECIFY_KEY: 1466,
  CLUSTER_BACKEND_UNAVAILABLE: 1478,
  CLUSTER_LEADERSHIP_CHALLENGE_ONGOING: 1495,
  CLUSTER_NOT_LEADER: 1496,
  TRANSACTION_NOT_FOUND: 1655,
  GRAPH_DUPLICATE: 1925,
} as const;

const TRANSIENT_ERROR_NUMS: ReadonlySet<number> = new Set([
  ARANGO_ERRORS.LOCK_TIMEOUT,
  ARANGO_ERRORS.SHUTTING_DOWN,
  ARANGO_ERRORS.HTTP_SERVICE_UNAVAILABLE,
  ARANGO_ERRORS.CONFLICT,
  ARANGO_ERRORS.CLUSTER_TIMEOUT,
  ARANGO_ERRORS.CLUSTER_BACKEND_UNAVAILABLE,
  ARANGO_ERRORS.CLUSTER_LEADERSHIP_CHALLENGE_ONGOING,
  ARANGO_ERRORS.CLUSTER_NOT_LEADER,
]);

const RETRYABLE_SYSTEM_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);
/** Failures where the request surely never reached the server. */
const NOT_SENT_SYSTEM_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

/** The first `code` string found along an error's cause chain (ECONNREFUSED, UND_ERR_SOCKET, ...). */
export function systemCodeOf(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 16 && cur !== null && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const nested = (cur as { errors?: unknown }).errors;
    if (Array.isArray(nested) && nested.length > 0) {
      const inner = systemCodeOf(nested[0]);
      if (inner) return inner;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The HTTP status of a failed request, when the server answered. */
export function httpStatusOf(err: unknown): number | undefined {
  if (isArangoError(err)) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  if (isNetworkError(err) && typeof code === 'number') return code;
  return undefined;
}

/**
 * True when repeating the failed request is safe and may succeed.
 * `idempotent` requests (reads) are also retried after a connection broke mid-request.
 */
export function isTransient(err: unknown, idempotent: boolean): boolean {
  if (err instanceof WeftError) return false;
  if (isArangoError(err)) return TRANSIENT_ERROR_NUMS.has(err.errorNum) || err.code === 503;
  if (isNetworkError(err)) {
    if (httpStatusOf(err) === 503) return true;
    if (err.isSafeToRetry === true) return true;
    const sys = systemCodeOf(err);
    if (sys !== undefined && NOT_SENT_SYSTEM_CODES.has(sys)) return true;
    return idempotent && sys !== undefined && RETRYABLE_SYSTEM_CODES.has(sys);
  }
  return false;
}

/** Backoff policy for transient failures. */
export interface RetryPolicy {
  /** Attempts after the first one. Default 5. */
  retries: number;
  /** Delay cap of the first retry, in milliseconds; doubles each retry. Default 50. */
  baseDelayMs: number;
  /** Upper bound of any one delay, in milliseconds. Default 2000. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 5, baseDelayMs: 50, maxDelayMs: 2000 };

/** Full-jitter exponential backoff: a uniform delay in [0, min(max, base·2^attempt)). */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * cap);
}

/** Run `fn`, retrying transient failures with backoff. The last failure is rethrown as it came. */
export async function withRetry<T>(fn: () => Promise<T>, opts: { idempotent: boolean; policy: RetryPolicy }): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= opts.policy.retries || !isTransient(err, opts.idempotent)) throw err;
      await new Promise((r) => setTimeout(r, backoffDelayMs(opts.policy, attempt)));
    }
  }
}

/** Strip user:password from a URL so it can be shown in messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** A short, human cause for a failed request: "ECONNREFUSED", "HTTP 401 not authorized", ... */
export function describeCause(err: unknown): string {
  if (isArangoError(err)) return `HTTP ${err.code ?? '?'} error ${err.errorNum}: ${err.message}`;
  const status = httpStatusOf(err);
  if (status !== undefined) return `HTTP ${status}`;
  const sys = systemCodeOf(err);
  const msg = err instanceof Error ? err.message : String(err);
  return sys ? `${sys} (${msg})` : msg;
}

/**
 * Turn an arangojs failure of a document operation into a WeftError. WeftErrors pass through.
 * `url` names the server in messages about reaching it.
 */
export function toWeftError(err: unknown, url: string, what: string): WeftError {
  if (err instanceof WeftError) return err;
  if (isArangoError(err)) {
    switch (err.errorNum) {
      case ARANGO_ERRORS.DOCUMENT_NOT_FOUND:
        return new WeftError('DOCUMENT_NOT_FOUND', `${what}: document not found`, { cause: err });
      case ARANGO_ERRORS.UNIQUE_CONSTRAINT_VIOLATED:
        return new WeftError('DUPLICATE_KEY', `${what}: a document with this _key already exists`, { cause: err });
      case ARANGO_ERRORS.DOCUMENT_KEY_BAD:
        return new WeftError('VALIDATION_FAILED', `${what}: invalid _key`, { cause: err, details: [{ path: ['_key'], message: 'invalid key', rule: 'key' }] });
      case ARANGO_ERRORS.DOCUMENT_HANDLE_BAD:
      case ARANGO_ERRORS.EDGE_ATTRIBUTE_MISSING:
        return new WeftError('VALIDATION_FAILED', `${what}: _from and _to must be document ids (collection/key)`, {
          cause: err,
          details: [{ path: ['_from'], message: 'invalid document id', rule: 'document_id' }],
        });
      case ARANGO_ERRORS.CLUSTER_MUST_NOT_SPECIFY_KEY:
        return new WeftError('VALIDATION_FAILED', `${what}: this ArangoDB cluster shards the collection by workflow, so _key cannot be chosen by the client`, {
          cause: err,
          details: [{ path: ['_key'], message: 'keys are generated in a sharded collection', rule: 'generated_key' }],
        });
      case ARANGO_ERRORS.DATA_SOURCE_NOT_FOUND:
        return new WeftError('STORE_UNAVAILABLE', `${what}: a collection is missing in ArangoDB at ${redactUrl(url)} (was it dropped while Weft ran?)`, { cause: err });
      default:
        break;
    }
  }
  if (isTransient(err, true) || isNetworkError(err)) {
    return new WeftError('STORE_UNAVAILABLE', `${what}: ArangoDB at ${redactUrl(url)} is unavailable: ${describeCause(err)}`, { cause: err });
  }
  return new WeftError('INTERNAL', `${what}: ArangoDB request failed: ${describeCause(err)}`, { cause: err });
}
