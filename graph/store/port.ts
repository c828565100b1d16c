/**
 * The store port: every operation the engine and the server need from a graph store.
 *
 * Contract (every adapter, checked by tests/conformance/store-conformance.ts):
 * - Documents carry `_key`, `_id` (`<collection>/<_key>`) and `_rev`. `_key` is generated unless
 *   the caller gives one; keys are unique per collection across all workflows. `_rev` changes on
 *   every write. A write with `rev` set fails with REVISION_CONFLICT (409) when it is stale.
 * - Per-workflow collections take the workflow key as their second argument; global collections
 *   (`workflows`, `workflow_configs`, `workflow_statuses`) take `null`. A document of another
 *   workflow is "not found". Returned documents do not show the workflow attribute the adapter
 *   keeps (an adapter that stores it in the document strips it on the way out).
 * - `update` merges the patch into the top level of the document (a nested object in the patch
 *   replaces the stored one whole); `replace` writes the body as the whole document. Neither may
 *   change `_key`, `_id`, `_from`, `_to` or the workflow.
 * - Removing a vertex removes every edge that touches it, in the same transaction.
 * - Field paths in conditions and sorts are dotted (`internal.num_gpus`); `_key`, `_from`, `_to`
 *   are allowed, and `_seq`: a number that grows with each insert into the collection (insertion
 *   order; never shown in documents), for scans paged by ranges of it. A missing field compares as null. Sorting is stable: ties keep insertion order,
 *   and sort happens over the whole result before skip/limit.
 * - `transaction(fn)` runs fn atomically: all of its writes commit or none do, and no other write
 *   interleaves. Inside fn, use the `tx` handle it receives, never the outer store.
 *
 * Not in the port: HTTP concerns, validation of document shapes (the server does it with the
 * model's schemas), job state rules (the engine does them).
 */
import type { CollectionName, EdgeCollectionName } from '../model.js';

/** A stored document. */
export type Doc = { _key: string; _id: string; _rev: string } & Record<string, unknown>;
/** A stored edge. */
export type EdgeDoc = Doc & { _from: string; _to: string };

export type ConditionOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not_in';

/** One filter: `field op value`. For `in`/`not_in` the value is an array. */
export interface Condition {
  field: string;
  op: ConditionOp;
  value: unknown;
}

/** Conditions are ANDed. A plain object is shorthand for equality on each of its fields. */
export type Where = readonly Condition[] | Readonly<Record<string, unknown>>;

export interface SortKey {
  field: string;
  direction?: 'asc' | 'desc';
}

export interface FindOptions {
  where?: Where;
  sort?: readonly SortKey[];
  /** Documents to skip after sorting. Default 0. */
  skip?: number;
  /** At most this many documents. Default: all. */
  limit?: number;
  /** When true, `totalCount` counts every match (ignoring skip/limit). Otherwise it is -1. */
  withTotal?: boolean;
  /**
   * Plan hint, same results either way: read the matches in sort order, from an index on the
   * equality fields and the sort fields, and only check the other conditions on the way; never
   * use a range on some other field and then sort every match. For a small `limit` over many
   * matches (claims: the first few ready jobs in priority order). Adapters may ignore it.
   */
  inSortOrder?: boolean;
}

export interface FindResult {
  items: Doc[];
  /** Matches before skip/limit when `withTotal` was asked for; -1 otherwise. */
  totalCount: number;
}

export interface WriteOptions {
  /** Expected current `_rev`; a mismatch throws REVISION_CONFLICT and writes nothing. */
  rev?: string;
}

export interface EdgeQuery {
  from?: string | readonly string[];
  to?: string | readonly string[];
}

export type Direction = 'outbound' | 'inbound';

export interface Neighbor {
  edge: EdgeDoc;
  /** The document at the other end, or null if it no longer exists. */
  vertex: Doc | null;
}

/** Capabilities as data, so callers never branch on the adapter's name. */
export interface StoreCapabilities {
  /** A short name for logs and the version endpoint. */
  readonly kind: string;
  /** True when the store keeps data after close (false for :memory:). */
  readonly durable: boolean;
}

export interface GraphStore {
  readonly capabilities: StoreCapabilities;

  /** Create what is missing (tables, collections, indexes). Idempotent. */
  open(): Promise<void>;
  close(): Promise<void>;

  insert(collection: CollectionName, workflow: string | null, doc: Record<string, unknown>): Promise<Doc>;
  /** Insert many documents in one go (inside the current transaction, or one of its own). */
  insertMany(collection: CollectionName, workflow: string | null, docs: readonly Record<string, unknown>[]): Promise<Doc[]>;

  get(collection: CollectionName, workflow: string | null, key: string): Promise<Doc | null>;
  /** Whether the document exists in the workflow (as `get(...) !== null`, without reading it into a Doc). */
  has(collection: CollectionName, workflow: string | null, key: string): Promise<boolean>;
  /** The documents for these keys that exist, in the order of `keys`. */
  getMany(collection: CollectionName, workflow: string | null, keys: readonly string[]): Promise<Doc[]>;

  /** Merge `patch` into the top level of the document. Throws DOCUMENT_NOT_FOUND, REVISION_CONFLICT. */
  update(collection: CollectionName, workflow: string | null, key: string, patch: Record<string, unknown>, opts?: WriteOptions): Promise<Doc>;
  /** Apply a patch to many documents (one statement per document, one transaction). Missing keys are skipped. */
  updateMany(collection: CollectionName, workflow: string | null, patches: readonly { key: string; patch: Record<string, unknown> }[]): Promise<number>;
  /** Replace the whole document (metadata kept). Throws DOCUMENT_NOT_FOUND, REVISION_CONFLICT. */
  replace(collection: CollectionName, workflow: string | null, key: string, doc: Record<string, unknown>, opts?: WriteOptions): Promise<Doc>;

  /** Remove one document (and, for a vertex, its edges). Returns false when it did not exist. */
  remove(collection: CollectionName, workflow: string | null, key: string, opts?: WriteOptions): Promise<boolean>;
  /** Remove every matching document of the workflow (and, for vertices, their edges). */
  removeWhere(collection: CollectionName, workflow: string | null, where?: Where): Promise<number>;

  find(collection: CollectionName, workflow: string | null, opts?: FindOptions): Promise<FindResult>;
  count(collection: CollectionName, workflow: string | null, where?: Where): Promise<number>;

  /** Edges of one edge collection by their ends (ids). */
  edges(collection: EdgeCollectionName, workflow: string, query: EdgeQuery): Promise<EdgeDoc[]>;
  /** One hop along an edge collection from each of `ids`, with the vertex at the other end. */
  neighbors(collection: EdgeCollectionName, workflow: string, ids: readonly string[], direction: Direction): Promise<Neighbor[]>;

  /** Remove a workflow and every document and edge in it. */
  removeWorkflow(workflow: string): Promise<void>;

  transaction<T>(fn: (tx: GraphStore) => Promise<T>): Promise<T>;
}
