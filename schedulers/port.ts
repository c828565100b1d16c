/**
 * The scheduler port: how Weft gets compute nodes (workers) from something that grants compute.
 *
 * A `Scheduler` instance stands for one scheduler configuration (this host, one slurm_schedulers
 * document on one cluster, one aws_schedulers document). It asks for allocations, each of which
 * runs one or more `weft worker` processes pointed at the server, follows them, and gives them back.
 *
 * Contract:
 * - `submit(request)` asks for one allocation and returns a handle once the request is accepted
 *   (a Slurm job id, EC2 instance ids, child pids). It does not wait for the allocation to start.
 * - `status(handle)` says where the allocation is now; it never throws for an allocation that has
 *   ended or that the scheduler has forgotten (that is `complete` or `unknown`).
 * - `cancel(handle)` stops the allocation, whatever state it is in; cancelling an ended allocation
 *   is not an error.
 * - Differences between schedulers are in `capabilities` (data), never in `if (kind === ...)`.
 *
 * Not in the port: the scheduled_compute_nodes documents (the callers record them), deciding when
 * to ask for compute (the reconcile loop), the worker's own behaviour.
 */
import type { WorkerOptions } from '../worker/options.js';

/** What a scheduler can do, as data. */
export interface SchedulerCapabilities {
  /** Short name for logs, events and the `scheduler` field of compute nodes: local, slurm, aws. */
  readonly kind: string;
  /** True when `cancel` really stops a queued or running allocation. */
  readonly canCancel: boolean;
  /** True when `status` reports the exit code of a finished allocation. */
  readonly reportsExitCode: boolean;
  /** True when one allocation may span several nodes. */
  readonly multiNode: boolean;
}

/**
 * How a worker is started: the `weft worker` options a scheduler passes on (as flags, see
 * workerArgs). Every field except url and workflow is optional and left to the worker's defaults
 * when absent. A Pick of WorkerOptions, so the two cannot drift apart.
 */
export type WorkerLaunchOptions = Pick<
  WorkerOptions,
  | 'url'
  | 'workflow'
  | 'outputDir'
  | 'maxParallelJobs'
  | 'numCpus'
  | 'memoryGb'
  | 'numGpus'
  | 'timeLimit'
  | 'endTime'
  | 'schedulerConfigId'
  | 'scheduledComputeNodeKey'
  | 'pollIntervalSeconds'
  | 'heartbeatSeconds'
  | 'waitForNewJobsSeconds'
>;

/** The argv after the `weft` binary for one worker: `['worker', '--url', URL, ...]`. */
export function workerArgs(opts: WorkerLaunchOptions): string[] {
  const args = ['worker', '--url', opts.url, '--workflow', opts.workflow];
  const add = (flag: string, value: string | number | undefined): void => {
    if (value !== undefined) args.push(flag, String(value));
  };
  add('--output-dir', opts.outputDir);
  add('--max-parallel-jobs', opts.maxParallelJobs);
  add('--num-cpus', opts.numCpus);
  add('--memory-gb', opts.memoryGb);
  add('--num-gpus', opts.numGpus);
  add('--time-limit', opts.timeLimit);
  add('--end-time', opts.endTime);
  add('--scheduler-config-id', opts.schedulerConfigId);
  add('--scheduled-compute-node-key', opts.scheduledComputeNodeKey);
  add('--poll-interval-seconds', opts.pollIntervalSeconds);
  add('--heartbeat-seconds', opts.heartbeatSeconds);
  add('--wait-for-new-jobs-seconds', opts.waitForNewJobsSeconds);
  return args;
}

/** One request for one allocation. */
export interface SubmitRequest {
  /** The worker every node of the allocation runs. */
  worker: WorkerLaunchOptions;
  /** Human-readable allocation name (Slurm job name, EC2 Name tag). Any characters are safe. */
  name?: string;
  /**
   * Workers to start. Local: the number of processes. Slurm: when > 1 (or `perNode`), one per
   * node through srun. AWS: ignored (one worker per instance).
   */
  workers?: number;
}

/** Where an allocation is. */
export const ALLOCATION_STATES = ['pending', 'running', 'complete', 'failed', 'canceled', 'unknown'] as const;
export type AllocationState = (typeof ALLOCATION_STATES)[number];

/** A submitted allocation. `id` is what the scheduler calls it (Slurm job id, instance id, ...). */
export interface AllocationHandle {
  /** The scheduler kind that made it (capabilities.kind). */
  readonly kind: string;
  readonly id: string;
  /** Name given at submission. */
  readonly name?: string;
}

export interface AllocationStatus {
  state: AllocationState;
  /** Exit code of a finished allocation, when the scheduler reports it (null when unknown). */
  exitCode?: number | null;
  /** The scheduler's own words (Slurm state, EC2 state name, signal). */
  detail?: string;
}

/** Allocations that have ended and will not change again. */
export function isFinalState(state: AllocationState): boolean {
  return state === 'complete' || state === 'failed' || state === 'canceled';
}

export interface Scheduler<H extends AllocationHandle = AllocationHandle> {
  readonly capabilities: SchedulerCapabilities;
  submit(request: SubmitRequest): Promise<H>;
  status(handle: H): Promise<AllocationStatus>;
  cancel(handle: H): Promise<void>;
}
