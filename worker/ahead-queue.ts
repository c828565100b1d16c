/**
 * Claiming ahead (worker.ts): the jobs a worker claimed without starting them (submitted_pending,
 * held by its compute node) while its recent jobs were short, waiting for a free slot; and the
 * run times that decide whether jobs are short.
 */
import type { Doc } from '../client/index.js';
import { internalOf } from './running-job.js';

/** Run times remembered to decide whether jobs are short enough to claim ahead. */
const RUN_TIME_SAMPLES = 20;
/** Fewest run times seen before jobs count as short. */
const MIN_SAMPLES = 4;
/** Jobs are short while the median of the last RUN_TIME_SAMPLES run times is under this (ms). */
export const SHORT_JOB_MS = 50;
/**
 * About how much work (ms of a slot's time) may wait claimed ahead: a queue of k nodes' worth of
 * jobs of median run time m keeps the slots busy for about k * m, so the worker claims ahead
 * floor(AHEAD_WORK_MS / m) nodes' worth (at least 1, at most WEFT_WORKER_CLAIM_AHEAD). Jobs of a
 * few ms get the full depth (fewer, larger report batches); jobs near SHORT_JOB_MS get one node's
 * worth, so none waits long in the queue.
 */
export const AHEAD_WORK_MS = 50;

/** Nodes' worth of jobs to claim ahead for a median run time (ms), capped at `max`. */
export function aheadDepth(medianMs: number, max: number): number {
  return Math.max(1, Math.min(max, Math.floor(AHEAD_WORK_MS / Math.max(medianMs, 1))));
}

/** A job claimed ahead, waiting for room. */
export interface AheadJob {
  job: Doc;
  cpus: number;
  memoryBytes: number;
  gpus: number;
  /** When it was claimed (ms since the epoch). */
  atMs: number;
}

/** What the queued jobs need in all. */
export interface Needs {
  cpus: number;
  memoryBytes: number;
  gpus: number;
}

/** The run times of the last RUN_TIME_SAMPLES jobs that ended `done`. */
export class RecentRunTimes {
  private readonly ms: number[] = [];

  add(ms: number): void {
    this.ms.push(ms);
    if (this.ms.length > RUN_TIME_SAMPLES) this.ms.shift();
  }

  /** The median of the remembered run times (ms), or null before MIN_SAMPLES were seen. */
  get median(): number | null {
    if (this.ms.length < MIN_SAMPLES) return null;
    const sorted = [...this.ms].sort((a, b) => a - b);
    return sorted[sorted.length >> 1]!;
  }

  /** Whether enough jobs were seen and their median run time is under SHORT_JOB_MS. */
  get short(): boolean {
    const m = this.median;
    return m !== null && m < SHORT_JOB_MS;
  }
}

/**
 * Claimed-ahead jobs in claim order. A job that waits longer than `maxWaitMs` is handed to
 * `onExpired` (the worker gives it back); `stop()` returns the rest.
 */
export class AheadQueue {
  private readonly jobs: AheadJob[] = [];
  readonly needs: Needs = { cpus: 0, memoryBytes: 0, gpus: 0 };
  private timer: NodeJS.Timeout | undefined;
  private readonly maxWaitMs: number;
  private readonly onExpired: (job: Doc) => void;

  constructor(maxWaitMs: number, onExpired: (job: Doc) => void) {
    this.maxWaitMs = maxWaitMs;
    this.onExpired = onExpired;
  }

  get size(): number {
    return this.jobs.length;
  }

  /** What a claimed job needs (its requirements, as claims read them). */
  static needsOf(job: Doc): Needs {
    const internal = internalOf(job);
    return { cpus: internal.num_cpus ?? 1, memoryBytes: internal.memory_bytes ?? 0, gpus: internal.num_gpus ?? 0 };
  }

  add(job: Doc): void {
    const a: AheadJob = { job, ...AheadQueue.needsOf(job), atMs: Date.now() };
    this.jobs.push(a);
    this.count(a, 1);
    this.schedule();
  }

  /** Take out every job that `fits` (asked in claim order; it should account for what it accepts). */
  takeFitting(fits: (a: AheadJob) => boolean): AheadJob[] {
    const out: AheadJob[] = [];
    for (let i = 0; i < this.jobs.length; ) {
      const a = this.jobs[i]!;
      if (!fits(a)) {
        i++;
        continue;
      }
      this.jobs.splice(i, 1);
      this.count(a, -1);
      out.push(a);
    }
    return out;
  }

  /** Empty the queue (the worker is stopping): the jobs to give back. */
  stop(): Doc[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    const out = this.jobs.splice(0).map((a) => a.job);
    this.needs.cpus = this.needs.memoryBytes = this.needs.gpus = 0;
    return out;
  }

  private count(a: AheadJob, sign: 1 | -1): void {
    this.needs.cpus += sign * a.cpus;
    this.needs.memoryBytes += sign * a.memoryBytes;
    this.needs.gpus += sign * a.gpus;
  }

  /** A timer for when the oldest job is due. */
  private schedule(): void {
    if (this.timer !== undefined || this.jobs.length === 0) return;
    const oldest = Math.min(...this.jobs.map((a) => a.atMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      for (const a of this.takeFitting((x) => now - x.atMs >= this.maxWaitMs)) this.onExpired(a.job);
      this.schedule();
    }, Math.max(0, oldest + this.maxWaitMs - Date.now()));
  }
}
