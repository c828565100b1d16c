/**
 * Worker options: what `weft worker` takes on its command line, and the fully-defaulted form the
 * worker runs with (durations in ms, with the unit in the name).
 */
import type { Logger } from 'pino';
import type { WeftClient } from '../client/index.js';

export interface WorkerOptions {
  /** Server URL with its base path, e.g. http://127.0.0.1:8080/torc-service. */
  url: string;
  /** Workflow key (or id). */
  workflow: string;
  /** Where job-stdio/ goes (default `output`). */
  outputDir?: string;
  /**
   * Hard cap on jobs running at once. When set, the worker claims with
   * prepare_next_jobs_for_submission, never more than the free slots, whatever the jobs need.
   */
  maxParallelJobs?: number;
  numCpus?: number;
  memoryGb?: number;
  numGpus?: number;
  /** ISO-8601 duration this worker may run for (counted from its start). */
  timeLimit?: string;
  /** Seconds since the epoch at which the allocation ends. */
  endTime?: number;
  /** `_id` of the scheduler config this worker serves (jobs bound to it become claimable). */
  schedulerConfigId?: string;
  /** Key of the scheduled_compute_nodes document of this allocation (recorded on the compute node). */
  scheduledComputeNodeKey?: string;
  /** How often to look for new ready jobs and a canceled workflow while nothing happens here (default 5 s). */
  pollIntervalSeconds?: number;
  /** Heartbeat period of the compute node (default 10 s). */
  heartbeatSeconds?: number;
  /** Idle time before exiting; default the workflow config's compute_node_wait_for_new_jobs_seconds, else 0. */
  waitForNewJobsSeconds?: number;
  /**
   * How long a job that supports termination gets between SIGTERM and SIGKILL (default 30 s).
   * Other jobs get 2 s: they did not say they handle SIGTERM.
   */
  killGraceSeconds?: number;
  /** Process-tree sampling period (default 1 s; 0 turns sampling off). */
  statsIntervalSeconds?: number;
  /** How long reports keep retrying while the server is away; default the workflow config's
   *  compute_node_wait_for_healthy_database_minutes, else 20. */
  retryMinutes?: number;
  /** How long the first contact with the server keeps retrying (default 1 minute). */
  startupRetryMinutes?: number;
  /** Stop the worker (as SIGTERM does). */
  signal?: AbortSignal;
  /** Install SIGTERM/SIGINT handlers that stop the worker (the CLI does). */
  handleSignals?: boolean;
  /** Environment the jobs start from (default process.env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** A client to use instead of one built from `url` (tests). */
  client?: WeftClient;
  /** Prefix jobs with setpriv --pdeathsig KILL (default: when setpriv works here). */
  pdeathsig?: boolean;
  /**
   * How jobs are started: `bash` (default), through one small launcher process (python, perl or
   * bash, the first that runs here; see launcher.ts) that starts them cheaply; `spawn`, each
   * forked by the worker itself (costs the worker a fork of its whole memory per job).
   */
  launcher?: 'bash' | 'spawn';
}

/** Why a worker stopped. */
export type StopReason = 'complete' | 'canceled' | 'idle' | 'end-time' | 'signal';

export interface WorkerSummary {
  reason: StopReason;
  computeNodeKey: string;
  runId: number;
  /** Jobs this worker started, and how each ended. */
  started: number;
  done: number;
  failed: number;
  canceled: number;
  terminated: number;
}

/** Parse a positive-or-zero number flag; throws naming the flag. */
export function numberFlag(name: string, value: string | undefined, opts: { integer?: boolean; min?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const min = opts.min ?? 0;
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (opts.integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be ${opts.integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}
