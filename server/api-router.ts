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
      const log = (ctx.state.log as Logger | undefined) ?? this.deps.logger;
      const result = await handler({ params, query: (spec.query ? query : undefined) as Out<Q>, body, deps: this.deps, ctx, log });
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
