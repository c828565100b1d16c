/**
 * Completion reports: the Result of each job that ended, then its process statistics
 * (job_process_stats plus its `process_used` edge). Reports run in the background, retried by
 * the client with backoff for the whole retry window, so a server that is away for a while loses
 * none; the worker waits for them all before it exits.
 *
 * Batching (a Weft extension): completions go in one `complete_jobs` request at a time. A job that
 * ends while one is in flight waits for the next, which takes every completion queued by then: no
 * timer, no added latency, and under load one request carries several. The request can carry the
 * worker's next claim (`claimFor`): the server applies the completions, then claims (and starts)
 * jobs for the freed resources, those just unblocked included, so a job's lifecycle costs one
 * request. The claim goes with the first attempt only (a retried claim whose answer was lost would
 * hold jobs twice): when that attempt fails, the same completions are sent again alone, for the
 * whole retry window (a retried identical completion is a no-op on the server). A server without
 * complete_jobs (an older Weft: 404 ROUTE_NOT_FOUND; Torc: a 404 or 405) gets one complete_job per job
 * instead.
 *
 * Before reporting a success, the job's declared output files are checked: a missing one turns the
 * return code into 1 (the job did not do what it said), and each present one gets its st_mtime
 * recorded (change detection reads it on restart).
 *
 * A 409/400 means the job changed under us. We read it again:
 * - canceled by a workflow cancel while it ran: report it `canceled` with the fresh `_rev`;
 * - still ours (submitted, or already in the status we report): report again with the fresh `_rev`
 *   (the server answers an identical retried report with 200 and changes nothing);
 * - anything else (the lease lapsed and the job was given back): drop the report, the job belongs
 *   to someone else now, and say so in the log.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { WeftApiError, type CompleteJobsClaim, type CompleteJobsResponse, type Doc, type JobCompletion, type ResultBody, type WeftClient } from '../client/index.js';
import type { JobExit } from './job-process.js';
import type { TreeStatsSummary } from './process-tree.js';

export type ReportStatus = 'done' | 'canceled' | 'terminated';

/** What a report needs to know about the job. */
export interface ReportedJob {
  key: string;
  id: string;
  doc: Doc;
  /** The run the job ran in. */
  runId: number;
  log: Logger;
  /** Files the job declares it produces (checked and their st_mtime recorded after a success). */
  outputs?: readonly { key: string; path: string }[];
}

export interface ReporterOptions {
  client: WeftClient;
  workflow: string;
  nodeKey: string;
  log: Logger;
  /** Called after reports settle (the loop claims again: dependants may be ready). */
  onSettled?: () => void;
  /**
   * Asked as a batch of completions is about to go: the claim to send with it, or null for none.
   * A claim returned here is answered exactly once through `onClaimed`.
   */
  claimFor?: () => CompleteJobsClaim | null;
  /** The answer to a claim from `claimFor` (the same object): the jobs (maybe none), or null when it was not made. */
  onClaimed?: (claim: CompleteJobsClaim, jobs: Doc[] | null) => void;
  /** How many complete_jobs requests may be in flight at once (default 1). */
  maxInFlight?: number;
  /** Use complete_jobs (default true); false: one complete_job per job. */
  batch?: boolean;
}

/** The most completions in one complete_jobs request (the server's limit). */
const MAX_BATCH = 1_000;

interface Entry {
  job: ReportedJob;
  result: ResultBody;
  /** The `_rev` to complete against (the start's answer; a fresh one after a conflict). */
  rev: string;
  stats: TreeStatsSummary | null;
  /** Send without a claim (a first attempt with one failed). */
  alone?: boolean;
}

export class Reporter {
  private readonly o: ReporterOptions;
  private readonly abort = new AbortController();
  private batchMode: boolean;
  /** Completions waiting for the next complete_jobs request. */
  private queue: Entry[] = [];
  /** complete_jobs requests in flight. */
  private inFlight = 0;
  private readonly maxInFlight: number;
  private kickScheduled = false;
  /** Reports not settled yet (queued, in a request, or in their per-job follow-up). */
  private unsettled = 0;
  private waiters: (() => void)[] = [];
  /** Reports that could not be delivered (the server stayed away past the retry window, or refused). */
  readonly failures: { job: string; error: string }[] = [];

  constructor(o: ReporterOptions) {
    this.o = o;
    this.batchMode = o.batch ?? true;
    this.maxInFlight = Math.max(1, o.maxInFlight ?? 1);
  }

  get pending(): number {
    return this.unsettled;
  }

  /**
   * Whether a complete_jobs request is in flight or about to go: its successor will carry the
   * claim for the resources freed meanwhile, so the worker need not claim on its own.
   */
  get claimFollows(): boolean {
    return this.batchMode && (this.inFlight > 0 || this.queue.length > 0);
  }

  report(job: ReportedJob, status: ReportStatus, exit: JobExit, stats: TreeStatsSummary | null): void {
    this.unsettled++;
    const entry: Entry = {
      job,
      result: {
        job_key: job.key,
        run_id: job.runId,
        return_code: exit.returnCode,
        exec_time_minutes: exit.seconds / 60,
        completion_time: new Date().toISOString(),
        status,
      },
      rev: job.doc._rev,
      stats,
    };
    if (status === 'done' && entry.result.return_code === 0 && job.outputs && job.outputs.length > 0) {
      this.recordOutputs(job).then(
        (rc) => {
          entry.result.return_code = rc;
          this.enqueue(entry);
        },
        (err: unknown) => this.settle(entry, err),
      );
    } else this.enqueue(entry);
  }

  /**
   * Wait for every report; after `timeoutMs` (default: no limit) give up on the rest
   * (logged as failures: the lease gives those jobs back to run again).
   */
  async drain(timeoutMs = Infinity): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(timeoutMs)) timer = setTimeout(() => this.abandon(), Math.max(0, timeoutMs));
    try {
      while (this.unsettled > 0) await new Promise<void>((r) => this.waiters.push(r));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop retrying every report in flight now. */
  abandon(): void {
    this.abort.abort(new Error('reports abandoned: the worker is stopping and the server cannot be reached'));
  }

  private enqueue(e: Entry): void {
    if (!this.batchMode) {
      this.single(e);
      return;
    }
    this.queue.push(e);
    // After the callbacks of this turn: jobs whose ends were read together go in one request.
    if (!this.kickScheduled) {
      this.kickScheduled = true;
      process.nextTick(() => {
        this.kickScheduled = false;
        this.kick();
      });
    }
  }

  /** Send what is queued, unless a request is in flight (its end sends the rest). */
  private kick(): void {
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    if (!this.batchMode) {
      const rest = this.queue;
      this.queue = [];
      for (const e of rest) this.single(e);
      return;
    }
    const batch = this.queue.splice(0, MAX_BATCH);
    this.inFlight++;
    void this.sendBatch(batch);
    this.kick();
  }

  /**
   * One complete_jobs request and what its answer means. Everything after the answer runs in one
   * go: the claimed jobs start, the next batch (with the next claim) goes, and only then does the
   * loop wake, so it does not make a claim of its own in between.
   */
  private async sendBatch(batch: Entry[]): Promise<void> {
    try {
      await this.sendBatchInner(batch);
    } finally {
      this.inFlight--;
      this.kick();
      this.o.onSettled?.();
    }
  }

  private async sendBatchInner(batch: Entry[]): Promise<void> {
    const { client, workflow, nodeKey } = this.o;
    const claim = batch.some((e) => e.alone) ? null : (this.o.claimFor?.() ?? null);
    const completions: JobCompletion[] = batch.map((e) => ({
      job_key: e.job.key,
      status: e.result.status as JobCompletion['status'],
      rev: e.rev,
      run_id: e.job.runId,
      compute_node_key: nodeKey,
      result: e.result,
    }));
    let res: CompleteJobsResponse;
    try {
      res = await client.completeJobs(workflow, completions, claim ?? undefined, { signal: this.abort.signal, ...(claim ? { retryMinutes: 0 } : {}) });
    } catch (err) {
      if (claim) this.o.onClaimed?.(claim, null);
      // No such route: 404 ROUTE_NOT_FOUND from an older Weft; a Torc server may answer 404/405 without our codes.
      if (err instanceof WeftApiError && (err.code === 'ROUTE_NOT_FOUND' || ((err.status === 404 || err.status === 405 || err.status === 501) && err.code !== 'WORKFLOW_NOT_FOUND'))) {
        this.o.log.info('the server has no complete_jobs: reporting one job at a time');
        this.batchMode = false;
        for (const e of batch) this.single(e);
      } else if (claim && !this.abort.signal.aborted) {
        // The claim went once; the completions go again alone (first in line), with the whole window.
        for (const e of batch) e.alone = true;
        this.queue.unshift(...batch);
      } else if (err instanceof WeftApiError && err.status >= 400 && err.status < 500) {
        // Refused as a whole (a completion the server cannot read): each on its own, for its own answer.
        for (const e of batch) this.single(e);
      } else for (const e of batch) this.settle(e, err);
      return;
    }
    if (claim) {
      if (res.claim_error) this.o.log.warn({ code: res.claim_error.code, err: res.claim_error.message }, 'the claim made with the completions was refused');
      this.o.onClaimed?.(claim, res.claimed?.jobs ?? []);
    }
    const items = res.items ?? [];
    batch.forEach((e, i) => {
      const it = items[i]?.job_key === e.job.key ? items[i] : items.find((x) => x.job_key === e.job.key);
      if (it?.status === 200) this.delivered(e);
      else if (it) this.single(e, new WeftApiError(it.status, { error: it.error }, `complete_jobs ${e.job.key}: ${it.status} ${it.error?.message ?? ''}`));
      else this.single(e);
    });
  }

  /** Deliver one completion on its own (complete_job), resolving conflicts; then its statistics. */
  private single(e: Entry, firstError?: unknown): void {
    this.completeOne(e, firstError).then(
      (ok) => (ok ? this.delivered(e) : this.settle(e)),
      (err: unknown) => this.settle(e, err),
    );
  }

  /** Its completion landed: post its statistics (if any), then it is settled. */
  private delivered(e: Entry): void {
    e.job.log.debug({ status: e.result.status, returnCode: e.result.return_code }, 'completion reported');
    if (!e.stats) {
      this.settle(e);
      return;
    }
    const { client, workflow } = this.o;
    const stats = e.stats;
    (async () => {
      const doc = await client.add(workflow, 'job_process_stats', { job_key: e.job.key, run_id: e.job.runId, ...stats, timestamp: new Date().toISOString() }, { signal: this.abort.signal });
      await client.addEdge(workflow, 'process_used', e.job.id, doc._id, {}, { signal: this.abort.signal });
    })().then(
      () => this.settle(e),
      (err: unknown) => this.settle(e, err),
    );
  }

  private settle(e: Entry, err?: unknown): void {
    if (err !== undefined) {
      this.failures.push({ job: e.job.key, error: (err as Error).message });
      e.job.log.error({ err: (err as Error).message }, 'the completion report could not be delivered');
    }
    this.unsettled--;
    if (this.inFlight === 0) this.o.onSettled?.();
    if (this.unsettled === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    }
  }

  /**
   * complete_job for one job; on a 409/400 read the job again and decide (see the top of this
   * file). Resolves true when the completion landed, false when it was dropped (not ours now).
   */
  private async completeOne(e: Entry, firstError?: unknown): Promise<boolean> {
    const { client, workflow, nodeKey } = this.o;
    const { job, result } = e;
    let err = firstError;
    for (let attempt = 0; ; attempt++) {
      if (err === undefined) {
        try {
          await client.completeJob(workflow, job.key, result.status, e.rev, job.runId, nodeKey, result, { signal: this.abort.signal });
          return true;
        } catch (x) {
          err = x;
        }
      }
      if (!(err instanceof WeftApiError) || (err.status !== 409 && err.status !== 400) || attempt >= 2) throw err;
      const fresh = await client.get(workflow, 'jobs', job.key, { signal: this.abort.signal });
      const holder = (fresh['internal'] as { compute_node_key?: string } | undefined)?.compute_node_key;
      const ours = holder === undefined || holder === null || holder === '' || holder.slice(holder.lastIndexOf('/') + 1) === nodeKey;
      if (fresh['status'] === 'canceled' && ours) {
        result.status = 'canceled';
      } else if (!(ours && (fresh['status'] === 'submitted' || fresh['status'] === result.status))) {
        job.log.warn({ status: fresh['status'], holder }, 'the job is no longer ours (its lease lapsed and it was given back); dropping its report');
        return false;
      }
      e.rev = fresh._rev;
      err = undefined;
    }
  }

  /** Check the outputs exist and record their mtimes; returns the return code to report (0, or 1 when one is missing). */
  private async recordOutputs(job: ReportedJob): Promise<number> {
    const { client, workflow } = this.o;
    let rc = 0;
    for (const f of job.outputs ?? []) {
      let mtime: number;
      try {
        mtime = (await stat(f.path)).mtimeMs / 1000;
      } catch {
        job.log.error({ file: f.path }, 'the job exited 0 but did not create its declared output file: recorded as failed (return code 1)');
        rc = 1;
        continue;
      }
      for (let attempt = 0; attempt < 3; attempt++) {
        const doc = await client.get(workflow, 'files', f.key, { signal: this.abort.signal });
        try {
          await client.put(workflow, 'files', f.key, { ...doc, st_mtime: mtime }, { signal: this.abort.signal });
          break;
        } catch (err) {
          if (!(err instanceof WeftApiError && err.status === 409)) throw err;
        }
      }
    }
    return rc;
  }
}
