/** Engine routes: lifecycle (graph/engine). */
import type { ApiRouter } from '../api-router.js';

export function registerEngineLifecycleRoutes(_api: ApiRouter): void {
  // routes land here
}
