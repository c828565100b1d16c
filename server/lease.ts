/**
 * The lease loop: gives back jobs held by compute nodes whose heartbeat lapsed (graph/engine/lease.ts).
 * It checks every timeout/4 (at least every 50 ms, at most every 15 s), so a job held by a dead
 * worker is ready again within about 1.25 × leaseTimeoutSeconds.
 */
import { expireLeases } from '../graph/engine/lease.js';
import type { BackgroundTask, RunningTask } from './background.js';
import type { RouteDeps } from './api-router.js';

export function startLeaseLoop(deps: RouteDeps): RunningTask {
  const timeoutS = deps.config.leaseTimeoutSeconds;
  const periodMs = Math.min(15_000, Math.max(50, (timeoutS * 1000) / 4));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = (async () => {
      try {
        const n = await expireLeases(deps.store, timeoutS);
        if (n > 0) deps.logger.info({ jobs: n }, 'lease loop gave back jobs of silent compute nodes');
      } catch (err) {
        deps.logger.error({ err }, 'lease loop pass failed');
      }
      if (!stopped) timer = setTimeout(tick, periodMs);
    })();
  };
  timer = setTimeout(tick, periodMs);
  return {
    name: 'lease-loop',
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/** Background tasks of the engine. */
export const ENGINE_BACKGROUND_TASKS: readonly BackgroundTask[] = [startLeaseLoop];
