/** The lease loop: gives back jobs held by compute nodes whose heartbeat lapsed (graph/engine). */
import type { BackgroundTask } from './background.js';

/** Background tasks of the engine; the engine lifecycle owner fills this in. */
export const ENGINE_BACKGROUND_TASKS: readonly BackgroundTask[] = [];
