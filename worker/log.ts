/**
 * The worker's logger: pino, JSON lines on stderr (stdout stays free). One child logger per job
 * carries its key, name and run_id. Level: WEFT_LOG_LEVEL or the option, default `info`; under
 * vitest `silent` unless WEFT_LOG_LEVEL is set.
 */
import { pino, type Logger } from 'pino';

export function createWorkerLogger(level?: string): Logger {
  const explicit = process.env['WEFT_LOG_LEVEL'];
  const underTests = process.env['VITEST'] !== undefined;
  const lvl = level ?? explicit ?? (underTests ? 'silent' : 'info');
  return pino({ name: 'weft-worker', level: lvl, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
