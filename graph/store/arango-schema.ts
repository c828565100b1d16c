/**
 * What the ArangoDB adapter creates on open: collections (shared by all workflows), the named graph
 * `workflow_graph`, and persistent indexes. Everything is "create if missing"; nothing that exists
 * is changed or dropped, except that the graph's edge definitions are widened to the model's.
 *
 * In a cluster, per-workflow collections are created with `shardKeys: ["workflow"]` and
 * `distributeShardsLike` the `jobs` collection, so every document and edge of one workflow lives
 * on the same DB-server and a workflow's transaction stays there. Global collections keep the
 * default `_key` sharding (their documents are keyed by the workflow key anyway).
 */
import type { Database } from 'arangojs/databases';
import type { EdgeDefinitionOptions } from 'arangojs/graphs';
import type { CreateCollectionOptions } from 'arangojs/collections';
import { isArangoError } from 'arangojs/errors';
import { EDGE_COLLECTIONS, EDGE_COLLECTION_NAMES, GLOBAL_COLLECTIONS, WORKFLOW_COLLECTION_NAMES, type CollectionName } from '../model.js';
import { HOT_FIELDS } from './sqlite-schema.js';
import { ARANGO_ERRORS } from './arango-errors.js';
import { SEQ_ATTR, WORKFLOW_ATTR } from './arango-aql.js';

export const GRAPH_NAME = 'workflow_graph';
/** The collection whose shard layout every other per-workflow collection follows in a cluster. */
export const SHARD_PROTOTYPE: CollectionName = 'jobs';

export interface CollectionPlan {
  name: CollectionName;
  type: 'document' | 'edge';
  /** Sharded by the workflow attribute in a cluster. */
  perWorkflow: boolean;
}

export interface IndexPlan {
  collection: CollectionName;
  name: string;
  fields: string[];
}

/** Cluster layout options; ignored on a single server. */
export interface ArangoClusterOptions {
  /** Shards of the prototype collection (others follow it). Default: the server's default. */
  numberOfShards?: number;
  /** Copies of each shard. Default: the server's default. */
  replicationFactor?: number;
}

/** Every collection, the prototype first among the per-workflow ones (distributeShardsLike needs it). */
export function collectionPlan(): CollectionPlan[] {
  const perWorkflow = [SHARD_PROTOTYPE, ...WORKFLOW_COLLECTION_NAMES.filter((n) => n !== SHARD_PROTOTYPE)];
  return [
    ...GLOBAL_COLLECTIONS.map((name): CollectionPlan => ({ name, type: 'document', perWorkflow: false })),
    ...perWorkflow.map((name): CollectionPlan => ({ name, type: 'document', perWorkflow: true })),
    ...EDGE_COLLECTION_NAMES.map((name): CollectionPlan => ({ name, type: 'edge', perWorkflow: true })),
  ];
}

/** The creation options sent for one collection. */
export function collectionOptions(plan: CollectionPlan, cluster: boolean, opts: ArangoClusterOptions = {}): CreateCollectionOptions {
  if (!cluster || !plan.perWorkflow) {
    return cluster && opts.replicationFactor !== undefined ? { replicationFactor: opts.replicationFactor } : {};
  }
  if (plan.name === SHARD_PROTOTYPE) {
    const o: CreateCollectionOptions = { shardKeys: [WORKFLOW_ATTR] };
    if (opts.numberOfShards !== undefined) o.numberOfShards = opts.numberOfShards;
    if (opts.replicationFactor !== undefined) o.replicationFactor = opts.replicationFactor;
    return o;
  }
  return { shardKeys: [WORKFLOW_ATTR], distributeShardsLike: SHARD_PROTOTYPE };
}

/** Extra composite indexes for the engine's hot queries (claims, results by job). */
const EXTRA_INDEXES: Partial<Record<CollectionName, readonly (readonly string[])[]>> = {
  jobs: [
    ['status', 'internal.scheduler_config_id'],
    // The two claim sort orders (gpus_runtime_memory, gpus_memory_runtime) and "does any job fit
    // what is left" by CPUs, as on SQLite.
    ['status', 'internal.num_gpus', 'internal.runtime_seconds', 'internal.memory_bytes'],
    ['status', 'internal.num_gpus', 'internal.memory_bytes', 'internal.runtime_seconds'],
    ['status', 'internal.num_cpus'],
  ],
  results: [['job_key', 'run_id']],
};

/**
 * The job fields the engine queries by. The SQLite adapter keeps them in plain columns
 * (STORED_FIELDS, not HOT_FIELDS), a choice of its own storage; here each gets its index as before.
 */
const JOB_QUERIED_FIELDS = ['status', 'name', 'internal.num_gpus', 'internal.runtime_seconds', 'internal.memory_bytes', 'internal.scheduler_config_id'];

function queriedFields(name: CollectionName): readonly string[] {
  return name === 'jobs' ? JOB_QUERIED_FIELDS : Object.keys(HOT_FIELDS[name] ?? {});
}

/**
 * Persistent indexes: per-workflow collections get (workflow, weft_seq) for listing in insertion
 * order and (workflow, field) for each hot field; global collections get (field) and (weft_seq).
 * Edge collections' `_from`/`_to` lookups use ArangoDB's built-in edge index.
 */
export function indexPlan(): IndexPlan[] {
  const out: IndexPlan[] = [];
  for (const plan of collectionPlan()) {
    const prefix = plan.perWorkflow ? [WORKFLOW_ATTR] : [];
    const add = (fields: readonly string[]): void => {
      const all = [...prefix, ...fields];
      out.push({ collection: plan.name, name: `weft_${all.join('_').replace(/\./g, '_')}`, fields: all });
    };
    add([SEQ_ATTR]);
    for (const field of queriedFields(plan.name)) add([field]);
    for (const fields of EXTRA_INDEXES[plan.name] ?? []) add(fields);
  }
  return out;
}

export function edgeDefinitions(): EdgeDefinitionOptions[] {
  return EDGE_COLLECTION_NAMES.map((name) => ({ collection: name, from: [...EDGE_COLLECTIONS[name].from], to: [...EDGE_COLLECTIONS[name].to] }));
}

function covers(have: readonly string[], want: readonly string[]): boolean {
  return want.every((w) => have.includes(w));
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}

/** True when the server is a cluster coordinator (collections then get shard keys). */
export async function isCluster(db: Database): Promise<boolean> {
  const res = await db.route('/_admin/server/role').get();
  const role = (res.parsedBody as { role?: unknown } | undefined)?.role;
  return role === 'COORDINATOR';
}

/** Create the missing collections, indexes and graph. Safe to run concurrently with another server. */
export async function ensureSchema(db: Database, cluster: boolean, opts: ArangoClusterOptions = {}): Promise<void> {
  const existing = new Set((await db.listCollections()).map((c) => c.name));
  for (const plan of collectionPlan()) {
    if (existing.has(plan.name)) continue;
    try {
      const options = collectionOptions(plan, cluster, opts);
      if (plan.type === 'edge') await db.createEdgeCollection(plan.name, options);
      else await db.createCollection(plan.name, options);
    } catch (err) {
      // Another process created it between our listing and our create: that is fine.
      if (!(isArangoError(err) && err.errorNum === ARANGO_ERRORS.DUPLICATE_NAME)) throw err;
    }
  }
  for (const idx of indexPlan()) {
    await db.collection(idx.collection).ensureIndex({ type: 'persistent', name: idx.name, fields: idx.fields });
  }
  const graph = db.graph(GRAPH_NAME);
  if (!(await graph.exists())) {
    try {
      await db.createGraph(GRAPH_NAME, edgeDefinitions());
      return;
    } catch (err) {
      if (!(isArangoError(err) && err.errorNum === ARANGO_ERRORS.GRAPH_DUPLICATE)) throw err;
    }
  }
  const current = (await graph.get()).edgeDefinitions;
  for (const def of edgeDefinitions()) {
    const have = current.find((d) => d.collection === def.collection);
    const from = def.from as string[];
    const to = def.to as string[];
    if (!have) {
      await graph.addEdgeDefinition(def);
    } else if (!covers(have.from, from) || !covers(have.to, to)) {
      // Widen, never narrow: vertex collections someone added to the definition stay.
      await graph.replaceEdgeDefinition({ collection: def.collection, from: union(have.from, from), to: union(have.to, to) });
    }
  }
}
