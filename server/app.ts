/**
 * createApp: the Koa application (no listen). Middleware order: request logger → errors →
 * not-found → JSON body (size limit) → API router → allowed methods (405).
 */
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import type { Logger } from 'pino';
import type { GraphStore } from '../graph/store/port.js';
import { ApiRouter } from './api-router.js';
import type { ResolvedServerConfig } from './config.js';
import { bodyError, errorMiddleware, notFoundMiddleware } from './errors.js';
import { buildOpenApiDocument } from './openapi.js';
import { registerAllRoutes } from './routes/index.js';
import { WEFT_VERSION } from './version.js';

export interface CreateAppOptions {
  /** An opened store. The app never opens or closes it. */
  store: GraphStore;
  config: ResolvedServerConfig;
  logger: Logger;
}

/** The Koa app plus its route table (for the OpenAPI document and tests). */
export type WeftApp = Koa & { api: ApiRouter };

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
    const given = ctx.get('x-request-id');
    const reqId = /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
    // The child logger is made on first use: most requests never log at the configured level,
    // and a pino child per request was a measurable part of a small request's CPU.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { get: () => (child ??= logger.child({ reqId })), enumerable: true, configurable: true });
    ctx.set('X-Request-Id', reqId);
    await next();
    if (logger.isLevelEnabled('debug')) {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      (ctx.state.log as Logger).debug({ method: ctx.method, url: ctx.url, status: ctx.status, ms }, 'request');
    }
  });
  app.use(errorMiddleware(logger));
  app.use(notFoundMiddleware());
  const parseBody = koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: Math.max(1, Math.floor(config.bodyLimitMb * 1024 * 1024)),
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
  return app;
}
