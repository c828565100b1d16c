/**
 * Graph view routes: DOT text of the dependency graphs, and joins of a collection with its
 * neighbours along an edge collection.
 */
import { z } from 'zod';
import { DOT_GRAPH_NAMES } from '../../graph/dot.js';
import { WeftError } from '../../graph/errors.js';
import { dotGraph, joinByEdge } from '../../graph/engine/views-graph.js';
import { EDGE_COLLECTION_NAMES, WORKFLOW_COLLECTION_NAMES } from '../../graph/model.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow, batchSchema } from '../route-helpers.js';
import { FieldPath, MAX_LIMIT, PagingQueryShape, WorkflowKeyParam } from '../validate.js';
import { pagingOf } from './views-jobs.js';

const JoinFilterBody = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))
  .meta({ description: 'Equality filters on the base collection (field → value); {} or no body means all documents.' });

const JoinRowSchema = z.object({ from: z.looseObject({}).nullable(), to: z.looseObject({}).nullable(), edge: z.looseObject({}) });

export function registerViewsGraphRoutes(api: ApiRouter): void {
  const tags = ['graphs'];
  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/dot_graph/{name}',
      summary: 'Build a string for a DOT graph',
      description: `Graph names: ${DOT_GRAPH_NAMES.join(', ')}. Every id and label is a quoted DOT string, so any name gives valid DOT.`,
      operationId: 'get_dot_graph',
      tags,
      params: z.object({ key: WorkflowKeyParam, name: z.string().min(1).meta({ description: `One of ${DOT_GRAPH_NAMES.join(', ')}` }) }),
      response: z.object({ graph: z.string() }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.key);
      return { graph: await dotGraph(deps.store, params.key, params.name) };
    },
  );

  for (const direction of ['inbound', 'outbound'] as const) {
    api.route(
      {
        method: 'post',
        path: `/workflows/{key}/join_by_${direction}_edge/{collection}/{edge}`,
        summary: `Retrieve a table of the collections joined by an ${direction} edge`,
        description:
          (direction === 'outbound'
            ? 'Rows {from: base document, to: neighbour, edge}. '
            : 'Rows {from: neighbour, to: base document, edge}. ') +
          'skip and limit page over the base documents (after the body filters); total_count counts base documents, count counts rows. ' +
          'collection_key and collection_name filter the base documents by _key and name.',
        operationId: `join_by_${direction}_edge`,
        tags,
        params: z.object({
          key: WorkflowKeyParam,
          collection: z.string().min(1).meta({ description: `Base collection: ${WORKFLOW_COLLECTION_NAMES.join(', ')}` }),
          edge: z.string().min(1).meta({ description: `Edge collection: ${EDGE_COLLECTION_NAMES.join(', ')}` }),
        }),
        query: z.strictObject({
          ...PagingQueryShape,
          collection_key: z.string().min(1).optional().meta({ description: 'Only the base document with this key' }),
          collection_name: z.string().min(1).optional().meta({ description: 'Only base documents with this name' }),
        }),
        body: JoinFilterBody,
        bodyRequired: false,
        response: batchSchema(JoinRowSchema),
      },
      async ({ deps, params, query, body }) => {
        await assertWorkflow(deps.store, params.key);
        const filter: Record<string, unknown> = {};
        for (const [field, value] of Object.entries(body ?? {})) {
          if (!FieldPath.safeParse(field).success) {
            throw new WeftError('VALIDATION_FAILED', `Invalid request: body field ${field}: must be a field name or dotted field path`, {
              details: [{ path: [field], message: 'must be a field name or dotted field path', rule: 'field_path' }],
              extra: { in: 'body' },
            });
          }
          filter[field] = value;
        }
        if (query.collection_key !== undefined) filter._key = query.collection_key;
        if (query.collection_name !== undefined) filter.name = query.collection_name;
        const page = await joinByEdge(deps.store, params.key, params.collection, params.edge, direction, filter, pagingOf(query));
        const baseCount = query.limit === undefined ? page.total - page.skip : Math.min(query.limit, Math.max(0, page.total - page.skip));
        return {
          items: page.items,
          skip: page.skip,
          max_limit: MAX_LIMIT,
          count: page.items.length,
          total_count: page.total,
          has_more: page.skip + Math.max(0, baseCount) < page.total,
        };
      },
    );
  }
}
