/** What the worker keeps about each job it runs, and the job fields it reads. */
import type { Logger } from 'pino';
import type { Doc } from '../client/index.js';
import type { JobProcess } from './job-process.js';
import type { PendingStart } from './reporter.js';

/** A job this worker started. */
export interface RunningJob {
  key: string;
  id: string;
  name: string;
  /** The job document as start_job returned it (its `_rev` is what complete_job needs). */
  doc: Doc;
  runId: number;
  outputs: { key: string; path: string }[];
  proc: JobProcess;
  cpus: number;
  memoryBytes: number;
  gpuIds: string[];
  supportsTermination: boolean;
  /** Set when the worker stops the job: the status it reports. */
  stopStatus?: 'canceled' | 'terminated';
  log: Logger;
  exitHandled: Promise<void>;
  /** Its start, when it was claimed ahead and launched before the server recorded the start. */
  start?: PendingStart;
  /** The server refused that start: the job was killed and its end is not reported. */
  startRefused?: boolean;
}

export interface JobInternal {
  num_cpus?: number;
  memory_bytes?: number;
  num_gpus?: number;
  compute_node_key?: string;
}

/** The job's `internal` (requirements copied by initialize_jobs, holder set at claim). */
export function internalOf(job: Doc): JobInternal {
  return (job['internal'] as JobInternal | undefined) ?? {};
}
