/**
 * ApiRouter: declare a route once (spec + handler); it is validated, mounted and documented.
 *
 * How to add routes (other modules do exactly this):
 *
 * ```ts
 * // server/routes/my-thing.ts
 * export function registerMyThingRoutes(api: ApiRouter): void {
 *   api.route(
 *     {
 *       method: 'get',
 *       path: '/workflows/{key}/is_complete',           // OpenAPI style, relative to basePath
 *       summary: 'Whether every job of the workflow is finished',
 *       operationId: 'is_workflow_complete',
 *       params: z.object({ key: WorkflowKeyParam }),    // from server/validate.ts
 *       query: z.strictObject({ ... }),                 // optional; unknown parameters → 400
 *       body: SomeZodSchema,                            // optional; parsed JSON body
 *       response: ResponseZodSchema,                    // for the OpenAPI document
 *     },
 *     async ({ params, query, body, deps, ctx }) => {   // typed from the schemas
 *       await requireWorkflow(deps.store, params.key);  // 404 WORKFLOW_NOT_FOUND
 *       return { is_complete: true };                   // becomes the 200 JSON body
 *     },
 *   );
 * }
 * // then one line in server/routes/index.ts: add registerMyThingRoutes to ROUTE_MODULES.
 * ```
 *
 * Routes are matched in registration order, so register a literal path
 * (`/workflow_specifications/example`) before a parameterised one (`/workflow_specifications/{key}`).
 * A handler that writes `ctx.body` itself (a stream) returns undefined.
 */
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { WeftError } from '../graph/errors.js';
import type { GraphStore } from '../graph/store/port.js';
import type { ResolvedServerConfig } from './config.js';
import { RouteTable, type RouteSpec } from './openapi.js';
import { parseOrThrow } from './validate.js';

/** What every route handler may use. */
export interface RouteDeps {
  readonly store: GraphStore;
  readonly config: ResolvedServerConfig;
  readonly logger: Logger;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What a handler receives: validated params, query and body, plus deps and the Koa context. */
export interface RouteRequest<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  deps: RouteDeps;
  ctx: Context;
  /** Child logger with the request id. */
  log: Logger;
}

export type RouteHandler<P, Q, B> = (req: RouteRequest<P, Q, B>) => unknown;

const EmptyQuery = z.strictObject({});

/** Convert `/a/{b}/c` to the router's `/a/:b/c`. */
export function toRouterPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

export class ApiRouter {
  readonly router: Router;
  readonly table = new RouteTable();

  /** `prefix` is the base path every route is mounted under ('' = the root). */
  constructor(readonly deps: RouteDeps, prefix = '') {
    this.router = new Router(prefix ? { prefix } : {});
    indexBySegmentCount(this.router);
  }

  /** Declare, validate and document one route. */
  route<P extends z.ZodObject | undefined = undefined, Q extends z.ZodObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(
    spec: RouteSpec & { params?: P; query?: Q; body?: B },
    handler: RouteHandler<P, Q, B>,
  ): void {
    this.table.add(spec);
    const bodyRequired = spec.body !== undefined && (spec.bodyRequired ?? true);
    const querySchema = spec.query ?? EmptyQuery;
    this.router[spec.method](toRouterPath(spec.path), async (ctx: Context) => {
      const params = (spec.params ? parseOrThrow('path', spec.params, ctx.params ?? {}) : undefined) as Out<P>;
      const query = (spec.query || Object.keys(ctx.query).length > 0 ? parseOrThrow('query', querySchema, { ...ctx.query }) : undefined) as Out<Q>;
      let body = undefined as Out<B>;
      if (spec.body) {
        const raw = readBody(ctx);
        body = (raw === undefined && !bodyRequired ? undefined : parseOrThrow('body', spec.body, raw)) as Out<B>;
      }
      const deps = this.deps;
      // `log` is read on demand: the request's child logger is made only when a handler logs.
      const result = await handler({
        params,
        query: (spec.query ? query : undefined) as Out<Q>,
        body,
        deps,
        ctx,
        get log(): Logger {
          return (ctx.state.log as Logger | undefined) ?? deps.logger;
        },
      });
      if (result !== undefined) {
        ctx.status = 200;
        ctx.body = result;
      }
    });
  }
}

/** The parsed JSON body, or undefined when none was sent. Non-JSON bodies are 415. */
function readBody(ctx: Context): unknown {
  const hasBody = (ctx.request.length ?? 0) > 0 || ctx.get('transfer-encoding') !== '';
  if (hasBody && !ctx.is('application/json', '+json')) {
    throw new WeftError('UNSUPPORTED_MEDIA_TYPE', `The body must be JSON (Content-Type: application/json), not ${ctx.get('content-type') || 'unspecified'}`, {
      details: [{ path: [], message: 'expected application/json', rule: 'content_type' }],
    });
  }
  return (ctx.request as { body?: unknown }).body;
}

/** The part of a router layer the matcher reads. */
interface MatchLayer {
  path: string;
  methods: string[];
  opts: { end?: boolean };
  match(path: string): boolean;
}

interface MatchResult {
  path: MatchLayer[];
  pathAndMethod: MatchLayer[];
  route: boolean;
}

/** A layer path of literal segments and `:name` parameters only: it matches exactly that many segments. */
const SIMPLE_PATH = /^(?:\/(?:[A-Za-z0-9_.-]+|:[A-Za-z_][A-Za-z0-9_]*))+$/;

/** Segments of a request path, one trailing slash ignored (the layers accept one). */
function segmentCount(path: string): number {
  let n = 0;
  const end = path.length > 1 && path.endsWith('/') ? path.length - 1 : path.length;
  for (let i = 0; i < end; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/**
 * The router tests every layer's regular expression against every request (145 here, and a
 * debug() call each): about 5% of the server's CPU in the lifecycle benchmark. A layer whose path
 * is only literal segments and parameters (none of which match a `/`) can match only a request
 * path with the same number of segments, so `match` tests just the layers of that count, plus
 * any other layer, in registration order: the same layers in the same order as before.
 */
function indexBySegmentCount(router: Router): void {
  const r = router as unknown as { stack: MatchLayer[]; match(path: string, method: string): MatchResult };
  let indexed = -1;
  let byCount = new Map<number, MatchLayer[]>();
  let others: MatchLayer[] = [];
  const rebuild = (): void => {
    const simple = (l: MatchLayer): boolean => l.opts.end !== false && SIMPLE_PATH.test(l.path);
    const counts = new Set(r.stack.filter(simple).map((l) => segmentCount(l.path)));
    byCount = new Map([...counts].map((n) => [n, r.stack.filter((l) => !simple(l) || segmentCount(l.path) === n)]));
    others = r.stack.filter((l) => !simple(l));
    indexed = r.stack.length;
  };
  r.match = (path: string, method: string): MatchResult => {
    if (indexed !== r.stack.length) rebuild();
    const result: MatchResult = { path: [], pathAndMethod: [], route: false };
    const wanted = method.toUpperCase();
    for (const layer of byCount.get(segmentCount(path)) ?? others) {
      if (!layer.match(path)) continue;
      result.path.push(layer);
      if (layer.methods.length === 0 || layer.methods.includes(wanted)) {
        result.pathAndMethod.push(layer);
        if (layer.methods.length > 0) result.route = true;
      }
    }
    return result;
  };
}
