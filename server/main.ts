/**
 * startServer: resolve the config, open the store, listen, and close it all cleanly.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { GraphStore } from '../graph/store/port.js';
import { createApp, type WeftApp } from './app.js';
import { BACKGROUND_TASKS, type BackgroundTask, type RunningTask } from './background.js';
import { resolveServerConfig, type ResolvedServerConfig, type ResolveConfigOptions } from './config.js';
import { createLogger } from './logger.js';
import { openStore } from './open-store.js';

export interface StartServerOptions {
  /** A resolved config; when absent it is resolved from `flags` and `env`. */
  config?: ResolvedServerConfig;
  /** Flag values (highest precedence), including `config` for a config file path. */
  flags?: ResolveConfigOptions['flags'];
  /** Environment for WEFT_* variables. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** An already opened store to serve (tests); the server then does not close it. */
  store?: GraphStore;
  logger?: Logger;
  /** Close on SIGINT/SIGTERM and exit. Default false (the CLI turns it on). */
  handleSignals?: boolean;
  /** Background tasks to run while listening. Default BACKGROUND_TASKS (server/background.ts). */
  background?: readonly BackgroundTask[];
  /** Serve plain requests without Koa (see createApp). Default true. */
  fastPath?: boolean;
}

export interface RunningServer {
  /** Base URL of the API, e.g. http://127.0.0.1:8080/torc-service */
  url: string;
  /** http://host:port without the base path. */
  origin: string;
  port: number;
  config: ResolvedServerConfig;
  store: GraphStore;
  app: WeftApp;
  /** Stop accepting connections, finish open requests, close the store it opened. Idempotent. */
  close(): Promise<void>;
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Start the Weft server. Rejects (STORE_UNAVAILABLE, VALIDATION_FAILED, EADDRINUSE...) if it cannot. */
export async function startServer(opts: StartServerOptions = {}): Promise<RunningServer> {
  const config = opts.config ?? resolveServerConfig({ flags: opts.flags, env: opts.env });
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const ownsStore = opts.store === undefined;
  const store = opts.store ?? (await openStore(config));
  let server: Server;
  try {
    const app = createApp({ store, config, logger, ...(opts.fastPath === undefined ? {} : { fastPath: opts.fastPath }) });
    server = app.listen({ host: config.host, port: config.port });
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw err;
      }),
    ]);
    const port = (server.address() as AddressInfo).port;
    const origin = `http://${hostForUrl(config.host)}:${port}`;
    const url = `${origin}${config.basePath}`;
    logger.info({ url, store: store.capabilities.kind, db: config.store === 'sqlite' ? config.db : undefined }, 'weft server listening');
    const tasks: RunningTask[] = [];
    for (const start of opts.background ?? BACKGROUND_TASKS) tasks.push(start({ store, config, logger }));

    let closing: Promise<void> | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'shutting down');
      void close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    const close = (): Promise<void> => {
      closing ??= (async () => {
        if (opts.handleSignals) {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        await new Promise<void>((resolve) => {
          // close() closes the connections idle at that moment only; a keep-alive client that
          // sends its next request on a busy one before keepAliveTimeout (a worker heartbeating
          // every 0.5 s) would keep it, and close() waiting, for as long as it goes on. So idle
          // connections are closed again until the last one is gone.
          const sweep = setInterval(() => server.closeIdleConnections(), 50);
          server.close(() => {
            clearInterval(sweep);
            resolve();
          });
          server.closeIdleConnections();
        });
        for (const task of tasks.reverse()) {
          try {
            await task.stop();
          } catch (err) {
            logger.error({ err, task: task.name }, 'background task failed to stop');
          }
        }
        if (ownsStore) await store.close();
        logger.info('weft server stopped');
      })();
      return closing;
    };
    if (opts.handleSignals) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    return { url, origin, port, config, store, app, close };
  } catch (err) {
    if (ownsStore) await store.close();
    throw err;
  }
}
