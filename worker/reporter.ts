/**
 * Completion reports: complete_job with the Result, then the job's process statistics
 * (job_process_stats plus its `process_used` edge). Reports run in the background, each retried by
 * the client with backoff for the whole retry window, so a server that is away for a while loses
 * none; the worker waits for them all before it exits.
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
import { WeftApiError, type Doc, type ResultBody, type WeftClient } from '../client/index.js';
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
  /** Called after each report settles (the loop claims again: dependants may be ready). */
  onSettled?: () => void;
}

export class Reporter {
  private readonly o: ReporterOptions;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  /** Reports that could not be delivered (the server stayed away past the retry window, or refused). */
  readonly failures: { job: string; error: string }[] = [];

  constructor(o: ReporterOptions) {
    this.o = o;
  }

  get pending(): number {
    return this.inFlight.size;
  }

  report(job: ReportedJob, status: ReportStatus, exit: JobExit, stats: TreeStatsSummary | null): void {
    const p = this.deliver(job, status, exit, stats, job.runId)
      .catch((err: unknown) => {
        this.failures.push({ job: job.key, error: (err as Error).message });
        job.log.error({ err: (err as Error).message }, 'the completion report could not be delivered');
      })
      .finally(() => {
        this.inFlight.delete(p);
        this.o.onSettled?.();
      });
    this.inFlight.add(p);
  }

  /**
   * Wait for every report in flight; after `timeoutMs` (default: no limit) give up on the rest
   * (logged as failures: the lease gives those jobs back to run again).
   */
  async drain(timeoutMs = Infinity): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(timeoutMs)) timer = setTimeout(() => this.abandon(), Math.max(0, timeoutMs));
    try {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop retrying every report in flight now. */
  abandon(): void {
    this.abort.abort(new Error('reports abandoned: the worker is stopping and the server cannot be reached'));
  }

  private async deliver(job: ReportedJob, status: ReportStatus, exit: JobExit, stats: TreeStatsSummary | null, runId: number): Promise<void> {
    const { client, workflow, nodeKey } = this.o;
    const result: ResultBody = {
      job_key: job.key,
      run_id: runId,
      return_code: exit.returnCode,
      exec_time_minutes: exit.seconds / 60,
      completion_time: new Date().toISOString(),
      status,
    };
    if (status === 'done' && result.return_code === 0 && job.outputs && job.outputs.length > 0) {
      result.return_code = await this.recordOutputs(job);
    }
    let rev = job.doc._rev;
    for (let attempt = 0; ; attempt++) {
      try {
        await client.completeJob(workflow, job.key, result.status, rev, runId, nodeKey, result, { signal: this.abort.signal });
        break;
      } catch (err) {
        if (!(err instanceof WeftApiError) || (err.status !== 409 && err.status !== 400) || attempt >= 2) throw err;
        const fresh = await client.get(workflow, 'jobs', job.key, { signal: this.abort.signal });
        const holder = (fresh['internal'] as { compute_node_key?: string } | undefined)?.compute_node_key;
        const ours = holder === undefined || holder === null || holder === '' || holder.slice(holder.lastIndexOf('/') + 1) === nodeKey;
        if (fresh['status'] === 'canceled' && ours) {
          result.status = 'canceled';
        } else if (!(ours && (fresh['status'] === 'submitted' || fresh['status'] === result.status))) {
          job.log.warn({ status: fresh['status'], holder }, 'the job is no longer ours (its lease lapsed and it was given back); dropping its report');
          return;
        }
        rev = fresh._rev;
      }
    }
    job.log.debug({ status: result.status, returnCode: result.return_code }, 'completion reported');
    if (stats) {
      // Statistics are a nicety: a failure here is logged, never retried past the window.
      const doc = await client.add(workflow, 'job_process_stats', { job_key: job.key, run_id: runId, ...stats, timestamp: new Date().toISOString() }, { signal: this.abort.signal });
      await client.addEdge(workflow, 'process_used', job.id, doc._id, {}, { signal: this.abort.signal });
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
