/**
 * The workflow config's scripts (worker_startup_script, workflow_completion_script): run with
 * `bash -c` in the worker's directory, output to the worker's stderr.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

/** Run `script`; resolves with its exit status (-signal, or 127 when bash could not start). */
export function runScript(script: string, env: NodeJS.ProcessEnv, log: Logger): Promise<number> {
  log.info({ script }, 'running script');
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 2, 2] });
    child.once('error', (err) => {
      log.error({ err: err.message }, 'script could not start');
      resolve(127);
    });
    child.once('exit', (code, signal) => {
      const rc = code ?? (signal ? -1 : 1);
      log.info({ rc }, 'script finished');
      resolve(rc);
    });
  });
}
