/** The server's public surface: what the CLI and tests import. */
export { createApp, type CreateAppOptions, type WeftApp } from './app.js';
export { BACKGROUND_TASKS, type BackgroundTask, type RunningTask } from './background.js';
export { ApiRouter, type RouteDeps, type RouteHandler, type RouteRequest } from './api-router.js';
export {
  CONFIG_FILE_ENV,
  ENV_VARS,
  ServerConfigSchema,
  loadConfigFile,
  resolveServerConfig,
  type ResolvedServerConfig,
  type ServerOptions,
} from './config.js';
export { createLogger, type Logger } from './logger.js';
export { startServer, type RunningServer, type StartServerOptions } from './main.js';
export { buildOpenApiDocument, RouteTable, type RouteSpec } from './openapi.js';
export { createStore, openStore } from './open-store.js';
export { API_VERSION, WEFT_VERSION } from './version.js';
