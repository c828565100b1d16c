/** Engine routes: claims (graph/engine). */
import type { ApiRouter } from '../api-router.js';

export function registerEngineClaimsRoutes(_api: ApiRouter): void {
  // routes land here
}
