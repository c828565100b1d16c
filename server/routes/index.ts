/**
 * Every route module of the API, mounted in this order under the base path.
 *
 * To add routes: write `server/routes/<family>.ts` exporting `register<Family>Routes(api: ApiRouter)`
 * (see the example at the top of server/api-router.ts), then add it to ROUTE_MODULES below with a
 * one-line edit. Its routes are validated from their zod schemas and appear in
 * `GET {basePath}/openapi.json` with no further work. Routes match in registration order; the
 * UNKNOWN_COLLECTION catch-alls are always registered after every module.
 */
import type { ApiRouter } from '../api-router.js';
import { registerCollectionRoutes } from './collections.js';
import { registerEdgeRoutes } from './edges.js';
import { registerEngineClaimsRoutes } from './engine-claims.js';
import { registerEngineLifecycleRoutes } from './engine-lifecycle.js';
import { registerEngineSpecsRoutes } from './engine-specs.js';
import { registerFallbackRoutes } from './fallback.js';
import { registerServiceRoutes } from './service.js';
import { registerViewsEventRoutes } from './views-events.js';
import { registerViewsGraphRoutes } from './views-graph.js';
import { registerViewsJobRoutes } from './views-jobs.js';
import { registerViewsRunRoutes } from './views-run.js';
import { registerViewsSpecRoutes } from './views-specs.js';
import { registerWorkflowRoutes } from './workflows.js';

export type RouteModule = (api: ApiRouter) => void;

export const ROUTE_MODULES: readonly RouteModule[] = [
  registerServiceRoutes,
  registerWorkflowRoutes,
  registerCollectionRoutes,
  registerEdgeRoutes,
  registerEngineSpecsRoutes,
  registerEngineLifecycleRoutes,
  registerEngineClaimsRoutes,
  registerViewsGraphRoutes,
  registerViewsJobRoutes,
  registerViewsSpecRoutes,
  registerViewsRunRoutes,
  registerViewsEventRoutes,
];

/** Register every module, then the catch-alls. */
export function registerAllRoutes(api: ApiRouter): void {
  for (const register of ROUTE_MODULES) register(api);
  registerFallbackRoutes(api);
}
