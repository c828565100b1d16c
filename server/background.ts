/**
 * Background tasks the server runs while it listens (the lease loop that gives back jobs of
 * silent compute nodes, for example). A task starts after the server listens and is stopped,
 * awaited, before the store closes, so it may use the store until its `stop()` resolves.
 *
 * To add one: export `start...(deps): RunningTask` from its own module and add it to
 * BACKGROUND_TASKS with a one-line edit. Stop with an AbortSignal or a cleared timer; never
 * leave a timer that keeps the process alive after stop().
 */
import type { RouteDeps } from './api-router.js';
import { ENGINE_BACKGROUND_TASKS } from './lease.js';

export interface RunningTask {
  /** A name for logs. */
  readonly name: string;
  /** Stop the task and wait until it no longer touches the store. */
  stop(): Promise<void>;
}

export type BackgroundTask = (deps: RouteDeps) => RunningTask;

/** Tasks every server runs (startServer's `background` option replaces this list). */
export const BACKGROUND_TASKS: readonly BackgroundTask[] = [...ENGINE_BACKGROUND_TASKS];
