/**
 * Per-request pieces both request paths share (the Koa app in server/app.ts and the fast
 * dispatcher in server/fast-path.ts): the request id rule, the request's lazy child logger and the
 * debug line logged when a request ends.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';

const GIVEN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of a request: the client's X-Request-Id when it is 1-128 characters of
 * `A-Z a-z 0-9 . _ : -`, else a new random UUID. It is echoed in the X-Request-Id response header
 * and is the `reqId` of every log line of the request.
 *
 * A UUID (crypto.randomUUID, ~0.2 µs here from Node's buffered entropy) is kept rather than a
 * cheaper process-local counter: it costs 0.2% of the cheapest request, and it stays unique
 * across restarts and servers, which a counter would not without a random prefix of its own.
 */
export function requestIdFor(given: string | string[] | undefined): string {
  return typeof given === 'string' && GIVEN_ID.test(given) ? given : randomUUID();
}

/**
 * A getter for the request's child logger (`{ reqId }`), made on first use: most requests never
 * log at the configured level, and a pino child per request was a measurable part of a small
 * request's CPU.
 */
export function lazyRequestLogger(logger: Logger, reqId: string): () => Logger {
  let child: Logger | undefined;
  return () => (child ??= logger.child({ reqId }));
}

/** The debug line for a finished request (only when debug is enabled). */
export function logRequestEnd(logger: Logger, log: () => Logger, started: bigint, method: string, url: string, status: number): void {
  if (!logger.isLevelEnabled('debug')) return;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  log().debug({ method, url, status, ms }, 'request');
}

/**
 * `ctx.state` of a request on either path: `log`, the request's lazy child logger, by a getter on
 * this class's prototype. Not an accessor defined on each request's object (an object literal's
 * getter or Object.defineProperty): in V8 those kept every request's objects alive through the
 * young generation's collections, and so promoted them (see HandlerRequest in api-router.ts).
 */
export class RequestState {
  constructor(private readonly logger: () => Logger) {}

  get log(): Logger {
    return this.logger();
  }
}
