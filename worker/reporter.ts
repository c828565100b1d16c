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
 * Starts (a Weft extension, for jobs the worker claimed ahead): a job taken from the worker's
 * claimed-ahead queue is launched at once and its start (start_job's parameters) waits for the
 * next complete_jobs request, which applies it before its completions (`reportStart`). A start
 * waits at most FLUSH_MS for a completion to ride with; a completion of a job whose start
 * is in the same request carries the claim's revision (the server accepts it), one whose start
 * is out in an earlier request waits for that answer. A refused start (the job was canceled or
 * given back meanwhile) kills the job and its completion is dropped. Starts are idempotent on
 * the server (a job this node already started answers 200), so they retry like completions.
 * The server's support for starts is learned from the first complete_jobs answer (the request
 * carries an empty `starts`; an older Weft refuses the unknown field and is asked again without).
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
import { WeftApiError, type CompleteJobsClaim, type CompleteJobsItem, type CompleteJobsResponse, type Doc, type JobCompletion, type JobStart, type ResultBody, type WeftClient } from '../client/index.js';
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
  /** Its start, when the worker launched it before the server recorded the start (claimed ahead). */
  start?: PendingStart;
}

/** A start the worker owes the server: a claimed-ahead job it has launched. */
export interface PendingStart {
  key: string;
  /** The revision the claim answered (the start's `rev`). */
  claimRev: string;
  runId: number;
  log: Logger;
  /** queued: waiting for a request; sent: in one; done: recorded; refused: the server said no. */
  state: 'queued' | 'sent' | 'done' | 'refused';
  /** The started job (state done). */
  doc?: Doc;
  /** Send without a claim (a first attempt with one failed). */
  alone?: boolean;
  /** Told once: the started job, or null when the server refused the start. */
  onAnswer: (doc: Doc | null) => void;
}

/** How long a start waits for a completion to ride with, or a held batch for more, before it goes. */
const FLUSH_MS = 25;

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
  /**
   * Asked before a batch goes (`pending`: its starts and completions): true holds it for up to
   * FLUSH_MS, to share a request with later ones (the worker has claimed-ahead jobs to run, so
   * nothing waits for this answer). Default: never hold.
   */
  holdBatch?: (pending: number) => boolean;
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
  /** Starts waiting for the next complete_jobs request. */
  private startQueue: PendingStart[] = [];
  /** What is queued goes with the next request (a start without a completion, a held batch). */
  private flushDue = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Whether complete_jobs takes `starts` (unknown until its first answer). */
  private startsKnown: boolean | undefined;
  /** complete_jobs requests sent, and the completions and starts they carried (the worker logs them at its end). */
  readonly stats = { requests: 0, completions: 0, starts: 0 };
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

  /** Whether complete_jobs is known to take starts (the worker claims ahead only then). */
  get startsSupported(): boolean {
    return this.batchMode && this.startsKnown === true;
  }

  /** Starts queued and not sent yet. */
  get startsQueued(): number {
    return this.startQueue.length;
  }

  /**
   * Owe the server the start of a claimed-ahead job the worker has just launched; it goes with
   * the next complete_jobs request. `onAnswer` is told the started job, or null when refused.
   */
  reportStart(job: { key: string; doc: Doc; runId: number; log: Logger }, onAnswer: (doc: Doc | null) => void): PendingStart {
    const s: PendingStart = { key: job.key, claimRev: job.doc._rev, runId: job.runId, log: job.log, state: 'queued', onAnswer };
    this.unsettled++;
    if (!this.batchMode) {
      this.startEachAlone([s]);
      return s;
    }
    this.startQueue.push(s);
    this.armFlush();
    return s;
  }

  /** Send what is queued (starts, held completions) with the next request (the worker wants its claim, or is stopping). */
  flush(): void {
    if (this.startQueue.length === 0 && this.queue.length === 0) return;
    this.flushDue = true;
    this.kick();
  }

  /** What is queued goes within FLUSH_MS. */
  private armFlush(): void {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, FLUSH_MS);
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
      rev: job.start ? '' : job.doc._rev,
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
      this.afterStart(e, () => this.single(e));
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
    if (this.inFlight >= this.maxInFlight) return;
    if (!this.batchMode) {
      const rest = this.queue;
      this.queue = [];
      this.startEachAlone(this.startQueue.splice(0));
      for (const e of rest) this.afterStart(e, () => this.single(e));
      return;
    }
    // A completion whose start is out in another request waits for that answer (it needs the
    // revision the start gave); one whose start was refused is dropped.
    const batch: Entry[] = [];
    const wait: Entry[] = [];
    for (const e of this.queue) {
      const st = e.job.start?.state;
      if (st === 'refused') this.dropRefused(e);
      else if (st === 'sent' || batch.length >= MAX_BATCH) wait.push(e);
      else batch.push(e);
    }
    const pending = batch.length + this.startQueue.length;
    // Hold: starts wait for a completion to ride with; completions wait for more while the
    // worker has jobs queued to run (holdBatch), at most FLUSH_MS.
    if (pending > 0 && !this.flushDue && (batch.length === 0 || this.o.holdBatch?.(pending) === true)) {
      this.queue = [...batch, ...wait];
      this.armFlush();
      return;
    }
    this.queue = wait;
    if (pending === 0) return;
    const starts = this.startQueue.splice(0, MAX_BATCH);
    for (const st of starts) st.state = 'sent';
    if (this.startQueue.length === 0 && this.queue.length === 0) {
      this.flushDue = false;
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    this.inFlight++;
    this.stats.requests++;
    this.stats.completions += batch.length;
    this.stats.starts += starts.length;
    void this.sendBatch(batch, starts);
    this.kick();
  }

  /** A completion of a job whose start the server refused: the job was not ours to run; nothing to report. */
  private dropRefused(e: Entry): void {
    e.job.log.warn('the server refused the start of this job (claimed ahead; canceled or given back meanwhile): its end is not reported');
    this.settle(e);
  }

  /**
   * One complete_jobs request and what its answer means. Everything after the answer runs in one
   * go: the claimed jobs start, the next batch (with the next claim) goes, and only then does the
   * loop wake, so it does not make a claim of its own in between.
   */
  private async sendBatch(batch: Entry[], starts: PendingStart[]): Promise<void> {
    try {
      await this.sendBatchInner(batch, starts);
    } finally {
      this.inFlight--;
      this.kick();
      this.o.onSettled?.();
    }
  }

  private async sendBatchInner(batch: Entry[], starts: PendingStart[]): Promise<void> {
    const { client, workflow, nodeKey } = this.o;
    const claim = batch.some((e) => e.alone) || starts.some((st) => st.alone) ? null : (this.o.claimFor?.() ?? null);
    // The revision to complete against: the start's answer; the claim's when the start goes in this request.
    for (const e of batch) if (e.job.start && e.rev === '') e.rev = e.job.start.state === 'done' ? e.job.start.doc!._rev : e.job.start.claimRev;
    const completions: JobCompletion[] = batch.map((e) => ({
      job_key: e.job.key,
      status: e.result.status as JobCompletion['status'],
      rev: e.rev,
      run_id: e.job.runId,
      compute_node_key: nodeKey,
      result: e.result,
    }));
    const probe = this.startsKnown === undefined;
    const startItems: JobStart[] | undefined =
      starts.length > 0 || probe ? starts.map((st) => ({ job_key: st.key, rev: st.claimRev, run_id: st.runId, compute_node_key: nodeKey })) : undefined;
    let res: CompleteJobsResponse;
    try {
      res = await client.completeJobs(workflow, completions, claim ?? undefined, { signal: this.abort.signal, ...(claim ? { retryMinutes: 0 } : {}) }, startItems);
    } catch (err) {
      if (claim) this.o.onClaimed?.(claim, null);
      // No such route: 404 ROUTE_NOT_FOUND from an older Weft; a Torc server may answer 404/405 without our codes.
      if (err instanceof WeftApiError && (err.code === 'ROUTE_NOT_FOUND' || ((err.status === 404 || err.status === 405 || err.status === 501) && err.code !== 'WORKFLOW_NOT_FOUND'))) {
        this.o.log.info('the server has no complete_jobs: reporting one job at a time');
        this.batchMode = false;
        this.startsKnown = false;
        this.startEachAlone(starts);
        for (const e of batch) this.afterStart(e, () => this.single(e));
      } else if (probe && starts.length === 0 && err instanceof WeftApiError && err.status === 400 && JSON.stringify(err.body ?? '').includes('starts')) {
        // complete_jobs without starts (an older Weft): ask again without the field; nothing was applied.
        this.o.log.info('the server does not take starts in complete_jobs: no claiming ahead');
        this.startsKnown = false;
        this.queue.unshift(...batch);
      } else if (claim && !this.abort.signal.aborted) {
        // The claim went once; the starts and completions go again alone (first in line), with the whole window.
        for (const e of batch) e.alone = true;
        for (const st of starts) {
          st.alone = true;
          st.state = 'queued';
        }
        this.queue.unshift(...batch);
        if (starts.length > 0) {
          this.startQueue.unshift(...starts);
          this.flushDue = true;
        }
      } else if (err instanceof WeftApiError && err.status >= 400 && err.status < 500) {
        // Refused as a whole (a completion the server cannot read): each on its own, for its own answer.
        this.startEachAlone(starts);
        for (const e of batch) this.afterStart(e, () => this.single(e));
      } else {
        for (const st of starts) this.answerStart(st, null, err);
        for (const e of batch) this.settle(e, err);
      }
      return;
    }
    if (probe) this.startsKnown = Array.isArray(res.started);
    if (claim) {
      if (res.claim_error) this.o.log.warn({ code: res.claim_error.code, err: res.claim_error.message }, 'the claim made with the completions was refused');
      this.o.onClaimed?.(claim, res.claimed?.jobs ?? []);
    }
    const items = res.items ?? [];
    const itemOf = (key: string, i: number, list: readonly CompleteJobsItem[]): CompleteJobsItem | undefined => (list[i]?.job_key === key ? list[i] : list.find((x) => x.job_key === key));
    starts.forEach((st, i) => {
      const it = itemOf(st.key, i, res.started ?? []);
      if (it?.status === 200 && it.job) this.answerStart(st, it.job);
      else {
        // A retry of a request whose first attempt was applied: the job is already complete, and its completion here says so.
        const done = batch.findIndex((e) => e.job.key === st.key);
        const c = done >= 0 ? itemOf(st.key, done, items) : undefined;
        if (c?.status === 200 && c.job) this.answerStart(st, c.job);
        else this.answerStart(st, null, new WeftApiError(it?.status ?? 500, { error: it?.error }, `start of ${st.key}: ${it?.status ?? 'no answer'} ${it?.error?.message ?? ''}`));
      }
    });
    batch.forEach((e, i) => {
      if (e.job.start?.state === 'refused') {
        this.dropRefused(e);
        return;
      }
      if (e.job.start?.state === 'done') e.rev = e.job.start.doc!._rev;
      const it = items[i]?.job_key === e.job.key ? items[i] : items.find((x) => x.job_key === e.job.key);
      if (it?.status === 200) this.delivered(e);
      else if (it) this.single(e, new WeftApiError(it.status, { error: it.error }, `complete_jobs ${e.job.key}: ${it.status} ${it.error?.message ?? ''}`));
      else this.single(e);
    });
  }

  /** The server's answer to a start: the job (recorded), or null (refused: the job is killed, its end not reported). */
  private answerStart(st: PendingStart, doc: Doc | null, err?: unknown): void {
    if (doc) {
      st.state = 'done';
      st.doc = doc;
    } else {
      st.state = 'refused';
      st.log.warn({ err: (err as Error | undefined)?.message }, 'the start of a job claimed ahead was not recorded: killing it, leaving the job to the server');
    }
    st.onAnswer(doc);
    this.unsettled--;
    this.wakeWaiters();
  }

  /** Starts on their own (start_job each), when complete_jobs cannot take them. */
  private startEachAlone(starts: readonly PendingStart[]): void {
    const { client, workflow, nodeKey } = this.o;
    for (const st of starts) {
      st.state = 'sent';
      client.startJob(workflow, st.key, st.claimRev, st.runId, nodeKey, { signal: this.abort.signal }).then(
        (doc) => this.answerStart(st, doc),
        async (err: unknown) => {
          // An answer lost on the way: the start was applied if the job is started and ours.
          const fresh = await client.get(workflow, 'jobs', st.key, { signal: this.abort.signal }).catch(() => null);
          const holder = (fresh?.['internal'] as { compute_node_key?: string } | undefined)?.compute_node_key;
          if (fresh && fresh['status'] === 'submitted' && holder === nodeKey) this.answerStart(st, fresh);
          else this.answerStart(st, null, err);
        },
      );
    }
  }

  /** Run `then` once the job's start (if it had one in flight) is answered; a refused start drops the completion. */
  private afterStart(e: Entry, then: () => void): void {
    const st = e.job.start;
    if (!st || st.state === 'done') {
      if (st) e.rev = st.doc!._rev;
      then();
      return;
    }
    if (st.state === 'refused') {
      this.dropRefused(e);
      return;
    }
    const answer = st.onAnswer;
    st.onAnswer = (doc) => {
      answer(doc);
      if (doc) {
        e.rev = doc._rev;
        then();
      } else queueMicrotask(() => this.dropRefused(e));
    };
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
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
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
