/**
 * Small pieces the route modules share: workflow lookup (and the handler of a view of one
 * workflow), list batches, the delete of one document, and the merge-validate-replace used by
 * every PUT.
 */
import { z } from 'zod';
import { requireDoc } from '../graph/engine/views-graph.js';
import { WeftError } from '../graph/errors.js';
import type { CollectionName, EdgeCollectionName, WorkflowCollectionName } from '../graph/model.js';
import type { Doc, GraphStore } from '../graph/store/port.js';
import { MAX_LIMIT, assertSameKey, filtersOf, parseOrThrow } from './validate.js';

/** The workflow document, or 404 WORKFLOW_NOT_FOUND. */
export async function requireWorkflow(store: GraphStore, key: string): Promise<Doc> {
  const wf = await store.get('workflows', null, key);
  if (!wf) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${key} not found`, { extra: { workflow: key } });
  return wf;
}

/** 404 WORKFLOW_NOT_FOUND unless the workflow exists (requireWorkflow without reading the document). */
export async function assertWorkflow(store: GraphStore, key: string): Promise<void> {
  if (!(await store.has('workflows', null, key))) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${key} not found`, { extra: { workflow: key } });
}

/**
 * The handler of a route on one workflow (`{key}` in the path) answered by `view(store, key)`:
 * 404 WORKFLOW_NOT_FOUND first.
 */
export function workflowView<T>(view: (store: GraphStore, workflow: string) => Promise<T>) {
  return async ({ deps, params }: { deps: { store: GraphStore }; params: { key: string } }): Promise<T> => {
    await assertWorkflow(deps.store, params.key);
    return view(deps.store, params.key);
  };
}

/** The list response shape ("batch") for items of `item`. */
export function batchSchema(item: z.ZodType) {
  return z.object({
    items: z.array(item),
    skip: z.number().int(),
    max_limit: z.number().int(),
    count: z.number().int(),
    total_count: z.number().int(),
    has_more: z.boolean(),
  });
}

export interface Batch {
  items: Doc[];
  skip: number;
  max_limit: number;
  count: number;
  total_count: number;
  has_more: boolean;
}

/** Build a batch from a page and the total. */
export function toBatch(items: Doc[], skip: number, total: number): Batch {
  return { items, skip, max_limit: MAX_LIMIT, count: items.length, total_count: total, has_more: skip + items.length < total };
}

/** Parsed list query: paging, sorting and filters. */
export interface ListQuery {
  skip?: number;
  limit?: number;
  sort_by?: string;
  reverse_sort?: boolean;
  [filter: string]: unknown;
}

/**
 * One page of a collection: equality filters from the query, sorted over the whole result by
 * `sort_by` (descending with `reverse_sort`), then skip/limit. Without `sort_by` the order is
 * insertion order and `reverse_sort` is ignored.
 */
export async function listBatch(store: GraphStore, collection: CollectionName, workflow: string | null, query: ListQuery): Promise<Batch> {
  const skip = query.skip ?? 0;
  const limit = query.limit ?? MAX_LIMIT;
  const sort = query.sort_by ? [{ field: query.sort_by, direction: query.reverse_sort ? ('desc' as const) : ('asc' as const) }] : [];
  const found = await store.find(collection, workflow, { where: filtersOf(query), sort, skip, limit, withTotal: true });
  return toBatch(found.items, skip, found.totalCount);
}

/**
 * Delete one document and every edge that touches it, in one transaction: the document as it
 * was, or 404 DOCUMENT_NOT_FOUND naming the collection and key (nothing deleted).
 */
export function removeDocument(store: GraphStore, collection: WorkflowCollectionName | EdgeCollectionName, workflow: string, key: string): Promise<Doc> {
  return store.transaction(async (tx) => {
    const doc = await requireDoc(tx, collection, workflow, key);
    await tx.remove(collection, workflow, key);
    return doc;
  });
}

/** The response of a delete-all. */
export const DeleteAllResponseSchema = z.object({ message: z.string(), count: z.number().int() });

const META = new Set(['_key', '_id', '_rev']);

function withoutMeta(doc: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!META.has(k)) out[k] = v;
  return out;
}

/**
 * PUT semantics for every document: the body's fields are merged over the stored document, the
 * result is validated with the collection's schema (so a bad field is a 400 naming it, and
 * missing fields keep their stored values instead of being reset to defaults), then written with
 * the body's `_rev` as precondition (stale → 409 REVISION_CONFLICT, nothing written).
 * A body `_key` must match the path key.
 */
export async function mergeAndReplace(
  store: GraphStore,
  collection: CollectionName,
  workflow: string | null,
  key: string,
  body: Record<string, unknown>,
  schema: z.ZodType,
  notFound: () => WeftError,
): Promise<Doc> {
  assertSameKey(body._key, key);
  const rev = body._rev;
  if (typeof rev !== 'string' || rev === '') {
    throw new WeftError('VALIDATION_FAILED', 'Invalid request: body field _rev: required (the revision you read)', {
      details: [{ path: ['_rev'], message: 'required', rule: 'required' }],
      extra: { in: 'body' },
    });
  }
  return store.transaction(async (tx) => {
    const current = await tx.get(collection, workflow, key);
    if (!current) throw notFound();
    const merged = { ...withoutMeta(current), ...withoutMeta(body) };
    const parsed = parseOrThrow('body', schema, merged) as Record<string, unknown>;
    return tx.replace(collection, workflow, key, withoutMeta(parsed), { rev });
  });
}

/** The body as sent (the route's schema has already validated it), for merge semantics. */
export function rawBody(ctx: { request: unknown }): Record<string, unknown> {
  return ((ctx.request as { body?: unknown }).body ?? {}) as Record<string, unknown>;
}
