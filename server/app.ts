/**
 * createApp: the Koa application (no listen). Middleware order: request logger → errors →
 * not-found → JSON body (size limit) → API router → allowed methods (405).
 *
 * `app.callback()` (and so `app.listen()`) is the fast dispatcher of server/fast-path.ts in front
 * of that middleware: it serves the plain requests on declared routes itself, with the same
 * answers, and hands everything else to Koa. `app.koaCallback()` is Koa alone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import type { Logger } from 'pino';
import type { GraphStore } from '../graph/store/port.js';
import { ApiRouter } from './api-router.js';
import type { ResolvedServerConfig } from './config.js';
import { bodyError, errorMiddleware, notFoundMiddleware } from './errors.js';
import { fastPathHandler } from './fast-path.js';
import { buildOpenApiDocument } from './openapi.js';
import { RequestState, lazyRequestLogger, logRequestEnd, requestIdFor } from './request-context.js';
import { registerAllRoutes } from './routes/index.js';
import { WEFT_VERSION } from './version.js';

export interface CreateAppOptions {
  /** An opened store. The app never opens or closes it. */
  store: GraphStore;
  config: ResolvedServerConfig;
  logger: Logger;
  /**
   * Serve plain requests on declared routes without Koa (server/fast-path.ts). Default true;
   * the environment variable WEFT_HTTP_FAST_PATH=0 turns it off (to compare the two paths).
   */
  fastPath?: boolean;
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The Koa app plus its route table (for the OpenAPI document and tests). */
export type WeftApp = Koa & {
  api: ApiRouter;
  /** The Koa middleware alone, without the fast dispatcher. */
  koaCallback(): RequestHandler;
};

export function createApp(opts: CreateAppOptions): WeftApp {
  const { store, config, logger } = opts;
  const app = new Koa() as WeftApp;
  app.proxy = false;
  // Koa's own default error logging would print stacks; errors are handled by errorMiddleware.
  app.silent = true;

  const api = new ApiRouter({ store, config, logger }, config.basePath);
  registerAllRoutes(api);
  let openapi: Record<string, unknown> | undefined;
  api.router.get('/openapi.json', (ctx) => {
    openapi ??= buildOpenApiDocument(api.table, {
      title: 'Weft API',
      version: WEFT_VERSION,
      basePath: config.basePath,
      description: 'Graph-database DAG job orchestrator for HPC (Torc 0.6.4 field names).',
    });
    ctx.body = openapi;
  });
  app.api = api;

  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    const reqId = requestIdFor(ctx.req.headers['x-request-id']);
    const log = lazyRequestLogger(logger, reqId);
    ctx.state = new RequestState(log);
    ctx.set('X-Request-Id', reqId);
    await next();
    logRequestEnd(logger, log, started, ctx.method, ctx.url, ctx.status);
  });
  app.use(errorMiddleware(logger));
  app.use(notFoundMiddleware());
  const jsonLimit = Math.max(1, Math.floor(config.bodyLimitMb * 1024 * 1024));
  const parseBody = koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit,
    text: false,
    urlencoded: false,
    multipart: false,
    parsedMethods: ['POST', 'PUT', 'PATCH'] as never,
  });
  // Any failure while reading or parsing the body is the client's: 413, 415 or 400, never 500.
  app.use(async (ctx, next) => {
    try {
      await parseBody(ctx, async () => {});
    } catch (err) {
      throw bodyError(err);
    }
    await next();
  });
  app.use(api.router.routes());
  // Sets 405 + Allow for a known path with another method; notFoundMiddleware turns it into an error body.
  app.use(api.router.allowedMethods());

  const koaCallback = app.callback.bind(app) as () => RequestHandler;
  app.koaCallback = koaCallback;
  const fast = opts.fastPath ?? process.env.WEFT_HTTP_FAST_PATH !== '0';
  if (fast) {
    const internals = app as unknown as {
      createContext(req: IncomingMessage, res: ServerResponse): Koa.Context;
      handleRequest(ctx: Koa.Context, fn: (ctx: Koa.Context) => Promise<void>): Promise<void>;
    };
    (app as { callback: () => RequestHandler }).callback = () =>
      fastPathHandler({
        api,
        logger,
        bodyLimit: jsonLimit,
        koa: koaCallback(),
        koaRespond: (req, res, reqId, result) => {
          const ctx = internals.createContext(req, res);
          ctx.set('X-Request-Id', reqId);
          return internals.handleRequest(ctx, async () => {
            ctx.status = 200;
            ctx.body = result;
          });
        },
      });
  }
  return app;
}
