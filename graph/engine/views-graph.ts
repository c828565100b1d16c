/**
 * Graph views: DOT text of a workflow's dependency graphs, and joins of a collection with its
 * neighbours along one edge collection.
 */
import { renderDot, DOT_GRAPHS, DOT_GRAPH_NAMES, isDotGraphName, type DotEdge, type DotNode } from '../dot.js';
import { WeftError, notFound } from '../errors.js';
import { EDGE_COLLECTIONS, isEdgeCollection, isWorkflowCollection, type EdgeCollectionName, type WorkflowCollectionName } from '../model.js';
import type { Direction, Doc, EdgeDoc, GraphStore, Where } from '../store/port.js';
import { bulkNeighbors, docsById } from './views-bulk.js';
import type { Page, PageOptions } from './views-paging.js';

/** The label a document shows in views: its name, else its key. */
export function labelOf(doc: Doc): string {
  return typeof doc.name === 'string' && doc.name !== '' ? doc.name : doc._key;
}

/** The document of a workflow (in a document or edge collection), or DOCUMENT_NOT_FOUND naming the collection and key. */
export async function requireDoc(store: GraphStore, collection: WorkflowCollectionName | EdgeCollectionName, workflow: string, key: string): Promise<Doc> {
  const doc = await store.get(collection, workflow, key);
  if (!doc) throw notFound(collection, key);
  return doc;
}

/**
 * `GET /workflows/{key}/dot_graph/{name}`: every job as a node, the edges of the graph's edge
 * collections, and as further nodes only the files / user data that an edge touches.
 * An unknown name is VALIDATION_FAILED listing the supported ones.
 */
export async function dotGraph(store: GraphStore, workflow: string, name: string): Promise<string> {
  if (!isDotGraphName(name)) {
    throw new WeftError('VALIDATION_FAILED', `graph name "${name}" is not supported (supported: ${DOT_GRAPH_NAMES.join(', ')})`, {
      details: [{ path: ['name'], message: `must be one of ${DOT_GRAPH_NAMES.join(', ')}`, rule: 'enum' }],
      extra: { in: 'path' },
    });
  }
  const graph = DOT_GRAPHS[name];
  const jobs = (await store.find('jobs', workflow)).items;
  const nodes: DotNode[] = jobs.map((j) => ({ id: j._id, label: labelOf(j) }));
  const seen = new Set(nodes.map((n) => n.id));
  const edges: DotEdge[] = [];
  const others = new Map<string, string[]>();
  for (const coll of graph.edges) {
    for (const e of await store.edges(coll, workflow, {})) {
      edges.push({ from: e._from, to: e._to, label: coll });
      for (const end of [e._from, e._to]) {
        if (seen.has(end)) continue;
        seen.add(end);
        const c = end.slice(0, end.lastIndexOf('/'));
        const list = others.get(c) ?? [];
        list.push(end.slice(end.lastIndexOf('/') + 1));
        others.set(c, list);
      }
    }
  }
  const otherIds = [...others].flatMap(([coll, keys]) => keys.map((k) => `${coll}/${k}`));
  const docs = await docsById(store, workflow, otherIds);
  for (const id of otherIds) {
    const d = docs.get(id);
    nodes.push({ id, label: d ? labelOf(d) : id.slice(id.lastIndexOf('/') + 1) });
  }
  return renderDot(name, graph.title, nodes, edges);
}

/** One row of a join: the two documents and the edge between them. */
export interface JoinRow {
  from: Doc | null;
  to: Doc | null;
  edge: EdgeDoc;
}

/** Check that `edge` is an edge collection whose `direction` end is `collection`. */
function checkJoin(collection: string, edge: string, direction: Direction): asserts collection is WorkflowCollectionName {
  if (!isWorkflowCollection(collection)) {
    throw new WeftError('UNKNOWN_COLLECTION', `Unknown collection "${collection}"`, {
      details: [{ path: ['collection'], message: `unknown collection "${collection}"`, rule: 'collection' }],
      extra: { collection },
    });
  }
  if (!isEdgeCollection(edge)) {
    throw new WeftError('UNKNOWN_COLLECTION', `Unknown edge collection "${edge}"`, {
      details: [{ path: ['edge'], message: `unknown edge collection "${edge}"`, rule: 'collection' }],
      extra: { collection: edge },
    });
  }
  const ends: readonly string[] = direction === 'outbound' ? EDGE_COLLECTIONS[edge].from : EDGE_COLLECTIONS[edge].to;
  if (!ends.includes(collection)) {
    const side = direction === 'outbound' ? 'start' : 'end';
    throw new WeftError('VALIDATION_FAILED', `${edge} edges never ${side} at ${collection} (they ${side} at ${ends.join(' or ')})`, {
      details: [{ path: ['collection'], message: `must be ${ends.join(' or ')} for ${direction} ${edge} edges`, rule: 'edge_end' }],
      extra: { in: 'path' },
    });
  }
}

/**
 * `POST /workflows/{key}/join_by_{outbound,inbound}_edge/{collection}/{edge}`: the base documents
 * of `collection` matching `filter` (equality on each field), paged by skip/limit **over the base
 * documents**, each joined with its neighbours along `edge`. Outbound rows are
 * `{from: base, to: neighbour, edge}`, inbound rows `{from: neighbour, to: base, edge}`. A base
 * document without edges gives no row; several edges give several rows. `total` counts base
 * documents.
 */
export async function joinByEdge(
  store: GraphStore,
  workflow: string,
  collection: string,
  edge: string,
  direction: Direction,
  filter: Where,
  paging: PageOptions = {},
): Promise<Page<JoinRow>> {
  checkJoin(collection, edge, direction);
  const skip = paging.skip ?? 0;
  const found = await store.find(collection, workflow, { where: filter, skip, ...(paging.limit === undefined ? {} : { limit: paging.limit }), withTotal: true });
  const base = new Map(found.items.map((d) => [d._id, d]));
  const neighbours = await bulkNeighbors(store, workflow, edge as EdgeCollectionName, [...base.keys()], direction);
  // rows in base order, then edge order
  const byBase = new Map<string, JoinRow[]>();
  for (const n of neighbours) {
    const baseId = direction === 'outbound' ? n.edge._from : n.edge._to;
    const b = base.get(baseId) ?? null;
    const row: JoinRow = direction === 'outbound' ? { from: b, to: n.vertex, edge: n.edge } : { from: n.vertex, to: b, edge: n.edge };
    const list = byBase.get(baseId) ?? [];
    list.push(row);
    byBase.set(baseId, list);
  }
  const items = found.items.flatMap((d) => byBase.get(d._id) ?? []);
  return { items, skip, total: found.totalCount };
}
