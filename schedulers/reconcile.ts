/**
 * The reconcile loop: keeps a workflow's allocations in line with what its jobs need.
 *
 * Each pass:
 * 1. A canceled workflow gets every open allocation canceled, and nothing else happens.
 * 2. Open allocation records are brought up to date from their schedulers (ended ones are closed).
 * 3. `prepare_jobs_for_scheduling` marks ready jobs that carry `schedule_compute_nodes` as
 *    `scheduled`.
 * 4. Submit: for each scheduler that ready/scheduled jobs ask for (their schedule_compute_nodes)
 *    and that has no allocation queued or running, submit `num_jobs` allocations (the largest
 *    `num_jobs` among those jobs). A scheduler with an open allocation gets nothing more, so the
 *    same allocation is never submitted twice.
 * 5. Cancel: an allocation still queued (pending in its scheduler) whose scheduler no remaining
 *    job needs (no unfinished job names it in schedule_compute_nodes or is bound to it) is
 *    canceled.
 * Every submission and cancellation posts an event that says why.
 */
import { WORKFLOW_COMPLETE_STATUSES } from '../graph/model.js';
import { ALLOCATION_RECORD_OPEN, type AllocationRecord, type ApiDoc } from './api.js';
import { collectionOf } from '../graph/model.js';
import type { AllocationManager } from './allocations.js';
import type { WorkerLaunchOptions } from './port.js';

/**
 * What the loop remembers between passes: for each scheduler, the waiting jobs it last submitted
 * for. When every allocation since then has ended and exactly the same jobs still wait, another
 * allocation would very likely end the same way (the jobs do not fit it), so none is submitted
 * until the set of waiting jobs changes; an event says so once.
 */
export interface ReconcileState {
  lastSubmittedFor: Map<string, string>;
  reportedStuck: Set<string>;
}

export function createReconcileState(): ReconcileState {
  return { lastSubmittedFor: new Map(), reportedStuck: new Set() };
}

export interface ReconcileOptions {
  manager: AllocationManager;
  /** Memory between passes (the loop keeps one); without it every pass stands alone. */
  state?: ReconcileState;
  /** The worker allocations run (url required). */
  worker: Omit<WorkerLaunchOptions, 'workflow' | 'scheduledComputeNodeKey' | 'schedulerConfigId'>;
  /** Allocation name prefix. Default `weft`. */
  namePrefix?: string;
  /** Progress messages. */
  log?: (message: string) => void;
}

export interface ReconcileResult {
  submitted: AllocationRecord[];
  canceled: AllocationRecord[];
  /** Jobs that prepare_jobs_for_scheduling moved to `scheduled` in this pass. */
  newlyScheduled: number;
  /** True when the workflow is complete (or canceled) and nothing is left open. */
  finished: boolean;
}

interface Demand {
  jobs: string[];
  keys: string[];
  numJobs: number;
  maxParallelJobs?: number;
  startOneWorkerPerNode: boolean;
}

type JobDoc = ApiDoc & {
  name?: string;
  status?: string;
  schedule_compute_nodes?: { scheduler_id?: string; num_jobs?: number; max_parallel_jobs?: number | null; start_one_worker_per_node?: boolean } | null;
  internal?: { scheduler_config_id?: string };
};

function describeJobs(names: string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

/** One pass of the loop. */
export async function reconcileOnce(opts: ReconcileOptions): Promise<ReconcileResult> {
  const { manager } = opts;
  const api = manager.api;
  const log = opts.log ?? (() => undefined);
  const result: ReconcileResult = { submitted: [], canceled: [], newlyScheduled: 0, finished: false };

  const status = await api.workflowStatus();
  if (status.is_canceled) {
    result.canceled = await manager.cancelAll('the workflow was canceled');
    for (const r of result.canceled) log(`canceled allocation ${r.scheduler_id ?? r._key}: the workflow was canceled`);
    result.finished = true;
    return result;
  }

  const views = await manager.list({ open: true });
  const open = views.filter((v) => (ALLOCATION_RECORD_OPEN as readonly string[]).includes(v.record.status));

  const prepared = await api.prepareJobsForScheduling();
  result.newlyScheduled = prepared.schedulers.length;

  const jobs = await api.listAll<JobDoc>('jobs');
  const demand = new Map<string, Demand>();
  const needed = new Set<string>();
  for (const job of jobs) {
    const params = job.schedule_compute_nodes;
    const finished = (WORKFLOW_COMPLETE_STATUSES as readonly string[]).includes(job.status ?? '');
    if (!finished) {
      if (params?.scheduler_id) needed.add(params.scheduler_id);
      if (job.internal?.scheduler_config_id) needed.add(job.internal.scheduler_config_id);
    }
    if (!params?.scheduler_id || (job.status !== 'ready' && job.status !== 'scheduled')) continue;
    const d = demand.get(params.scheduler_id) ?? { jobs: [], keys: [], numJobs: 1, startOneWorkerPerNode: false };
    d.jobs.push(job.name ?? job._key);
    d.keys.push(job._key);
    d.numJobs = Math.max(d.numJobs, params.num_jobs ?? 1);
    if (params.max_parallel_jobs) d.maxParallelJobs = Math.max(d.maxParallelJobs ?? 0, params.max_parallel_jobs);
    d.startOneWorkerPerNode ||= params.start_one_worker_per_node === true;
    demand.set(params.scheduler_id, d);
  }

  for (const [schedulerId, d] of demand) {
    const existing = open.filter((v) => v.record.scheduler_config_id === schedulerId);
    if (existing.length > 0) continue;
    const fingerprint = [...d.keys].sort().join(',');
    if (opts.state?.lastSubmittedFor.get(schedulerId) === fingerprint) {
      if (!opts.state.reportedStuck.has(schedulerId)) {
        opts.state.reportedStuck.add(schedulerId);
        const why = `Not submitting another allocation of ${schedulerId}: the last one ended while the same ${d.jobs.length} job(s) (${describeJobs(d.jobs)}) kept waiting, so they probably do not fit it`;
        await api.event('skip', why, { scheduler_config_id: schedulerId, job_keys: d.keys });
        log(why);
      }
      continue;
    }
    const doc = await api.get(collectionOf(schedulerId) ?? '', schedulerId);
    const reason = `${d.jobs.length} ready job(s) need ${schedulerId} (${describeJobs(d.jobs)}) and it has no allocation queued or running`;
    const records = await manager.scheduleNodes({
      scheduler: doc,
      count: d.numJobs,
      worker: { ...opts.worker, ...(d.maxParallelJobs ? { maxParallelJobs: d.maxParallelJobs } : {}) },
      namePrefix: opts.namePrefix,
      startOneWorkerPerNode: d.startOneWorkerPerNode,
      reason,
    });
    opts.state?.lastSubmittedFor.set(schedulerId, fingerprint);
    opts.state?.reportedStuck.delete(schedulerId);
    result.submitted.push(...records);
    log(`submitted ${records.length} allocation(s) of ${schedulerId}: ${reason}`);
  }

  for (const v of open) {
    const sid = v.record.scheduler_config_id;
    if (needed.has(sid) || v.status.state !== 'pending' || v.record.status !== 'pending') continue;
    const reason = `it is still queued and no remaining job needs ${sid}`;
    result.canceled.push(await manager.cancel(v.record, reason));
    log(`canceled allocation ${v.record.scheduler_id ?? v.record._key}: ${reason}`);
  }

  const stillOpen = open.length - result.canceled.length + result.submitted.length;
  result.finished = needed.size === 0 && stillOpen === 0 && jobs.every((j) => (WORKFLOW_COMPLETE_STATUSES as readonly string[]).includes(j.status ?? ''));
  return result;
}

export interface ReconcileLoopOptions extends ReconcileOptions {
  /** Milliseconds between passes. Default 30 000. */
  intervalMs?: number;
  /** Stops the loop. */
  signal?: AbortSignal;
  /** Return once the workflow is complete and no allocation is open. Default true. */
  stopWhenFinished?: boolean;
  /** Called with each pass's result, or with the error of a failed pass (the loop goes on). */
  onPass?: (result: ReconcileResult | Error) => void;
}

/** Run passes until aborted (or, by default, until the workflow is finished). */
export async function runReconcileLoop(opts: ReconcileLoopOptions): Promise<void> {
  const interval = opts.intervalMs ?? 30_000;
  opts = { ...opts, state: opts.state ?? createReconcileState() };
  while (!opts.signal?.aborted) {
    try {
      const r = await reconcileOnce(opts);
      opts.onPass?.(r);
      if (r.finished && (opts.stopWhenFinished ?? true)) return;
    } catch (err) {
      opts.onPass?.(err as Error);
      opts.log?.(`reconcile pass failed: ${(err as Error).message}`);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, interval);
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
}
