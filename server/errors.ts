/**
 * Errors → HTTP, in one place.
 *
 * Body of every error response: `{ error: { code, message, details } }` where details are
 * `{ path, message, rule }` (path is the field path inside the part of the request named by the
 * message: body, query or path). A 4xx shows its message; a 5xx shows only "Internal error" and the
 * full error goes to the log.
 */
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ERROR_CODES, WeftError, type ErrorCode, type ErrorDetail } from '../graph/errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetail[]; retryable: boolean } & Record<string, unknown>;
}

/** zod issues → error details (one per issue; an unknown-keys issue gives one detail per key). */
export function zodIssuesToDetails(issues: readonly z.core.$ZodIssue[], prefix: (string | number)[] = []): ErrorDetail[] {
  return issues.flatMap((issue): ErrorDetail[] => {
    const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field "${k}"`, rule: 'unrecognized_keys' }));
    }
    return [{ path, message: issue.message, rule: issue.code }];
  });
}

/** Dotted form of a detail path for messages: `resources.num_cpus`, `stats[0].average`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(root)' : out;
}

/** A VALIDATION_FAILED error from zod issues found in one part of the request. */
export function validationError(where: 'body' | 'query' | 'path' | 'header', issues: readonly z.core.$ZodIssue[]): WeftError {
  const details = zodIssuesToDetails(issues);
  const what = where === 'query' ? 'query parameter' : where === 'path' ? 'path parameter' : where === 'header' ? 'header' : 'body field';
  const parts = details.slice(0, 5).map((d) => `${what} ${formatPath(d.path)}: ${d.message}`);
  if (details.length > 5) parts.push(`and ${details.length - 5} more`);
  return new WeftError('VALIDATION_FAILED', `Invalid request: ${parts.join('; ')}`, { details, extra: { in: where } });
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

/** Map anything thrown to a WeftError; unknown errors become INTERNAL. */
export function toWeftError(err: unknown): WeftError {
  if (err instanceof WeftError) return err;
  if (err instanceof z.ZodError) return validationError('body', err.issues);
  const e = (err ?? {}) as HttpishError;
  const status = e.status ?? e.statusCode;
  // Errors from the body parser (co-body / raw-body) carry a status and a type.
  if (e.type === 'entity.too.large' || status === 413) {
    return new WeftError('PAYLOAD_TOO_LARGE', `The request body is larger than the limit${e.message ? ` (${e.message})` : ''}`, { cause: err });
  }
  if (e.type === 'entity.parse.failed' || (status === 400 && /JSON|Unexpected|token|parse/i.test(e.message ?? ''))) {
    return new WeftError('MALFORMED_BODY', `The request body is not valid JSON: ${e.message ?? 'parse error'}`, {
      details: [{ path: [], message: 'invalid JSON', rule: 'json' }],
      cause: err,
    });
  }
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported' || status === 415) {
    return new WeftError('UNSUPPORTED_MEDIA_TYPE', e.message ?? 'Unsupported content encoding', { cause: err });
  }
  if (e.type === 'request.aborted' || e.type === 'request.size.invalid') {
    return new WeftError('MALFORMED_BODY', e.message ?? 'The request body was incomplete', { cause: err });
  }
  return new WeftError('INTERNAL', undefined, { cause: err });
}

/** An error raised while reading or parsing a request body, as the client's fault. */
export function bodyError(err: unknown): WeftError {
  const mapped = toWeftError(err);
  if (mapped.code !== 'INTERNAL') return mapped;
  const message = (err as { message?: unknown })?.message;
  return new WeftError('MALFORMED_BODY', `The request body could not be read: ${typeof message === 'string' ? message : 'unreadable'}`, {
    details: [{ path: [], message: 'unreadable body', rule: 'body' }],
    cause: err,
  });
}

/** The JSON body for an error. 5xx bodies never carry the original message. */
export function errorBody(err: WeftError): ErrorBody {
  const status = err.httpStatus;
  const internal = status >= 500 && err.code === 'INTERNAL';
  return {
    error: {
      code: err.code,
      message: internal ? ERROR_CODES.INTERNAL.message : err.message,
      details: internal ? [] : (err.details ?? []),
      retryable: err.retryable,
      ...(internal ? {} : (err.extra ?? {})),
    },
  };
}

/** What an error answer consists of: status, JSON body and (for a stale revision) an ETag. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  /** The ETag header value (quoted), on REVISION_CONFLICT only. */
  etag?: string;
}

/**
 * Map anything thrown while serving a request to its answer, logging it as every path does:
 * a 5xx at error level with the original error, a 4xx at debug level. Both the Koa error
 * middleware and the fast dispatcher (server/fast-path.ts) answer errors through this.
 */
export function errorAnswer(raw: unknown, logger: Logger, method: string, url: string): ErrorAnswer {
  const err = toWeftError(raw);
  const status = err.httpStatus;
  if (status >= 500) {
    logger.error({ err: raw, method, url, code: err.code }, 'request failed');
  } else if (logger.isLevelEnabled('debug')) {
    logger.debug({ method, url, code: err.code, msg: err.message }, 'request rejected');
  }
  const etag = err.code === 'REVISION_CONFLICT' && typeof err.extra?._rev === 'string' ? `"${err.extra._rev}"` : undefined;
  return { status, body: errorBody(err), ...(etag === undefined ? {} : { etag }) };
}

/** Koa middleware: every error becomes a JSON error body with the status from the catalogue. */
export function errorMiddleware(logger: Logger): Middleware {
  return async (ctx: Context, next) => {
    try {
      await next();
    } catch (raw) {
      const answer = errorAnswer(raw, logger, ctx.method, ctx.url);
      ctx.status = answer.status;
      ctx.body = answer.body;
      if (answer.etag !== undefined) ctx.set('ETag', answer.etag);
    }
  };
}

/** 404 ROUTE_NOT_FOUND for a request no route answered. */
export function routeNotFound(method: string, path: string): WeftError {
  return new WeftError('ROUTE_NOT_FOUND', `No route for ${method} ${path}`, { extra: { method, path } });
}

/** Fallback for paths no router answered. */
export function notFoundMiddleware(): Middleware {
  return async (ctx: Context, next) => {
    await next();
    if ((ctx.body === undefined || ctx.body === null) && ctx.status === 405) {
      const allow = ctx.response.get('Allow');
      throw new WeftError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path} (allowed: ${allow || 'none'})`, {
        extra: { method: ctx.method, path: ctx.path, allow },
      });
    }
    if (ctx.body === undefined && ctx.status === 404) throw routeNotFound(ctx.method, ctx.path);
  };
}
