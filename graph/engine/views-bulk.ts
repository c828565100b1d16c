/**
 * Bulk reads for the whole-workflow views. The port's `neighbors` looks documents up by id; for
 * a large share of a collection one scan is several times faster (measured on SQLite: 20,000
 * lookups by key take about 3x as long as scanning 40,000 documents). These helpers scan when
 * the ids are many and a large share of their collection, and give the same answer either way.
 */
import { isWorkflowCollection, type EdgeCollectionName } from '../model.js';
import type { Direction, Doc, EdgeDoc, GraphStore, Neighbor } from '../store/port.js';

/** From this many ids on, scanning is considered... */
export const SCAN_THRESHOLD = 1000;
/** ...and chosen when the ids are at least this share of their collection. */
const SCAN_SHARE = 1 / 4;

/** Whether reading all of `collection` beats looking up `wanted` of its documents. */
async function worthScanning(store: GraphStore, workflow: string, collection: string, wanted: number): Promise<boolean> {
  if (wanted < SCAN_THRESHOLD || !isWorkflowCollection(collection)) return false;
  return wanted >= SCAN_SHARE * (await store.count(collection, workflow));
}

function collectionAndKey(id: string): [string, string] {
  const i = id.lastIndexOf('/');
  return [id.slice(0, i), id.slice(i + 1)];
}

/** Documents by id (those that exist), scanning a collection when many of its ids are asked for. */
export async function docsById(store: GraphStore, workflow: string, ids: Iterable<string>): Promise<Map<string, Doc>> {
  const byColl = new Map<string, string[]>();
  for (const id of new Set(ids)) {
    const [coll, key] = collectionAndKey(id);
    const list = byColl.get(coll);
    if (list) list.push(key);
    else byColl.set(coll, [key]);
  }
  const out = new Map<string, Doc>();
  for (const [coll, keys] of byColl) {
    if (!isWorkflowCollection(coll)) continue;
    if (await worthScanning(store, workflow, coll, keys.length)) {
      const wanted = new Set(keys);
      for (const d of (await store.find(coll, workflow)).items) if (wanted.has(d._key)) out.set(d._id, d);
    } else {
      for (const d of await store.getMany(coll, workflow, keys)) out.set(d._id, d);
    }
  }
  return out;
}

/** Edges of `edge` whose `direction` end is one of `ids` (outbound: `_from`), in store order. */
export async function bulkEdges(store: GraphStore, workflow: string, edge: EdgeCollectionName, ids: readonly string[], direction: Direction): Promise<EdgeDoc[]> {
  if (ids.length === 0) return [];
  const [coll] = collectionAndKey(ids[0]!);
  if (!(await worthScanning(store, workflow, coll, ids.length))) return store.edges(edge, workflow, direction === 'outbound' ? { from: ids } : { to: ids });
  const wanted = new Set(ids);
  return (await store.edges(edge, workflow, {})).filter((e) => wanted.has(direction === 'outbound' ? e._from : e._to));
}

/** The same answer as `store.neighbors`, read in bulk when `ids` are many. */
export async function bulkNeighbors(store: GraphStore, workflow: string, edge: EdgeCollectionName, ids: readonly string[], direction: Direction): Promise<Neighbor[]> {
  if (ids.length === 0) return [];
  const [coll] = collectionAndKey(ids[0]!);
  if (!(await worthScanning(store, workflow, coll, ids.length))) return store.neighbors(edge, workflow, ids, direction);
  const edges = await bulkEdges(store, workflow, edge, ids, direction);
  const others = await docsById(store, workflow, edges.map((e) => (direction === 'outbound' ? e._to : e._from)));
  return edges.map((e) => ({ edge: e, vertex: others.get(direction === 'outbound' ? e._to : e._from) ?? null }));
}
