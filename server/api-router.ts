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
 *       await assertWorkflow(deps.store, params.key);  // 404 WORKFLOW_NOT_FOUND
 *       return { is_complete: true };                   // becomes the 200 JSON body
 *     },
 *   );
 * }
 * // then one line in server/routes/index.ts: add registerMyThingRoutes to ROUTE_MODULES.
 * ```
 *
 * Routes are matched in registration order, so register a literal path
 * (`/workflow_specifications/example`) before a parameterised one (`/workflow_specifications/{key}`).
 * A handler that writes `ctx.body` itself (a stream) returns undefined, and its route is declared
 * with `koa: true`.
 *
 * Two paths serve a declared route. The Koa app (server/app.ts) serves every request; in front of
 * it the fast dispatcher (server/fast-path.ts) serves the plain ones (a route matched exactly, no
 * body or a JSON one, no Content-Encoding) without building a Koa context, through the same
 * validation and handler ({@link CompiledRoute.run}) and the same error answers. A handler may
 * still read `ctx.request.body` (the body as sent) on the fast path; anything else of the Koa
 * context needs `koa: true` on the route, which leaves it to Koa alone.
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
  /**
   * The Koa context. On the fast path only `ctx.request.body` (the body as sent) and `ctx.state.log`
   * exist; a route that needs more is declared with `koa: true`.
   */
  ctx: Context;
  /** Child logger with the request id. */
  log: Logger;
}

export type RouteHandler<P, Q, B> = (req: RouteRequest<P, Q, B>) => unknown;

/** Route declaration: the documented spec plus how it is served. */
export interface ApiRouteSpec extends RouteSpec {
  /**
   * The handler needs the Koa context beyond `ctx.request.body` (it reads headers or the request
   * stream, or sets `ctx.body` to a stream): the route is served by Koa only, never by the fast
   * dispatcher.
   */
  koa?: boolean;
}

/** The raw inputs of one request, as either path has them. */
export interface RouteInput {
  /** Decoded path parameters (as @koa/router decodes them). */
  params: Record<string, string>;
  /** The query as Koa parses it (a string, or an array for a repeated parameter). */
  query: Record<string, string | string[] | undefined>;
  /** The parsed JSON body, undefined when none was sent; read only when the route has a body. */
  body(): unknown;
  ctx(): Context;
  log(): Logger;
}

/** A declared route, ready to serve on either path. */
export interface CompiledRoute {
  readonly spec: ApiRouteSpec;
  /** Validate the inputs with the route's schemas, then call its handler: the handler's result. */
  run(input: RouteInput): unknown;
}

const EmptyQuery = z.strictObject({});

/** Convert `/a/{b}/c` to the router's `/a/:b/c`. */
export function toRouterPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

/** A route the fast dispatcher may serve, with the decoded path parameters of the request. */
export interface FastMatch {
  route: CompiledRoute;
  params: Record<string, string>;
}

export class ApiRouter {
  readonly router: Router;
  readonly table = new RouteTable();
  /** The router layer of each declared route. */
  private readonly compiled = new Map<MatchLayer, CompiledRoute>();
  /** The router's layers by segment count, for both matchers; rebuilt when a layer is added. */
  private index: LayerIndex | undefined;

  /** `prefix` is the base path every route is mounted under ('' = the root). */
  constructor(readonly deps: RouteDeps, prefix = '') {
    this.router = new Router(prefix ? { prefix } : {});
    // The router tests every layer's regular expression against every request (145 here, and a
    // debug() call each): about 5% of the server's CPU in the lifecycle benchmark. It tests just
    // the layers that can match a path of this many segments: the same layers in the same order.
    (this.router as unknown as RouterInternals).match = (path, method) => matchLayers(this.layerIndex().byCount(segmentCount(path)), path, method);
  }

  private layerIndex(): LayerIndex {
    const layers = (this.router as unknown as RouterInternals).stack;
    if (this.index === undefined || this.index.size !== layers.length) this.index = new LayerIndex(layers, this.compiled);
    return this.index;
  }

  /** Declare, validate and document one route. */
  route<P extends z.ZodObject | undefined = undefined, Q extends z.ZodObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(
    spec: ApiRouteSpec & { params?: P; query?: Q; body?: B },
    handler: RouteHandler<P, Q, B>,
  ): void {
    this.table.add(spec);
    const bodyRequired = spec.body !== undefined && (spec.bodyRequired ?? true);
    const querySchema = spec.query ?? EmptyQuery;
    const deps = this.deps;
    const route: CompiledRoute = {
      spec,
      run(input: RouteInput): unknown {
        const params = (spec.params ? parseOrThrow('path', spec.params, input.params) : undefined) as Out<P>;
        const query = (spec.query || hasKeys(input.query) ? parseOrThrow('query', querySchema, { ...input.query }) : undefined) as Out<Q>;
        let body = undefined as Out<B>;
        if (spec.body) {
          const raw = input.body();
          body = (raw === undefined && !bodyRequired ? undefined : parseOrThrow('body', spec.body, raw)) as Out<B>;
        }
        return handler(new HandlerRequest(params, (spec.query ? query : undefined) as Out<Q>, body, deps, input));
      },
    };
    this.router[spec.method](toRouterPath(spec.path), async (ctx: Context) => {
      const result = await route.run({
        params: (ctx.params ?? {}) as Record<string, string>,
        query: ctx.query,
        body: () => readBody(ctx),
        ctx: () => ctx,
        log: () => (ctx.state.log as Logger | undefined) ?? deps.logger,
      });
      if (result !== undefined) {
        ctx.status = 200;
        ctx.body = result;
      }
    });
    const layers = (this.router as unknown as RouterInternals).stack;
    this.compiled.set(layers[layers.length - 1]!, route);
  }

  /**
   * The declared route the router would run for `method` and `path` (a pathname without a
   * trailing slash), when the fast dispatcher may serve it: the first layer of the router, in
   * registration order, whose path and method match is a declared route without `koa: true`, and
   * it matches with the same letter case. undefined in every other case (HEAD, no match, 405, a
   * case-insensitive match, a middleware layer first...): Koa answers those.
   */
  matchFast(method: string, path: string): FastMatch | undefined {
    const segments = path.split('/');
    const entries = this.layerIndex().byMethod(method, segments.length - 1);
    for (const entry of entries) {
      let exact = true;
      const want = entry.segments;
      if (want) {
        // Last segment first: where the routes of one shape differ.
        let matched = true;
        for (let i = want.length - 1; i >= 0; i--) {
          const w = want[i]!;
          const got = segments[i + 1]!;
          if (w.param !== undefined) {
            if (got === '') matched = false;
          } else if (got !== w.literal) {
            if (got.length === w.literal.length && got.toLowerCase() === w.lower) exact = false;
            else matched = false;
          }
          if (!matched) break;
        }
        if (!matched) continue;
      } else {
        if (!entry.layer.match(path)) continue;
        exact = false;
      }
      if (entry.layer.methods.length === 0 || entry.route === undefined || !exact) return undefined;
      const params: Record<string, string> = {};
      for (let i = 0; i < want!.length; i++) {
        const name = want![i]!.param;
        if (name !== undefined) params[name] = safeDecodeURIComponent(segments[i + 1]!);
      }
      return { route: entry.route, params };
    }
    return undefined;
  }
}

/**
 * What a handler receives. `ctx` and `log` are read on demand (the request's child logger is
 * made only when a handler logs), by getters on this class's prototype, not on each object: an
 * object literal with getters (`{ ..., get ctx() {...} }`) was given its accessors one by one at
 * every request, and in V8 that kept each request's objects (the getters' closures, the input
 * they hold, what the handler made of them) alive through the young generation's collections,
 * so they were all promoted to the old one. The server promoted ~1.6 MB per scavenge under 64
 * clients on /ping (none with a plain node:http handler), ~2 MB per scavenge under the claim
 * benchmark, and that old-generation growth brought a Mark-Compact (a 5-17 ms pause for the
 * requests in flight) every few seconds.
 */
class HandlerRequest<P, Q, B> implements RouteRequest<P, Q, B> {
  constructor(
    readonly params: Out<P>,
    readonly query: Out<Q>,
    readonly body: Out<B>,
    readonly deps: RouteDeps,
    private readonly input: RouteInput,
  ) {}

  get ctx(): Context {
    return this.input.ctx();
  }

  get log(): Logger {
    return this.input.log();
  }
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** @koa/router's decoding of a path parameter: decodeURIComponent, or the text as is when malformed. */
function safeDecodeURIComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
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

/** The part of a router layer the matchers read. */
interface MatchLayer {
  path: string;
  methods: string[];
  opts: { end?: boolean; sensitive?: boolean; strict?: boolean; pathAsRegExp?: boolean };
  match(path: string): boolean;
}

interface MatchResult {
  path: MatchLayer[];
  pathAndMethod: MatchLayer[];
  route: boolean;
}

/** The parts of @koa/router's Router the matchers use. */
interface RouterInternals {
  stack: MatchLayer[];
  match(path: string, method: string): MatchResult;
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

/** A layer the segment matcher reproduces exactly: simple path, default case and slash rules. */
function isSimple(l: MatchLayer): boolean {
  return l.opts.end !== false && !l.opts.sensitive && !l.opts.strict && !l.opts.pathAsRegExp && typeof l.path === 'string' && SIMPLE_PATH.test(l.path);
}

/** One layer as the matchers see it. */
interface IndexedLayer {
  layer: MatchLayer;
  /** The declared route of the layer, when the fast dispatcher may serve it. */
  route?: CompiledRoute;
  /**
   * The path's segments for a simple layer ({@link isSimple}): it matches a request path of
   * exactly as many segments, and these tell which. undefined: only the layer's regular
   * expression can tell, and it may match a path of any length.
   */
  segments?: { literal: string; lower: string; param?: undefined }[] | { param: string; literal?: undefined; lower?: undefined }[];
}

/**
 * The router's layers, in registration order, by the number of segments of the request paths
 * they can match. Both matchers read it: @koa/router's `match` (patched in the ApiRouter
 * constructor) and ApiRouter.matchFast.
 */
class LayerIndex {
  /** router.stack.length when built. */
  readonly size: number;
  private readonly counts: Map<number, IndexedLayer[]>;
  /** The layers that are not simple: all a path of a count no simple layer has can match. */
  private readonly others: IndexedLayer[];
  /** `${method} ${segment count}` → the layers of that count the method can reach, made on first use. */
  private readonly methods = new Map<string, IndexedLayer[]>();

  constructor(layers: MatchLayer[], compiled: Map<MatchLayer, CompiledRoute>) {
    const entries = layers.map((layer): IndexedLayer => {
      const route = compiled.get(layer);
      const entry: IndexedLayer = { layer, ...(route && !route.spec.koa ? { route } : {}) };
      if (isSimple(layer)) {
        entry.segments = layer.path
          .slice(1)
          .split('/')
          .map((s) => (s.startsWith(':') ? { param: s.slice(1) } : { literal: s, lower: s.toLowerCase() })) as IndexedLayer['segments'];
      }
      return entry;
    });
    const counts = new Set(entries.filter((e) => e.segments).map((e) => e.segments!.length));
    this.size = layers.length;
    this.counts = new Map([...counts].map((n) => [n, entries.filter((e) => !e.segments || e.segments.length === n)]));
    this.others = entries.filter((e) => !e.segments);
  }

  /** The layers, in registration order, that may match a path of `count` segments. */
  byCount(count: number): IndexedLayer[] {
    return this.counts.get(count) ?? this.others;
  }

  /**
   * Those of them `method` can reach: a layer of another method is skipped by the router whether
   * its path matches or not.
   */
  byMethod(method: string, count: number): IndexedLayer[] {
    const key = `${method} ${count}`;
    let entries = this.methods.get(key);
    if (entries === undefined) {
      entries = this.byCount(count).filter((e) => e.layer.methods.length === 0 || e.layer.methods.includes(method));
      this.methods.set(key, entries);
    }
    return entries;
  }
}

/** @koa/router's match over the given layers (each tested by its own regular expression). */
function matchLayers(entries: IndexedLayer[], path: string, method: string): MatchResult {
  const result: MatchResult = { path: [], pathAndMethod: [], route: false };
  const wanted = method.toUpperCase();
  for (const { layer } of entries) {
    if (!layer.match(path)) continue;
    result.path.push(layer);
    if (layer.methods.length === 0 || layer.methods.includes(wanted)) {
      result.pathAndMethod.push(layer);
      if (layer.methods.length > 0) result.route = true;
    }
  }
  return result;
}
