/**
 * `POST /workflows/{key}/initialize_jobs`: make a workflow runnable (Torc 0.6.4 section 3), in one
 * transaction. Whole-workflow reads come in pages and are kept as compact arrays over job
 * indices (not documents), and writes go out in pages, so 100,000 jobs take a few seconds and a
 * million fit in a server under 2 GB.
 *
 * Steps:
 * 1. Read jobs and their `requires` targets; compute every job's resources with the strict unit
 *    parsers. A malformed stored value is a 400 naming the jobs and the field, before anything is
 *    written.
 * 2. Clear ephemeral user data (unless told not to).
 * 3. Implicit dependencies become `blocks` edges (as Torc does): producer → consumer of every file
 *    (`produces` → `needs`) and storer → consumer of every user data (`stores` → `consumes`),
 *    unless the edge exists; never a self-edge. Materialising them keeps one dependency graph for
 *    unblocking, downstream views, reversals and DOT graphs.
 * 4. Every job downstream of an `uninitialized` job becomes `uninitialized` (jobs reset out of order).
 * 5. Statuses, in dependency order, for jobs that are not disabled and (without only_uninitialized,
 *    any; with it) uninitialized or blocked:
 *    - a blocker that is `canceled` and the job asks for cancel_on_blocking_job_failure (default
 *      true), the job not done: `canceled` (Torc kept such jobs blocked forever);
 *    - some blocker not `done`/`canceled`: `blocked`, with `internal.num_unfinished_blockers`;
 *    - else `ready` (done stays done).
 *    Then every other job not disabled, blocked, done or canceled becomes `ready`, except that
 *    with only_uninitialized a claimed or running job (submitted_pending, submitted) is left to
 *    its holder (Torc readied it, so a restart could run it twice).
 * 6. `internal` of every job: resources, scheduler_config_id ('' without scheduled_bys), the blocker
 *    count; a job made ready or blocked loses its holder. Only changed jobs are written. One event.
 *
 * run_id is not touched (clients bump it, Torc 0.6.4 section 7.5).
 */
import { WeftError, type ErrorDetail } from '../errors.js';
import type { CollectionName } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { workflowEvent, writeEvents } from './events.js';
import { requirementProblem, resourcesOf, type JobResources } from './job-internal.js';

export interface InitializeOptions {
  /** Only uninitialized (and blocked) jobs are re-evaluated. Default false. */
  onlyUninitialized?: boolean;
  /** Empty the data of ephemeral user data first. Default true. */
  clearEphemeralUserData?: boolean;
}

export interface InitializeSummary {
  jobs: number;
  ready: number;
  blocked: number;
  canceled: number;
  derived_edges: number;
  written: number;
}

/** Documents read or written per store call. */
const PAGE = 50_000;
const HOLDER_FIELDS = ['compute_node_key', 'claimed_at'];

/** Every document of a collection in pages (stable inside the transaction: nothing else writes). */
async function eachPage(tx: GraphStore, collection: CollectionName, workflow: string, fn: (docs: Doc[]) => void): Promise<void> {
  for (let skip = 0; ; skip += PAGE) {
    const { items } = await tx.find(collection, workflow, { skip, limit: PAGE });
    fn(items);
    if (items.length < PAGE) return;
  }
}

/** The jobs as parallel arrays over their index. */
interface JobTable {
  n: number;
  index: Map<string, number>;
  ids: string[];
  keys: string[];
  status: string[];
  original: string[];
  cancelOnFailure: Uint8Array;
  /** JSON of the stored internal ('' when none). */
  internal: string[];
}

async function readJobs(tx: GraphStore, workflow: string): Promise<JobTable> {
  const t: JobTable = { n: 0, index: new Map(), ids: [], keys: [], status: [], original: [], cancelOnFailure: new Uint8Array(0), internal: [] };
  const cancel: number[] = [];
  await eachPage(tx, 'jobs', workflow, (docs) => {
    for (const j of docs) {
      t.index.set(j._id, t.ids.length);
      t.ids.push(j._id);
      t.keys.push(j._key);
      const s = String(j.status ?? 'uninitialized');
      t.status.push(s);
      t.original.push(s);
      cancel.push(j.cancel_on_blocking_job_failure === false ? 0 : 1);
      const v = j.internal;
      t.internal.push(v !== null && typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : '');
    }
  });
  t.n = t.ids.length;
  t.cancelOnFailure = Uint8Array.from(cancel);
  return t;
}

/** Each job's resource requirements index (-1: the defaults); throws VALIDATION_FAILED naming jobs with a malformed one. */
async function resourcesByJob(tx: GraphStore, workflow: string, jobs: JobTable): Promise<{ rrOf: Int32Array; resources: JobResources[]; defaults: JobResources }> {
  const rrs = (await tx.find('resource_requirements', workflow)).items;
  const rrIndex = new Map(rrs.map((r, i) => [r._id, i]));
  const parsed = rrs.map((r) => resourcesOf(r));
  const rrOf = new Int32Array(jobs.n).fill(-1);
  await eachPage(tx, 'requires', workflow, (edges) => {
    for (const e of edges) {
      const j = jobs.index.get(e._from as string);
      const r = rrIndex.get(e._to as string);
      if (j !== undefined && r !== undefined) rrOf[j] = r;
    }
  });
  const bad: number[] = [];
  for (let i = 0; i < jobs.n; i++) if (rrOf[i]! >= 0 && parsed[rrOf[i]!]!.problems.length > 0) bad.push(i);
  if (bad.length > 0) {
    const named = new Map((await tx.getMany('jobs', workflow, bad.slice(0, 100).map((i) => jobs.keys[i]!))).map((d) => [d._key, d]));
    const details: ErrorDetail[] = [];
    for (const i of bad.slice(0, 100)) {
      const job = named.get(jobs.keys[i]!);
      if (!job) continue;
      for (const p of parsed[rrOf[i]!]!.problems) details.push(requirementProblem(job, rrs[rrOf[i]!]!, p));
    }
    const shown = details.slice(0, 3).map((d) => d.message);
    if (bad.length > 3) shown.push(`${bad.length} job(s) in all`);
    throw new WeftError('VALIDATION_FAILED', `Cannot initialize jobs: malformed resource requirements: ${shown.join('; ')}`, { details });
  }
  return { rrOf, resources: parsed.map((p) => p.resources), defaults: resourcesOf(null).resources };
}

/** preds/succs over job indices from the stored `blocks` edges. */
async function readBlocks(tx: GraphStore, workflow: string, jobs: JobTable): Promise<{ preds: number[][]; succs: number[][] }> {
  const preds: number[][] = Array.from({ length: jobs.n }, () => []);
  const succs: number[][] = Array.from({ length: jobs.n }, () => []);
  await eachPage(tx, 'blocks', workflow, (edges) => {
    for (const e of edges) {
      const f = jobs.index.get(e._from as string);
      const t = jobs.index.get(e._to as string);
      if (f === undefined || t === undefined) continue;
      preds[t]!.push(f);
      succs[f]!.push(t);
    }
  });
  return { preds, succs };
}

/**
 * Add `blocks` edges for producer → consumer pairs (over `producing` → `consuming` edges to the
 * same file or user data) that are not linked yet. Updates preds/succs; returns the number added.
 */
async function deriveBlocks(
  tx: GraphStore,
  workflow: string,
  jobs: JobTable,
  graph: { preds: number[][]; succs: number[][] },
  producing: 'produces' | 'stores',
  consuming: 'needs' | 'consumes',
): Promise<number> {
  const producersOf = new Map<string, number[]>();
  await eachPage(tx, producing, workflow, (edges) => {
    for (const e of edges) {
      const p = jobs.index.get(e._from as string);
      if (p === undefined) continue;
      const list = producersOf.get(e._to as string);
      if (list) list.push(p);
      else producersOf.set(e._to as string, [p]);
    }
  });
  if (producersOf.size === 0) return 0;
  const wanted = new Map<number, number[]>(); // consumer → producers
  await eachPage(tx, consuming, workflow, (edges) => {
    for (const e of edges) {
      const c = jobs.index.get(e._from as string);
      const ps = producersOf.get(e._to as string);
      if (c === undefined || !ps) continue;
      let list = wanted.get(c);
      if (!list) wanted.set(c, (list = []));
      for (const p of ps) list.push(p);
    }
  });
  let added = 0;
  let batch: { _from: string; _to: string }[] = [];
  for (const [c, ps] of wanted) {
    const have = new Set(graph.preds[c]);
    for (const p of ps) {
      if (p === c || have.has(p)) continue;
      have.add(p);
      graph.preds[c]!.push(p);
      graph.succs[p]!.push(c);
      batch.push({ _from: jobs.ids[p]!, _to: jobs.ids[c]! });
      if (batch.length >= PAGE) {
        await tx.insertMany('blocks', workflow, batch);
        added += batch.length;
        batch = [];
      }
    }
  }
  if (batch.length > 0) await tx.insertMany('blocks', workflow, batch);
  return added + batch.length;
}

/** Job indices in dependency order (Kahn); jobs on a cycle come last, in insertion order. */
function dependencyOrder(n: number, preds: readonly number[][], succs: readonly number[][]): number[] {
  const indeg = new Int32Array(n);
  for (let i = 0; i < n; i++) indeg[i] = preds[i]!.length;
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) order.push(i);
  for (let k = 0; k < order.length; k++) {
    for (const s of succs[order[k]!]!) if (--indeg[s]! === 0) order.push(s);
  }
  if (order.length < n) {
    const placed = new Uint8Array(n);
    for (const i of order) placed[i] = 1;
    for (let i = 0; i < n; i++) if (!placed[i]) order.push(i);
  }
  return order;
}

/** Steps 4 and 5: the new statuses (in jobs.status) and blocker counts. */
function decideStatuses(jobs: JobTable, preds: readonly number[][], succs: readonly number[][], only: boolean): Int32Array {
  const { n, status } = jobs;
  let frontier: number[] = [];
  for (let i = 0; i < n; i++) if (status[i] === 'uninitialized') frontier.push(i);
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const i of frontier) {
      for (const s of succs[i]!) {
        if (status[s] === 'uninitialized') continue;
        status[s] = 'uninitialized';
        next.push(s);
      }
    }
    frontier = next;
  }
  const unfinished = new Int32Array(n);
  for (const i of dependencyOrder(n, preds, succs)) {
    const s = status[i]!;
    if (s === 'disabled') continue;
    if (only && s !== 'uninitialized' && s !== 'blocked') continue;
    let count = 0;
    let canceledBlocker = false;
    for (const p of preds[i]!) {
      const ps = status[p];
      if (ps === 'done') continue;
      if (ps === 'canceled') canceledBlocker = true;
      else count++;
    }
    if (canceledBlocker && jobs.cancelOnFailure[i] === 1 && s !== 'done') status[i] = 'canceled';
    else if (count > 0) {
      status[i] = 'blocked';
      unfinished[i] = count;
    } else if (s === 'blocked') status[i] = 'ready';
  }
  for (let i = 0; i < n; i++) {
    const s = status[i]!;
    if (s === 'disabled' || s === 'blocked' || s === 'done' || s === 'canceled') continue;
    if (only && (s === 'submitted_pending' || s === 'submitted')) continue;
    status[i] = 'ready';
  }
  return unfinished;
}

export async function initializeJobs(store: GraphStore, workflow: string, opts: InitializeOptions = {}): Promise<InitializeSummary> {
  const only = opts.onlyUninitialized ?? false;
  const clearEphemeral = opts.clearEphemeralUserData ?? true;
  return store.transaction(async (tx) => {
    const wf = await tx.get('workflows', null, workflow);
    if (!wf) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
    if (wf.is_archived === true) throw new WeftError('WORKFLOW_ARCHIVED', `Workflow ${workflow} is archived; it cannot be initialized`);

    const jobs = await readJobs(tx, workflow);
    const res = await resourcesByJob(tx, workflow, jobs); // throws before any write

    if (clearEphemeral) {
      const ephemeral = (await tx.find('user_data', workflow, { where: { is_ephemeral: true } })).items;
      const toClear = ephemeral.filter((u) => u.data !== null && typeof u.data === 'object' && Object.keys(u.data as object).length > 0);
      if (toClear.length > 0) await tx.updateMany('user_data', workflow, toClear.map((u) => ({ key: u._key, patch: { data: {} } })));
    }

    const graph = await readBlocks(tx, workflow, jobs);
    const derived = (await deriveBlocks(tx, workflow, jobs, graph, 'produces', 'needs')) + (await deriveBlocks(tx, workflow, jobs, graph, 'stores', 'consumes'));
    const schedulerOf: (string | undefined)[] = new Array(jobs.n);
    await eachPage(tx, 'scheduled_bys', workflow, (edges) => {
      for (const e of edges) {
        const j = jobs.index.get(e._from as string);
        if (j !== undefined) schedulerOf[j] = e._to as string;
      }
    });
    const unfinished = decideStatuses(jobs, graph.preds, graph.succs, only);

    // 6: internal, written in pages, only where something changed.
    const summary: InitializeSummary = { jobs: jobs.n, ready: 0, blocked: 0, canceled: 0, derived_edges: derived, written: 0 };
    for (let start = 0; start < jobs.n; start += PAGE) {
      const patches: { key: string; patch: Record<string, unknown> }[] = [];
      for (let i = start; i < Math.min(jobs.n, start + PAGE); i++) {
        const s = jobs.status[i]!;
        if (s === 'ready') summary.ready++;
        else if (s === 'blocked') summary.blocked++;
        else if (s === 'canceled') summary.canceled++;
        const old = jobs.internal[i] === '' ? {} : (JSON.parse(jobs.internal[i]!) as Record<string, unknown>);
        const r = res.rrOf[i]! >= 0 ? res.resources[res.rrOf[i]!]! : res.defaults;
        const internal: Record<string, unknown> = { ...old, ...r, scheduler_config_id: schedulerOf[i] ?? '', num_unfinished_blockers: unfinished[i] };
        if (s === 'ready' || s === 'blocked') for (const f of HOLDER_FIELDS) delete internal[f];
        if (s === jobs.original[i] && JSON.stringify(internal) === jobs.internal[i]) continue;
        patches.push({ key: jobs.keys[i]!, patch: { status: s, internal } });
      }
      if (patches.length > 0) await tx.updateMany('jobs', workflow, patches);
      summary.written += patches.length;
    }
    await writeEvents(tx, workflow, [
      workflowEvent(
        workflow,
        'initialize_jobs',
        `Initialized ${jobs.n} job(s): ${summary.ready} ready, ${summary.blocked} blocked, ${summary.canceled} canceled; ${derived} implicit dependencies added`,
        { only_uninitialized: only, clear_ephemeral_user_data: clearEphemeral, ...summary },
      ),
    ]);
    return summary;
  });
}
