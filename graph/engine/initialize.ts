/**
 * `POST /workflows/{key}/initialize_jobs`: make a workflow runnable (Torc 0.6.4 section 3), in one
 * transaction, with whole-workflow reads (one scan per collection) and one bulk write, so 100,000
 * jobs take a few seconds.
 *
 * Steps:
 * 1. Read everything; compute every job's resources from its `requires` target (or the defaults)
 *    with the strict unit parsers. A malformed stored value is a 400 naming the jobs and the
 *    field, before anything is written.
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
import type { Doc, EdgeDoc, GraphStore } from '../store/port.js';
import { workflowEvent, writeEvents } from './events.js';
import { internalOf, requirementProblem, resourcesOf, type JobResources } from './job-internal.js';

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

const HOLDER_FIELDS = ['compute_node_key', 'claimed_at'];

function groupBy(edges: readonly EdgeDoc[], end: '_from' | '_to', other: '_from' | '_to'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    const list = out.get(e[end]);
    if (list) list.push(e[other]);
    else out.set(e[end], [e[other]]);
  }
  return out;
}

/** The jobs' resources; throws VALIDATION_FAILED naming each job with a malformed requirement. */
function resourcesByJob(jobs: readonly Doc[], rrs: readonly Doc[], requires: readonly EdgeDoc[]): Map<string, JobResources> {
  const rrById = new Map(rrs.map((r) => [r._id, r]));
  const perRr = new Map<string, ReturnType<typeof resourcesOf>>();
  const rrOfJob = new Map<string, string>();
  for (const e of requires) if (rrById.has(e._to)) rrOfJob.set(e._from, e._to);
  const defaults = resourcesOf(null).resources;
  const out = new Map<string, JobResources>();
  const details: ErrorDetail[] = [];
  for (const job of jobs) {
    const rrId = rrOfJob.get(job._id);
    if (rrId === undefined) {
      out.set(job._id, defaults);
      continue;
    }
    let r = perRr.get(rrId);
    if (!r) {
      r = resourcesOf(rrById.get(rrId)!);
      perRr.set(rrId, r);
    }
    for (const p of r.problems) details.push(requirementProblem(job, rrById.get(rrId)!, p));
    out.set(job._id, r.resources);
  }
  if (details.length > 0) {
    const shown = details.slice(0, 3).map((d) => d.message);
    if (details.length > 3) shown.push(`and ${details.length - 3} more`);
    throw new WeftError('VALIDATION_FAILED', `Cannot initialize jobs: malformed resource requirements: ${shown.join('; ')}`, { details });
  }
  return out;
}

/** New `blocks` edges for producer → consumer pairs not yet linked. */
function derivedEdges(blocks: readonly EdgeDoc[], pairs: [producers: readonly EdgeDoc[], consumers: readonly EdgeDoc[]][]): { _from: string; _to: string }[] {
  const existing = new Set(blocks.map((e) => `${e._from}\n${e._to}`));
  const out: { _from: string; _to: string }[] = [];
  for (const [producers, consumers] of pairs) {
    const producersOf = groupBy(producers, '_to', '_from');
    for (const c of consumers) {
      for (const p of producersOf.get(c._to) ?? []) {
        const k = `${p}\n${c._from}`;
        if (p === c._from || existing.has(k)) continue;
        existing.add(k);
        out.push({ _from: p, _to: c._from });
      }
    }
  }
  return out;
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

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function initializeJobs(store: GraphStore, workflow: string, opts: InitializeOptions = {}): Promise<InitializeSummary> {
  const only = opts.onlyUninitialized ?? false;
  const clearEphemeral = opts.clearEphemeralUserData ?? true;
  return store.transaction(async (tx) => {
    const wf = await tx.get('workflows', null, workflow);
    if (!wf) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
    if (wf.is_archived === true) throw new WeftError('WORKFLOW_ARCHIVED', `Workflow ${workflow} is archived; it cannot be initialized`);

    const [jobs, rrs, blocks, needs, produces, stores, consumes, requires, schedBys] = await Promise.all([
      tx.find('jobs', workflow).then((r) => r.items),
      tx.find('resource_requirements', workflow).then((r) => r.items),
      tx.edges('blocks', workflow, {}),
      tx.edges('needs', workflow, {}),
      tx.edges('produces', workflow, {}),
      tx.edges('stores', workflow, {}),
      tx.edges('consumes', workflow, {}),
      tx.edges('requires', workflow, {}),
      tx.edges('scheduled_bys', workflow, {}),
    ]);
    const resources = resourcesByJob(jobs, rrs, requires);

    if (clearEphemeral) {
      const ephemeral = (await tx.find('user_data', workflow, { where: { is_ephemeral: true } })).items;
      const toClear = ephemeral.filter((u) => u.data !== null && typeof u.data === 'object' && Object.keys(u.data as object).length > 0);
      if (toClear.length > 0) await tx.updateMany('user_data', workflow, toClear.map((u) => ({ key: u._key, patch: { data: {} } })));
    }

    const newEdges = derivedEdges(blocks, [
      [produces, needs],
      [stores, consumes],
    ]);
    if (newEdges.length > 0) await tx.insertMany('blocks', workflow, newEdges);

    // The dependency graph over job indices (arrays, not maps: 100,000 jobs and their edges).
    const n = jobs.length;
    const index = new Map<string, number>();
    for (let i = 0; i < n; i++) index.set(jobs[i]!._id, i);
    const preds: number[][] = Array.from({ length: n }, () => []);
    const succs: number[][] = Array.from({ length: n }, () => []);
    for (const list of [blocks, newEdges]) {
      for (const e of list) {
        const f = index.get(e._from);
        const t = index.get(e._to);
        if (f === undefined || t === undefined) continue;
        preds[t]!.push(f);
        succs[f]!.push(t);
      }
    }
    const status: string[] = jobs.map((j) => String(j.status ?? 'uninitialized'));
    const scheduler = new Map<string, string>();
    for (const e of schedBys) scheduler.set(e._from, e._to);

    // 4: everything downstream of an uninitialized job is uninitialized too.
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

    // 5: statuses in dependency order, so a cancellation reaches every job below it.
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
      if (canceledBlocker && jobs[i]!.cancel_on_blocking_job_failure !== false && s !== 'done') status[i] = 'canceled';
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

    // 6: internal, and the bulk write of what changed.
    const patches: { key: string; patch: Record<string, unknown> }[] = [];
    const summary: InitializeSummary = { jobs: jobs.length, ready: 0, blocked: 0, canceled: 0, derived_edges: newEdges.length, written: 0 };
    for (let i = 0; i < n; i++) {
      const job = jobs[i]!;
      const s = status[i]!;
      if (s === 'ready') summary.ready++;
      else if (s === 'blocked') summary.blocked++;
      else if (s === 'canceled') summary.canceled++;
      const old = internalOf(job);
      const internal: Record<string, unknown> = {
        ...old,
        ...resources.get(job._id)!,
        scheduler_config_id: scheduler.get(job._id) ?? '',
        num_unfinished_blockers: unfinished[i],
      };
      if (s === 'ready' || s === 'blocked') for (const f of HOLDER_FIELDS) delete internal[f];
      if (s === job.status && sameJson(internal, job.internal)) continue;
      patches.push({ key: job._key, patch: { status: s, internal } });
    }
    if (patches.length > 0) await tx.updateMany('jobs', workflow, patches);
    summary.written = patches.length;
    await writeEvents(tx, workflow, [
      workflowEvent(
        workflow,
        'initialize_jobs',
        `Initialized ${jobs.length} job(s): ${summary.ready} ready, ${summary.blocked} blocked, ${summary.canceled} canceled; ${newEdges.length} implicit dependencies added`,
        { only_uninitialized: only, clear_ephemeral_user_data: clearEphemeral, ...summary },
      ),
    ]);
    return summary;
  });
}
