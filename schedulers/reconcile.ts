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
import type { AllocationState, WorkerLaunchOptions } from './port.js';

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

/** A job as the loop reads it. */
export type ReconcileJob = Pick<ApiDoc, '_key'> & {
  name?: string;
  status?: string;
  schedule_compute_nodes?: { scheduler_id?: string; num_jobs?: number; max_parallel_jobs?: number | null; start_one_worker_per_node?: boolean } | null;
  internal?: { scheduler_config_id?: string };
};

/** An open allocation as the loop sees it: its record status and its scheduler's state. */
export interface OpenAllocation {
  key: string;
  schedulerConfigId: string;
  recordStatus: string;
  state: AllocationState;
}

export interface PlannedSubmit {
  schedulerConfigId: string;
  count: number;
  maxParallelJobs?: number;
  startOneWorkerPerNode: boolean;
  jobKeys: string[];
  reason: string;
  /** Identifies the waiting jobs (for ReconcileState). */
  fingerprint: string;
}

export interface ReconcilePlan {
  submit: PlannedSubmit[];
  cancel: { key: string; reason: string }[];
  /** Schedulers not resubmitted because the same jobs kept waiting after their last allocation. */
  stuck: { schedulerConfigId: string; reason: string; jobKeys: string[] }[];
  /** Every job finished, no job needs a scheduler, and nothing stays open. */
  finished: boolean;
}

function describeJobs(names: string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

function isFinished(job: ReconcileJob): boolean {
  return (WORKFLOW_COMPLETE_STATUSES as readonly string[]).includes(job.status ?? '');
}

/**
 * The decisions of one pass, from the jobs and the open allocations alone (no I/O): which
 * schedulers get allocations and how many, which queued allocations are canceled, and why.
 */
export function planReconcile(jobs: readonly ReconcileJob[], open: readonly OpenAllocation[], state?: ReconcileState): ReconcilePlan {
  interface Demand { names: string[]; keys: string[]; numJobs: number; maxParallelJobs?: number; startOneWorkerPerNode: boolean }
  const demand = new Map<string, Demand>();
  const needed = new Set<string>();
  for (const job of jobs) {
    const params = job.schedule_compute_nodes;
    if (!isFinished(job)) {
      if (params?.scheduler_id) needed.add(params.scheduler_id);
      if (job.internal?.scheduler_config_id) needed.add(job.internal.scheduler_config_id);
    }
    if (!params?.scheduler_id || (job.status !== 'ready' && job.status !== 'scheduled')) continue;
    const d = demand.get(params.scheduler_id) ?? { names: [], keys: [], numJobs: 1, startOneWorkerPerNode: false };
    d.names.push(job.name ?? job._key);
    d.keys.push(job._key);
    d.numJobs = Math.max(d.numJobs, params.num_jobs ?? 1);
    if (params.max_parallel_jobs) d.maxParallelJobs = Math.max(d.maxParallelJobs ?? 0, params.max_parallel_jobs);
    d.startOneWorkerPerNode ||= params.start_one_worker_per_node === true;
    demand.set(params.scheduler_id, d);
  }

  const plan: ReconcilePlan = { submit: [], cancel: [], stuck: [], finished: false };
  for (const [schedulerConfigId, d] of demand) {
    if (open.some((a) => a.schedulerConfigId === schedulerConfigId)) continue;
    const fingerprint = [...d.keys].sort().join(',');
    if (state?.lastSubmittedFor.get(schedulerConfigId) === fingerprint) {
      plan.stuck.push({
        schedulerConfigId,
        jobKeys: d.keys,
        reason: `Not submitting another allocation of ${schedulerConfigId}: the last one ended while the same ${d.names.length} job(s) (${describeJobs(d.names)}) kept waiting, so they probably do not fit it`,
      });
      continue;
    }
    plan.submit.push({
      schedulerConfigId,
      count: d.numJobs,
      ...(d.maxParallelJobs ? { maxParallelJobs: d.maxParallelJobs } : {}),
      startOneWorkerPerNode: d.startOneWorkerPerNode,
      jobKeys: d.keys,
      fingerprint,
      reason: `${d.names.length} ready job(s) need ${schedulerConfigId} (${describeJobs(d.names)}) and it has no allocation queued or running`,
    });
  }
  for (const a of open) {
    if (needed.has(a.schedulerConfigId) || a.state !== 'pending' || a.recordStatus !== 'pending') continue;
    plan.cancel.push({ key: a.key, reason: `it is still queued and no remaining job needs ${a.schedulerConfigId}` });
  }
  const stillOpen = open.length - plan.cancel.length + plan.submit.length;
  plan.finished = needed.size === 0 && stillOpen === 0 && jobs.every(isFinished);
  return plan;
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
  const jobs = await api.listAll<ApiDoc & ReconcileJob>('jobs');

  const plan = planReconcile(
    jobs,
    open.map((v) => ({ key: v.record._key, schedulerConfigId: v.record.scheduler_config_id, recordStatus: v.record.status, state: v.status.state })),
    opts.state,
  );

  for (const s of plan.stuck) {
    if (opts.state?.reportedStuck.has(s.schedulerConfigId)) continue;
    opts.state?.reportedStuck.add(s.schedulerConfigId);
    await api.event('skip', s.reason, { scheduler_config_id: s.schedulerConfigId, job_keys: s.jobKeys });
    log(s.reason);
  }
  for (const s of plan.submit) {
    const doc = await api.get(collectionOf(s.schedulerConfigId) ?? '', s.schedulerConfigId);
    const records = await manager.scheduleNodes({
      scheduler: doc,
      count: s.count,
      worker: { ...opts.worker, ...(s.maxParallelJobs ? { maxParallelJobs: s.maxParallelJobs } : {}) },
      namePrefix: opts.namePrefix,
      startOneWorkerPerNode: s.startOneWorkerPerNode,
      reason: s.reason,
    });
    opts.state?.lastSubmittedFor.set(s.schedulerConfigId, s.fingerprint);
    opts.state?.reportedStuck.delete(s.schedulerConfigId);
    result.submitted.push(...records);
    log(`submitted ${records.length} allocation(s) of ${s.schedulerConfigId}: ${s.reason}`);
  }
  for (const c of plan.cancel) {
    const view = open.find((v) => v.record._key === c.key);
    if (!view) continue;
    result.canceled.push(await manager.cancel(view.record, c.reason));
    log(`canceled allocation ${view.record.scheduler_id ?? c.key}: ${c.reason}`);
  }
  result.finished = plan.finished;
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
