/**
 * The server's structured logger (pino). One child logger per request carries the request id.
 * Under vitest the default level is `silent`, so test output stays readable; WEFT_LOG_LEVEL or the
 * `logLevel` setting overrides that.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** pino level; default `info`, or `silent` under vitest unless WEFT_LOG_LEVEL is set. */
  level?: string;
  /** Where to write; default stderr, so stdout stays free for command output. */
  destination?: NodeJS.WritableStream;
}

/** True when running under the test runner. */
function underTests(): boolean {
  return process.env.VITEST !== undefined || process.env.NODE_ENV === 'test';
}

/** Create the process logger. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const explicit = process.env.WEFT_LOG_LEVEL;
  const level = underTests() && explicit === undefined ? 'silent' : (opts.level ?? explicit ?? 'info');
  return pino({ name: 'weft', level, base: { pid: process.pid } }, (opts.destination ?? process.stderr) as pino.DestinationStream);
}
