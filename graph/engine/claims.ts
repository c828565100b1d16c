/**
 * Handing jobs to workers: `prepare_jobs_for_submission` (pack ready jobs into a worker's
 * resources), `prepare_next_jobs_for_submission` (the next N, no resource checks) and
 * `prepare_jobs_for_scheduling` (ready jobs that ask for an allocation become `scheduled`).
 *
 * Each call is one store transaction: the candidates are read and marked `submitted_pending`
 * inside it, so two workers never receive the same job (the store serialises write
 * transactions). Candidates are `ready` and `scheduled` jobs; the store is asked for them in the
 * sort order, already filtered by the worker's remaining budget, a batch at a time (see
 * claims-packing.ts), so with an index on (workflow, status, sort fields) a claim reads about as
 * many jobs as it hands out, however many are ready.
 *
 * A claimed job records who holds it: `internal.compute_node_key` (when the worker passes its
 * compute node) and `internal.claimed_at` (epoch ms), which the lease loop reads. One event per
 * non-empty claim, in the same transaction.
 *
 * Claim and start (Weft extension): with `startRunId` (and the worker's compute node) each
 * claimed job is also started in the same transaction, exactly as start_job does
 * (lifecycle.ts startJobsInTx): the caller receives `submitted` jobs and skips one request per
 * job. The run_id is checked before anything is claimed; the workflow status and the compute
 * node are read once per claim.
 */
import { WeftError } from '../errors.js';
import { collectionOf, keyOf, type SortMethod } from '../model.js';
import type { Condition, Doc, GraphStore } from '../store/port.js';
import { starterOf, startJobsInTx, workflowRun, type Starter } from './lifecycle.js';
import { PackingBudget, candidateComparator, capacityOf, needsOf, sortKeysOf, timeLimitSeconds } from './claims-packing.js';

/** Statuses a worker may claim from (Torc: `scheduled` jobs are claimable like `ready` ones). */
export const CLAIMABLE_STATUSES = ['ready', 'scheduled'] as const;

/** What a worker sends: its resources (Torc's WorkerResources / compute_nodes_resources). */
export interface WorkerResourcesInput {
  num_cpus: number;
  memory_gb: number;
  num_gpus?: number;
  num_nodes?: number;
  /** ISO-8601 duration of the time the worker has left; null or absent = no limit. */
  time_limit?: string | null;
  /** `_id` of the scheduler config the worker came from; ''/null = none. */
  scheduler_config_id?: string | null;
}

export interface ClaimOptions {
  /** Default gpus_runtime_memory. */
  sortMethod?: SortMethod;
  /** Most jobs returned. Default 100,000. */
  limit?: number;
  /** The claiming worker's compute node key (recorded on each job for the lease loop). */
  computeNodeKey?: string;
  /** Start each claimed job too (as start_job with this run_id); needs computeNodeKey. */
  startRunId?: number;
  /**
   * The caller's existence checks (the route's 404s for the workflow and the compute node), run
   * first inside the claim's transaction, before the worker's time_limit is checked (the order
   * the checks had when the route made them before calling): inside it they read from the
   * transaction group's row cache, which a read made before it misses (the workflow and the node
   * are read by every claim of the group).
   */
  precheck?: (tx: GraphStore) => Promise<void>;
}

export interface ClaimResult {
  jobs: Doc[];
  /** '' when jobs were returned; otherwise why none matched. */
  reason: string;
}

export const CANCELED_REASON = 'The workflow was canceled.';
const DEFAULT_LIMIT = 100_000;
/**
 * Candidates read by the first store query of a claim, doubled each further round up to
 * MAX_BATCH: a typical worker takes a few jobs, so reading (and parsing) hundreds would be waste.
 */
const FIRST_BATCH = 32;
const MAX_BATCH = 1024;
const SCHEDULER_COLLECTIONS = ['local_schedulers', 'slurm_schedulers', 'aws_schedulers'];

/** The ids a worker's scheduler_config_id may be stored as on a job (`slurm_schedulers/12`). */
export function schedulerIdsOf(given: string | null | undefined): string[] {
  if (!given) return [];
  const coll = collectionOf(given);
  const key = keyOf(given);
  const out = new Set<string>([given]);
  if (coll !== undefined) out.add(`${coll}/${key}`);
  else for (const c of SCHEDULER_COLLECTIONS) out.add(`${c}/${key}`);
  return [...out];
}

/**
 * What every claim transaction reads first, once: whether the workflow is canceled and, for a
 * claim that also starts, the node and the run (a run_id that is not the workflow's is 400
 * RUN_ID_MISMATCH before anything is claimed; an unknown node 404).
 */
async function claimContext(tx: GraphStore, workflow: string, computeNodeKey: string | undefined, startRunId: number | undefined): Promise<{ canceled: boolean; starter: Starter | undefined }> {
  const run = await workflowRun(tx, workflow);
  if (startRunId === undefined) return { canceled: run.isCanceled, starter: undefined };
  if (!computeNodeKey) throw missingComputeNode();
  return { canceled: run.isCanceled, starter: await starterOf(tx, workflow, computeNodeKey, startRunId, run.runId) };
}

/** The query gave start_run_id without compute_node_key: the started jobs would have no holder. */
export function missingComputeNode(): WeftError {
  return new WeftError('VALIDATION_FAILED', 'Invalid request: query parameter compute_node_key: is required with start_run_id (a started job needs its compute node)', {
    details: [{ path: ['compute_node_key'], message: 'is required with start_run_id', rule: 'required' }],
    extra: { in: 'query' },
  });
}

/** The `internal` of a job being claimed: the holder and the claim time, the rest kept. */
function claimInternal(job: Doc, computeNodeKey: string | undefined, now: number): Record<string, unknown> {
  const internal: Record<string, unknown> = {};
  // A copy without the old holder (no `delete`: it would turn the object into a slow dictionary).
  if (job.internal !== null && typeof job.internal === 'object') {
    const from = job.internal as Record<string, unknown>;
    // for...in over a JSON-parsed object (own, enumerable keys only): no [key, value] array per field.
    for (const k in from) if (k !== 'compute_node_key') internal[k] = from[k];
  }
  if (computeNodeKey) internal.compute_node_key = computeNodeKey;
  internal.claimed_at = now;
  return internal;
}

/** Mark jobs claimed (`submitted_pending`), or claimed and started (`submitted`) with a starter. */
async function markClaimed(tx: GraphStore, workflow: string, jobs: readonly Doc[], computeNodeKey: string | undefined, starter: Starter | undefined): Promise<Doc[]> {
  const now = Date.now();
  if (starter) return startJobsInTx(tx, workflow, jobs.map((job) => ({ job, internal: claimInternal(job, computeNodeKey, now) })), starter);
  const out: Doc[] = [];
  for (const job of jobs) out.push(await tx.update('jobs', workflow, job._key, { status: 'submitted_pending', internal: claimInternal(job, computeNodeKey, now) }));
  return out;
}

async function claimEvent(tx: GraphStore, workflow: string, jobs: readonly Doc[], computeNodeKey: string | undefined, how: string): Promise<void> {
  if (jobs.length === 0) return;
  const who = computeNodeKey ? `compute node ${computeNodeKey}` : 'a worker';
  await tx.insert('events', workflow, {
    category: 'job',
    type: 'claim',
    message: `${who} claimed ${jobs.length} job(s) (${how})`,
    timestamp: Date.now(),
    ...(computeNodeKey ? { compute_node_key: computeNodeKey } : {}),
    job_keys: jobs.map((j) => j._key),
  });
}

/** Statuses that currently hold at least one job (one indexed probe each). */
async function presentStatuses(tx: GraphStore, workflow: string): Promise<string[]> {
  const out: string[] = [];
  for (const s of CLAIMABLE_STATUSES) {
    if (s === 'ready' || (await tx.find('jobs', workflow, { where: { status: s }, limit: 1 })).items.length > 0) out.push(s);
  }
  return out;
}

/**
 * The fewest CPUs of a claimable job that fits what is left (null when none fits), and the
 * statuses that still hold a fitting job. The sorted read below walks the index in sort order and
 * would pass over every job that does not fit before finding none; this probe asks by CPUs
 * ascending instead (an index range on CPUs), so "nothing fits" costs a lookup, not a scan.
 */
async function probeFitting(tx: GraphStore, workflow: string, statuses: readonly string[], conditions: readonly Condition[]): Promise<{ fewest: number | null; statuses: string[] }> {
  let fewest: number | null = null;
  const fitting: string[] = [];
  for (const s of statuses) {
    const where = [{ field: 'status', op: '==' as const, value: s }, ...conditions];
    const first = (await tx.find('jobs', workflow, { where, sort: [{ field: 'internal.num_cpus' }], limit: 1 })).items[0];
    if (!first) continue;
    fewest = Math.min(fewest ?? Infinity, needsOf(first).cpus);
    fitting.push(s);
  }
  return { fewest, statuses: fitting };
}

/**
 * Candidates for one round: up to `n` per status, filtered by `extra`, merged into sort order.
 * `safe` is how many of the merged list may be processed before a status whose batch was full
 * could have an unread job that sorts earlier.
 */
async function readRound(tx: GraphStore, workflow: string, statuses: readonly string[], extra: readonly Condition[], method: SortMethod, n: number): Promise<{ merged: Doc[]; safe: number; more: boolean }> {
  const sort = sortKeysOf(method);
  const lists: Doc[][] = [];
  for (const s of statuses) {
    lists.push((await tx.find('jobs', workflow, { where: [{ field: 'status', op: '==', value: s }, ...extra], sort, limit: n, inSortOrder: true })).items);
  }
  if (lists.length === 1) {
    const only = lists[0]!;
    return { merged: only, safe: only.length, more: only.length === n };
  }
  const cmp = candidateComparator(method);
  const merged = lists.flat().sort(cmp);
  let safe = merged.length;
  let more = false;
  for (const list of lists) {
    if (list.length < n) continue;
    more = true;
    const last = list[list.length - 1]!;
    safe = Math.min(safe, merged.indexOf(last) + 1);
  }
  return { merged, safe, more };
}

/**
 * The worker's time_limit in seconds (null: none). A bad one is VALIDATION_FAILED naming the
 * field at `path` (complete_jobs checks its claim with this before applying any completion).
 */
export function claimTimeLimit(resources: WorkerResourcesInput, path: (string | number)[] = ['time_limit']): number | null {
  try {
    return timeLimitSeconds(resources.time_limit);
  } catch (err) {
    throw new WeftError('VALIDATION_FAILED', `Invalid request: body field ${path.join('.')}: ${(err as Error).message}`, {
      details: [{ path, message: (err as Error).message, rule: 'iso8601_duration' }],
      extra: { in: 'body' },
      cause: err,
    });
  }
}

/**
 * `POST /workflows/{key}/prepare_jobs_for_submission`: the ready jobs that fit the worker, packed
 * greedily in sort order (claims-packing.ts), marked `submitted_pending`, in one transaction.
 * A bad `time_limit` is VALIDATION_FAILED before anything is read (with `precheck`: after it).
 */
export async function prepareJobsForSubmission(store: GraphStore, workflow: string, resources: WorkerResourcesInput, opts: ClaimOptions = {}): Promise<ClaimResult> {
  const budgetOf = (): PackingBudget => new PackingBudget(capacityOf(resources, claimTimeLimit(resources), schedulerIdsOf(resources.scheduler_config_id)));
  const method = opts.sortMethod ?? 'gpus_runtime_memory';
  const limit = opts.limit ?? DEFAULT_LIMIT;
  const precheck = opts.precheck;
  const checked = precheck ? undefined : budgetOf();

  return store.transaction(async (tx) => {
    let budget: PackingBudget;
    if (precheck) {
      await precheck(tx);
      budget = budgetOf();
    } else budget = checked!;
    const { canceled, starter } = await claimContext(tx, workflow, opts.computeNodeKey, opts.startRunId);
    if (canceled) return { jobs: [], reason: CANCELED_REASON };
    let statuses: readonly string[] = CLAIMABLE_STATUSES;
    const taken: Doc[] = [];
    const claimed: Doc[] = [];
    // Rounds: each reads candidates that fit the remaining budget, so its first one always fits.
    for (let batch = FIRST_BATCH; ; batch = Math.min(batch * 2, MAX_BATCH)) {
      const want = limit - taken.length;
      if (want <= 0) break;
      // The budget's store conditions, for the probe and the read of this round.
      const conditions = budget.conditions();
      const probe = await probeFitting(tx, workflow, statuses, conditions);
      const fewest = probe.fewest;
      if (fewest === null) break;
      statuses = probe.statuses;
      // No more jobs can fit than the CPUs left allow: do not read (and parse) more than that.
      const byCpus = fewest > 0 ? Math.floor(budget.cpus / fewest) : Infinity;
      const { merged, safe, more } = await readRound(tx, workflow, statuses, conditions, method, Math.max(1, Math.min(want, batch, byCpus)));
      const round: Doc[] = [];
      for (let i = 0; i < safe && taken.length + round.length < limit; i++) {
        const job = merged[i]!;
        const needs = needsOf(job);
        if (!budget.fits(needs)) continue;
        budget.take(needs);
        round.push(job);
      }
      // Mark before the next round so the store does not hand the same jobs back.
      claimed.push(...(await markClaimed(tx, workflow, round, opts.computeNodeKey, starter)));
      taken.push(...round);
      // The fitting set only shrinks, so when fewer CPUs are left than the smallest fitting job
      // had, nothing fits any more: stop without asking the store again.
      if (!more || round.length === 0 || budget.cpus < fewest) break;
    }
    await claimEvent(tx, workflow, claimed, opts.computeNodeKey, `sort_method=${method}${starter ? ', started' : ''}`);
    return { jobs: claimed, reason: claimed.length === 0 ? budget.reason(CLAIMABLE_STATUSES) : '' };
  });
}

/**
 * `POST /workflows/{key}/prepare_next_jobs_for_submission?limit=`: the next `limit` claimable
 * jobs in insertion order, no resource checks (workers that run with --max-parallel-jobs).
 * With `startRunId` they are also started (as prepareJobsForSubmission).
 */
export async function prepareNextJobsForSubmission(store: GraphStore, workflow: string, limit = 1, computeNodeKey?: string, startRunId?: number): Promise<Doc[]> {
  return store.transaction(async (tx) => {
    const { canceled, starter } = await claimContext(tx, workflow, computeNodeKey, startRunId);
    if (canceled) return [];
    const statuses = await presentStatuses(tx, workflow);
    const { merged } = await readRound(tx, workflow, statuses, [], 'none', limit);
    const jobs = merged.slice(0, limit);
    const claimed = await markClaimed(tx, workflow, jobs, computeNodeKey, starter);
    await claimEvent(tx, workflow, claimed, computeNodeKey, starter ? 'next, started' : 'next');
    return claimed;
  });
}

/**
 * `POST /workflows/{key}/prepare_jobs_for_scheduling`: every ready job with
 * `schedule_compute_nodes` becomes `scheduled`; its parameters are returned, one entry per job
 * (as Torc does; the caller deduplicates if it wants fewer allocations).
 */
export async function prepareJobsForScheduling(store: GraphStore, workflow: string): Promise<Record<string, unknown>[]> {
  return store.transaction(async (tx) => {
    if ((await workflowRun(tx, workflow)).isCanceled) return [];
    const ready = await tx.find('jobs', workflow, { where: [{ field: 'status', op: '==', value: 'ready' }, { field: 'schedule_compute_nodes', op: '!=', value: null }] });
    const schedulers: Record<string, unknown>[] = [];
    for (const job of ready.items) {
      await tx.update('jobs', workflow, job._key, { status: 'scheduled' });
      schedulers.push(job.schedule_compute_nodes as Record<string, unknown>);
    }
    if (ready.items.length > 0) {
      await tx.insert('events', workflow, {
        category: 'job',
        type: 'scheduled',
        message: `${ready.items.length} ready job(s) asked for compute nodes and became scheduled`,
        timestamp: Date.now(),
        job_keys: ready.items.map((j) => j._key),
      });
    }
    return schedulers;
  });
}
