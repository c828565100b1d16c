/**
 * The fast dispatcher: the node:http request handler in front of the Koa app.
 *
 * Koa costs a small request more than its handler does: a context of three objects with
 * accessors, the middleware chain (request id, errors, not-found, koa-body through
 * co-body/raw-body/inflation/type-is, the router, allowed methods) and its promises. Here a
 * request that is plain enough is served without any of it, by the same parts:
 * the route's own validation and handler ({@link CompiledRoute.run}), the request id rule and
 * request logger (server/request-context.ts), and the error answers and their logging
 * (errorAnswer, bodyError in server/errors.ts).
 *
 * Served here: GET, POST, PUT and DELETE on a declared route (ApiRouter.matchFast: the route the
 * router would run, matched with the same letter case, not marked `koa: true`), with no
 * Content-Encoding header, no trailing slash, a plain ASCII URL, and either no body or a JSON one
 * (Content-Type application/json, optionally `; charset=utf-8`) on POST/PUT. Everything else goes
 * to Koa unchanged, which answers it exactly as before: HEAD, OPTIONS, 404, 405, other media
 * types (415), compressed bodies, the specification upload, a case-insensitive match.
 *
 * What the client sees is what Koa answers for the same request: the body is read as koa-body
 * reads it (co-body's strict JSON, raw-body's size limit and errors as server/body.ts keeps them,
 * a leading BOM dropped), the query is parsed by Koa's own parser, path parameters are decoded as
 * @koa/router decodes them, and the answer has the same status, headers (X-Request-Id,
 * Content-Type, ETag, Content-Length) and body. tests/server/fast-path.test.ts sends the same
 * requests both ways and compares.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { ApiRouter, FastMatch } from './api-router.js';
import { readBody } from './body.js';
import { bodyError, errorAnswer, routeNotFound } from './errors.js';
import { RequestState, lazyRequestLogger, logRequestEnd, requestIdFor } from './request-context.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Koa's query parser (koa/lib/search-params.js): ctx.query is exactly this of the query string. */
const koaSearchParams = createRequire(import.meta.url)('koa/lib/search-params.js') as {
  parse(str: string): Record<string, string | string[]>;
};

export interface FastPathOptions {
  api: ApiRouter;
  logger: Logger;
  /** The JSON body limit in bytes (koa-body's jsonLimit). */
  bodyLimit: number;
  /** The Koa app's request handler: everything not served here. */
  koa: Handler;
  /**
   * Answer a handler's result that is not JSON (a string, a Buffer, a stream...) as Koa would:
   * status 200, X-Request-Id, the body set on a Koa context and sent by Koa's respond.
   */
  koaRespond(req: IncomingMessage, res: ServerResponse, reqId: string, result: unknown): Promise<void>;
}

/** `name=value` pairs of unreserved characters only: nothing to decode, nothing URLSearchParams would treat specially. */
const PLAIN_QUERY = /^[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*(?:&[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*)*$/;

/**
 * ctx.query of a query string. A plain one (the claim calls') is split directly, which is what
 * URLSearchParams would make of it; anything else (escapes, `+`, repeated or empty names...) goes
 * to Koa's parser.
 */
function parseQuery(querystring: string): Record<string, string | string[]> {
  if (querystring === '') return {};
  if (!PLAIN_QUERY.test(querystring)) return koaSearchParams.parse(querystring);
  const out: Record<string, string> = {};
  for (const pair of querystring.split('&')) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(out, name) || name === '__proto__') return koaSearchParams.parse(querystring);
    out[name] = pair.slice(eq + 1);
  }
  return out;
}

/** Content-Type values (lower-cased) that both koa-body and the route's 415 check read as JSON. */
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The node:http request handler: the fast path where it applies, the Koa app otherwise. */
export function fastPathHandler(opts: FastPathOptions): Handler {
  const { api, koa } = opts;
  return (req, res) => {
    const method = req.method!;
    if (method !== 'GET' && method !== 'POST' && method !== 'PUT' && method !== 'DELETE') return void koa(req, res);
    const url = req.url ?? '';
    if (url.charCodeAt(0) !== 47) return void koa(req, res);
    // A URL Koa's parser (parseurl) would hand to url.parse (#, spaces...), or a non-ASCII one.
    let q = -1;
    for (let i = 1; i < url.length; i++) {
      const c = url.charCodeAt(i);
      if (c <= 0x20 || c === 0x23 || c >= 0x7f) return void koa(req, res);
      if (c === 0x3f && q < 0) q = i;
    }
    const path = q < 0 ? url : url.slice(0, q);
    if (path.length > 1 && path.charCodeAt(path.length - 1) === 47) return void koa(req, res);
    const headers = req.headers;
    if (headers['content-encoding'] !== undefined) return void koa(req, res);
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    const sendsBody = te !== undefined || (cl !== undefined && cl !== '0');
    let hasBody = false;
    if (method === 'GET' || method === 'DELETE') {
      // koa-body does not read these; a body would be left to the route's 415 check.
      if (sendsBody) return void koa(req, res);
    } else {
      const ct = headers['content-type'];
      if (ct === undefined) {
        if (sendsBody) return void koa(req, res);
      } else if (!JSON_TYPES.has(ct.toLowerCase())) {
        return void koa(req, res);
      } else {
        // type-is counts a body when either header is there, even Content-Length: 0 (co-body: {}).
        hasBody = te !== undefined || cl !== undefined;
      }
    }
    const found = api.matchFast(method, path);
    if (found === undefined) return void koa(req, res);
    serve(opts, req, res, method, url, path, q < 0 ? '' : url.slice(q + 1), found, hasBody).catch((err: unknown) => {
      // Only writing the answer itself can fail here (every other error is answered above).
      opts.logger.error({ err, method, url }, 'request failed');
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else res.destroy();
    });
  };
}

async function serve(
  opts: FastPathOptions,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  url: string,
  path: string,
  querystring: string,
  found: FastMatch,
  hasBody: boolean,
): Promise<void> {
  const { logger } = opts;
  const started = logger.isLevelEnabled('debug') ? process.hrtime.bigint() : 0n;
  const reqId = requestIdFor(req.headers['x-request-id']);
  const log = lazyRequestLogger(logger, reqId);
  let status: number;
  let text: string | undefined;
  let etag: string | undefined;
  try {
    let body: unknown;
    if (hasBody) {
      try {
        body = parseStrictJson(bodyText(await readBody(req, opts.bodyLimit)));
      } catch (err) {
        throw bodyError(err);
      }
    }
    const result = await found.route.run({
      params: found.params,
      query: parseQuery(querystring),
      body: () => body,
      ctx: () => standInContext(method, url, path, body, log, found),
      log,
    });
    if (result === undefined) throw routeNotFound(method, path);
    if (result === null) {
      // Koa: a null body after status 200 is 204 with no content headers.
      res.writeHead(204, ['X-Request-Id', reqId]);
      res.end();
      logRequestEnd(logger, log, started, method, url, 204);
      return;
    }
    status = 200;
    text = isJsonBody(result) ? jsonOrUndefined(result) : undefined;
    if (text === undefined) {
      // Not JSON (a string, a Buffer, a stream...) or not serialisable: Koa's respond answers it.
      await opts.koaRespond(req, res, reqId, result);
      logRequestEnd(logger, log, started, method, url, res.statusCode);
      return;
    }
  } catch (raw) {
    const answer = errorAnswer(raw, logger, method, url);
    status = answer.status;
    text = JSON.stringify(answer.body);
    etag = answer.etag;
  }
  const head = ['X-Request-Id', reqId, 'Content-Type', JSON_CONTENT_TYPE];
  if (etag !== undefined) head.push('ETag', etag);
  head.push('Content-Length', String(Buffer.byteLength(text)));
  res.writeHead(status, head);
  res.end(text);
  logRequestEnd(logger, log, started, method, url, status);
}

function jsonOrUndefined(value: unknown): string | undefined {
  try {
    return JSON.stringify(value) as string | undefined;
  } catch {
    return undefined;
  }
}

/** A body Koa would send as JSON (ctx.body of any other kind of value is sent by Koa). */
function isJsonBody(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'boolean') return true;
  if (typeof value !== 'object' || value === null) return false;
  if (Buffer.isBuffer(value) || typeof (value as { pipe?: unknown }).pipe === 'function') return false;
  return !(value instanceof ReadableStream || value instanceof Blob || value instanceof Response);
}

/**
 * What a handler may read of the Koa context on the fast path: `request.body` (the body as sent,
 * for merge semantics) and `state.log`. Reading anything else is a programming error that names
 * the route to declare with `koa: true`.
 */
function standInContext(method: string, url: string, path: string, body: unknown, log: () => Logger, found: FastMatch): Context {
  const known: Record<string, unknown> = { method, url, path, params: found.params, request: { body }, state: new RequestState(log) };
  return new Proxy(known, {
    get(target, prop) {
      if (typeof prop !== 'string' || prop === 'then' || prop in target) return Reflect.get(target, prop) as unknown;
      throw new Error(`${found.route.spec.method.toUpperCase()} ${found.route.spec.path} reads ctx.${String(prop)}, which the fast path does not have: declare the route with koa: true`);
    },
    set(_target, prop) {
      throw new Error(`${found.route.spec.method.toUpperCase()} ${found.route.spec.path} sets ctx.${String(prop)}, which the fast path does not have: declare the route with koa: true`);
    },
  }) as unknown as Context;
}

/** The body as text, as co-body makes it of raw-body's bytes: UTF-8 with a leading BOM dropped. */
function bodyText(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** co-body's strict JSON: only an object or an array; empty is {}. The errors carry status 400 as co-body's do. */
const STRICT_JSON = /^[\x20\x09\x0a\x0d]*(\[|\{)/;

function parseStrictJson(text: string): unknown {
  try {
    if (!text) return {};
    if (!STRICT_JSON.test(text)) throw new SyntaxError('invalid JSON, only supports object and array');
    const value = JSON.parse(text) as unknown;
    rejectProtoKeys(text, value);
    return value;
  } catch (err) {
    (err as { status?: number }).status = 400;
    throw err;
  }
}

/** @hapi/bourne's check, as co-body runs it (protoAction 'error'): no `__proto__` key anywhere. */
const SUSPECT_PROTO = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;

function rejectProtoKeys(text: string, value: unknown): void {
  if (!value || typeof value !== 'object' || !SUSPECT_PROTO.test(text)) return;
  let next: object[] = [value];
  while (next.length) {
    const nodes = next;
    next = [];
    for (const node of nodes) {
      if (Object.prototype.hasOwnProperty.call(node, '__proto__')) throw new SyntaxError('Object contains forbidden prototype property');
      for (const key in node) {
        const v = (node as Record<string, unknown>)[key];
        if (v && typeof v === 'object') next.push(v);
      }
    }
  }
}
