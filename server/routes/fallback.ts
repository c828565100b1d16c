/**
 * Catch-alls registered after every other route: a path shaped like a collection route whose
 * collection segment is not a known collection answers 404 UNKNOWN_COLLECTION naming it, instead
 * of a bare "route not found". Hidden from the OpenAPI document.
 */
import { z } from 'zod';
import { WeftError } from '../../graph/errors.js';
import { WORKFLOW_COLLECTION_NAMES } from '../../graph/model.js';
import type { ApiRouter } from '../api-router.js';

function unknownCollection(name: string): never {
  throw new WeftError('UNKNOWN_COLLECTION', `Unknown collection "${name}" (known: ${WORKFLOW_COLLECTION_NAMES.join(', ')}; edges live under /edges/{name})`, {
    details: [{ path: ['collection'], message: `unknown collection "${name}"`, rule: 'collection' }],
    extra: { collection: name },
  });
}

export function registerFallbackRoutes(api: ApiRouter): void {
  const params = z.object({ workflow: z.string(), collection: z.string() });
  const anyQuery = z.looseObject({});
  for (const method of ['get', 'post', 'delete'] as const) {
    api.route(
      { method, path: '/workflows/{workflow}/{collection}', summary: 'Unknown collection', params, query: anyQuery, hidden: true },
      ({ params: p }) => unknownCollection(p.collection),
    );
  }
  for (const method of ['get', 'put', 'delete'] as const) {
    api.route(
      { method, path: '/workflows/{workflow}/{collection}/{key}', summary: 'Unknown collection', params: params.extend({ key: z.string() }), query: anyQuery, hidden: true },
      ({ params: p }) => unknownCollection(p.collection),
    );
  }
}
