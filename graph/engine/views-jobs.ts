/**
 * Job views: lookups of jobs by status, by needed file and downstream of a job; the files, user
 * data, results, process statistics and resource requirements around one job. Every list pages
 * with skip/limit over the whole result.
 */
import { WeftError, notFound } from '../errors.js';
import { DEFAULT_RESOURCE_REQUIREMENTS, UserDataSchema, type EdgeCollectionName } from '../model.js';
import type { Doc, EdgeDoc, GraphStore } from '../store/port.js';
import { requireDoc } from './views-graph.js';
import { pageOf, type Page, type PageOptions } from './views-paging.js';

/** Every job key of the workflow, in insertion order. */
export async function jobKeys(store: GraphStore, workflow: string): Promise<string[]> {
  return (await store.find('jobs', workflow)).items.map((j) => j._key);
}

/** Jobs with `status`, paged. */
export async function findJobsByStatus(store: GraphStore, workflow: string, status: string, paging: PageOptions = {}): Promise<Page> {
  const skip = paging.skip ?? 0;
  const found = await store.find('jobs', workflow, { where: { status }, skip, ...(paging.limit === undefined ? {} : { limit: paging.limit }), withTotal: true });
  return { items: found.items, skip, total: found.totalCount };
}

/** The documents at the other end of `edge` from (or to) one vertex, distinct, in edge order. */
async function linked(store: GraphStore, workflow: string, edge: EdgeCollectionName, id: string, direction: 'outbound' | 'inbound'): Promise<Doc[]> {
  const seen = new Set<string>();
  const out: Doc[] = [];
  for (const n of await store.neighbors(edge, workflow, [id], direction)) {
    if (n.vertex === null || seen.has(n.vertex._id)) continue;
    seen.add(n.vertex._id);
    out.push(n.vertex);
  }
  return out;
}

/** Jobs that need the file `fileKey` (404 when the file does not exist), paged. */
export async function findJobsByNeedsFile(store: GraphStore, workflow: string, fileKey: string, paging: PageOptions = {}): Promise<Page> {
  const file = await requireDoc(store, 'files', workflow, fileKey);
  return pageOf(await linked(store, workflow, 'needs', file._id, 'inbound'), paging);
}

/** Files the job produces (404 when the job does not exist), paged. */
export async function filesProducedByJob(store: GraphStore, workflow: string, jobKey: string, paging: PageOptions = {}): Promise<Page> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  return pageOf(await linked(store, workflow, 'produces', job._id, 'outbound'), paging);
}

/**
 * The ids of every job transitively downstream of `ids` along `blocks` (breadth first, each job
 * once, the start jobs excluded unless reached again from another start job).
 */
export async function downstreamJobIds(store: GraphStore, workflow: string, ids: readonly string[]): Promise<string[]> {
  const seen = new Set(ids);
  const order: string[] = [];
  let frontier = [...ids];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const e of await store.edges('blocks', workflow, { from: frontier })) {
      if (seen.has(e._to)) continue;
      seen.add(e._to);
      order.push(e._to);
      next.push(e._to);
    }
    frontier = next;
  }
  return order;
}

/** Jobs transitively downstream of one job (404 when it does not exist), breadth first, paged. */
export async function downstreamJobs(store: GraphStore, workflow: string, jobKey: string, paging: PageOptions = {}): Promise<Page> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  const ids = await downstreamJobIds(store, workflow, [job._id]);
  const page = pageOf(ids, paging);
  const docs = await store.getMany('jobs', workflow, page.items.map((id) => id.slice(id.lastIndexOf('/') + 1)));
  return { items: docs, skip: page.skip, total: page.total };
}

/** User data the job stores (`stores`) or consumes (`consumes`), paged. */
export async function jobUserData(store: GraphStore, workflow: string, jobKey: string, edge: 'stores' | 'consumes', paging: PageOptions = {}): Promise<Page> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  return pageOf(await linked(store, workflow, edge, job._id, 'outbound'), paging);
}

/** Store a user data document and a `stores` edge from the job, in one transaction. */
export async function addJobUserData(store: GraphStore, workflow: string, jobKey: string, body: Record<string, unknown>): Promise<Doc> {
  const parsed = UserDataSchema.safeParse(body);
  if (!parsed.success) {
    throw new WeftError('VALIDATION_FAILED', `Invalid user data: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, {
      details: parsed.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message, rule: i.code })),
      extra: { in: 'body' },
    });
  }
  const { _id: _i, _rev: _r, ...doc } = parsed.data;
  return store.transaction(async (tx) => {
    const job = await requireDoc(tx, 'jobs', workflow, jobKey);
    const ud = await tx.insert('user_data', workflow, doc);
    await tx.insert('stores', workflow, { _from: job._id, _to: ud._id });
    return ud;
  });
}

/** The workflow's current run_id (0 before the first start). */
export async function currentRunId(store: GraphStore, workflow: string): Promise<number> {
  const status = await store.get('workflow_statuses', null, workflow);
  return typeof status?.run_id === 'number' ? status.run_id : 0;
}

/** Every result of a job: reached by `returned` edges, plus results that name it by job_key. */
async function resultsOfJob(store: GraphStore, workflow: string, job: Doc): Promise<Doc[]> {
  const viaEdges = await linked(store, workflow, 'returned', job._id, 'outbound');
  const byKey = (await store.find('results', workflow, { where: { job_key: job._key } })).items;
  const all = new Map<string, Doc>();
  for (const r of [...viaEdges, ...byKey]) all.set(r._id, r);
  return [...all.values()].sort((a, b) => Number(a._key) - Number(b._key) || (a._key < b._key ? -1 : a._key > b._key ? 1 : 0));
}

/** The job's result for the current run (the latest one if several), or DOCUMENT_NOT_FOUND. */
export async function latestJobResult(store: GraphStore, workflow: string, jobKey: string): Promise<Doc> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  const run = await currentRunId(store, workflow);
  const current = (await resultsOfJob(store, workflow, job)).filter((r) => r.run_id === run);
  const last = current[current.length - 1];
  if (!last) {
    throw new WeftError('DOCUMENT_NOT_FOUND', `Job ${job._key} has no result for the current run (run_id ${run})`, {
      extra: { collection: 'results', job_key: job._key, run_id: run },
    });
  }
  return last;
}

/** The job's process statistics (via `process_used`, or naming it by job_key), sorted by run_id. */
export async function jobProcessStats(store: GraphStore, workflow: string, jobKey: string): Promise<Doc[]> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  const viaEdges = await linked(store, workflow, 'process_used', job._id, 'outbound');
  const byKey = (await store.find('job_process_stats', workflow, { where: { job_key: job._key } })).items;
  const all = new Map<string, Doc>();
  for (const s of [...viaEdges, ...byKey]) all.set(s._id, s);
  const list = [...all.values()];
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  return list.map((d, i) => ({ d, i })).sort((a, b) => num(a.d.run_id) - num(b.d.run_id) || a.i - b.i).map((x) => x.d);
}

/** The job's resource requirements, or the defaults (named `default`) when it has none. */
export async function jobResourceRequirements(store: GraphStore, workflow: string, jobKey: string): Promise<Record<string, unknown>> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  const [rr] = await linked(store, workflow, 'requires', job._id, 'outbound');
  return rr ?? { ...DEFAULT_RESOURCE_REQUIREMENTS };
}

/** Point the job at resource requirements `rrKey` (replacing any `requires` edge); returns the new edge. */
export async function setJobResourceRequirements(store: GraphStore, workflow: string, jobKey: string, rrKey: string): Promise<EdgeDoc> {
  return store.transaction(async (tx) => {
    const job = await requireDoc(tx, 'jobs', workflow, jobKey);
    const rr = await tx.get('resource_requirements', workflow, rrKey);
    if (!rr) throw notFound('resource_requirements', rrKey);
    for (const e of await tx.edges('requires', workflow, { from: job._id })) await tx.remove('requires', workflow, e._key);
    return (await tx.insert('requires', workflow, { _from: job._id, _to: rr._id })) as EdgeDoc;
  });
}
