/**
 * The generic edge API: `GET|POST|DELETE /workflows/{workflow}/edges/{name}` and
 * `GET|DELETE /workflows/{workflow}/edges/{name}/{key}` for every edge collection of the model.
 * POST checks that `_from` and `_to` name documents of this workflow in the collections the edge
 * connects (EDGE_COLLECTIONS), and stores them as full ids.
 */
import { z } from 'zod';
import { requireDoc } from '../../graph/engine/views-graph.js';
import { WeftError, type ErrorDetail } from '../../graph/errors.js';
import { EDGE_COLLECTIONS, EDGE_COLLECTION_NAMES, EdgeSchema, collectionOf, isEdgeCollection, keyOf, type CollectionName, type EdgeCollectionName } from '../../graph/model.js';
import type { GraphStore } from '../../graph/store/port.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow, batchSchema, DeleteAllResponseSchema, removeDocument, toBatch } from '../route-helpers.js';
import { MAX_LIMIT, PagingQueryShape, WorkflowKeyParam, assertValidBodyKey, keyOrId } from '../validate.js';

const EdgeNameParam = z.string().min(1).meta({ description: 'Edge collection name', enum: [...EDGE_COLLECTION_NAMES] });

/** The edge collection named in the path, or 404 UNKNOWN_COLLECTION naming it. */
export function edgeCollection(name: string): EdgeCollectionName {
  if (!isEdgeCollection(name)) {
    throw new WeftError('UNKNOWN_COLLECTION', `Unknown edge collection "${name}" (known: ${EDGE_COLLECTION_NAMES.join(', ')})`, {
      details: [{ path: ['name'], message: `unknown edge collection "${name}"`, rule: 'edge_collection' }],
      extra: { collection: name },
    });
  }
  return name;
}

/** Resolve one end of a new edge to a full id of an existing document, or record why not. */
async function resolveEnd(
  store: GraphStore,
  workflow: string,
  edge: EdgeCollectionName,
  field: '_from' | '_to',
  value: string,
  details: ErrorDetail[],
): Promise<string | undefined> {
  const allowed = (field === '_from' ? EDGE_COLLECTIONS[edge].from : EDGE_COLLECTIONS[edge].to) as readonly CollectionName[];
  const named = collectionOf(value);
  if (named === undefined && allowed.length > 1) {
    details.push({ path: [field], message: `must be a full id (${allowed.map((c) => `${c}/<key>`).join(' or ')})`, rule: 'edge_end' });
    return undefined;
  }
  const coll = (named ?? allowed[0]) as CollectionName;
  if (!allowed.includes(coll)) {
    details.push({ path: [field], message: `a ${edge} edge must ${field === '_from' ? 'start at' : 'end at'} ${allowed.join(' or ')}, not ${coll}`, rule: 'edge_end' });
    return undefined;
  }
  const key = keyOf(value);
  if (!(await store.get(coll, workflow, key))) {
    details.push({ path: [field], message: `no ${coll} document "${key}" in workflow ${workflow}`, rule: 'reference' });
    return undefined;
  }
  return `${coll}/${key}`;
}

export function registerEdgeRoutes(api: ApiRouter): void {
  const tags = ['edges'];
  const base = '/workflows/{workflow}/edges/{name}';
  const ListParams = z.object({ workflow: WorkflowKeyParam, name: EdgeNameParam });
  const OneParams = z.object({ workflow: WorkflowKeyParam, name: EdgeNameParam, key: keyOrId([...EDGE_COLLECTION_NAMES], 'Edge key or id') });

  api.route(
    {
      method: 'get',
      path: base,
      summary: 'Retrieve all edges of an edge collection',
      operationId: 'list_edges',
      tags,
      params: ListParams,
      query: z.strictObject(PagingQueryShape),
      response: batchSchema(EdgeSchema),
    },
    async ({ deps, params, query }) => {
      const edge = edgeCollection(params.name);
      await assertWorkflow(deps.store, params.workflow);
      const skip = query.skip ?? 0;
      const found = await deps.store.find(edge, params.workflow, { skip, limit: query.limit ?? MAX_LIMIT, withTotal: true });
      return toBatch(found.items, skip, found.totalCount);
    },
  );

  api.route(
    {
      method: 'post',
      path: base,
      summary: 'Store an edge between two documents of the workflow',
      description: '`_from` and `_to` are ids (`jobs/12`); a bare key is accepted when the end has only one possible collection.',
      operationId: 'add_edge',
      tags,
      params: ListParams,
      body: EdgeSchema,
      response: EdgeSchema,
    },
    async ({ deps, params, body }) => {
      const edge = edgeCollection(params.name);
      await assertWorkflow(deps.store, params.workflow);
      assertValidBodyKey(body._key);
      return deps.store.transaction(async (tx) => {
        const details: ErrorDetail[] = [];
        const from = await resolveEnd(tx, params.workflow, edge, '_from', body._from, details);
        const to = await resolveEnd(tx, params.workflow, edge, '_to', body._to, details);
        if (details.length > 0 || from === undefined || to === undefined) {
          throw new WeftError('VALIDATION_FAILED', `Invalid request: ${details.map((d) => `body field ${d.path.join('.')}: ${d.message}`).join('; ')}`, {
            details,
            extra: { in: 'body' },
          });
        }
        const doc: Record<string, unknown> = { ...body, _from: from, _to: to };
        delete doc._id;
        delete doc._rev;
        return tx.insert(edge, params.workflow, doc);
      });
    },
  );

  api.route(
    { method: 'delete', path: base, summary: 'Delete all edges of an edge collection in the workflow', operationId: 'delete_edges', tags, params: ListParams, response: DeleteAllResponseSchema },
    async ({ deps, params }) => {
      const edge = edgeCollection(params.name);
      await assertWorkflow(deps.store, params.workflow);
      const count = await deps.store.removeWhere(edge, params.workflow);
      return { message: `Deleted ${count} ${edge} edges`, count };
    },
  );

  api.route(
    { method: 'get', path: `${base}/{key}`, summary: 'Retrieve an edge', operationId: 'get_edge', tags, params: OneParams, response: EdgeSchema },
    async ({ deps, params }) => {
      const edge = edgeCollection(params.name);
      await assertWorkflow(deps.store, params.workflow);
      return requireDoc(deps.store, edge, params.workflow, params.key);
    },
  );

  api.route(
    { method: 'delete', path: `${base}/{key}`, summary: 'Delete an edge', operationId: 'remove_edge', tags, params: OneParams, response: EdgeSchema },
    async ({ deps, params }) => {
      const edge = edgeCollection(params.name);
      await assertWorkflow(deps.store, params.workflow);
      return removeDocument(deps.store, edge, params.workflow, params.key);
    },
  );
}
