/** Engine routes: specs (graph/engine). */
import type { ApiRouter } from '../api-router.js';

export function registerEngineSpecsRoutes(_api: ApiRouter): void {
  // routes land here
}
