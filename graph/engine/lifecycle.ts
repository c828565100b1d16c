/**
 * Job execution: start_job, complete_job and manage_status_change (Torc 0.6.4 sections 2.3-2.6,
 * 5.1-5.3), each one transaction that validates everything before it writes anything (Torc wrote
 * first and validated after, leaving half-changed jobs behind).
 *
 * Order of checks (the reference's, where it has one):
 * - start_job: job and compute node exist (404); status submitted_pending (400
 *   INVALID_TRANSITION); held by another compute node (409 STATE_CONFLICT); `_rev` (409);
 *   run_id (400 RUN_ID_MISMATCH).
 * - complete_job: body agrees with the path (400); job and node exist (404); an identical retry
 *   (the job already has that status, and a result for that run from that node) answers 200
 *   and changes nothing; held by another node (409: its lease lapsed and the job was given to
 *   someone else); `_rev` (409); the job must be submitted_pending or submitted, or canceled by
 *   a workflow cancel (else 409 STATE_CONFLICT); run_id (400).
 * - manage_status_change: status not a complete one (400); `_rev` (400 STALE_REVISION, as Torc);
 *   same status: nothing happens; claim/start statuses are refused (400); run_id (400).
 *
 * A failure is a result with return_code != 0, or a canceled job (Torc reads the return code
 * whatever the status, so terminated with 0 is a success).
 *
 * Shared by the Weft extensions: startJobsInTx (start_job's writes) is also what a claim with
 * start_run_id runs for the jobs it claims (claims.ts), and complete_jobs applies each of its
 * completions exactly as complete_job does (completeInTx), each in a transaction of its own.
 */
import { WeftError } from '../errors.js';
import { COMPLETE_STATUSES, type JobStatus, type ResultBody } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { jobEvent, keyList, writeEvents, type EngineEvent } from './events.js';
import { computeJobInputHash, computeJobInputHashes } from './input-hash.js';
import { internalOf } from './job-internal.js';
import { propagateCompletion, reverseCompletion } from './lifecycle-unblock.js';

export type CompleteStatus = 'done' | 'canceled' | 'terminated';

async function requireJob(tx: GraphStore, workflow: string, key: string): Promise<Doc> {
  const job = await tx.get('jobs', workflow, key);
  if (job) return job; // a workflow's jobs go with it, so its job proves it exists (one read less per call)
  const wf = await tx.get('workflows', null, workflow);
  if (!wf) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
  throw new WeftError('DOCUMENT_NOT_FOUND', `jobs document ${key} not found`, { extra: { collection: 'jobs', key } });
}

async function requireNode(tx: GraphStore, workflow: string, key: string): Promise<Doc> {
  const node = await tx.get('compute_nodes', workflow, key);
  if (!node) throw new WeftError('DOCUMENT_NOT_FOUND', `compute_nodes document ${key} not found`, { extra: { collection: 'compute_nodes', key } });
  return node;
}

async function workflowRunId(tx: GraphStore, workflow: string): Promise<number> {
  const st = await tx.get('workflow_statuses', null, workflow);
  return typeof st?.run_id === 'number' ? st.run_id : 0;
}

function checkRev(job: Doc, rev: string, code: 'REVISION_CONFLICT' | 'STALE_REVISION' = 'REVISION_CONFLICT'): void {
  if (job._rev !== rev) {
    throw new WeftError(code, `Revision conflict for ${job._id}: _rev=${job._rev} (the request gave ${rev})`, { extra: { id: job._id, _rev: job._rev } });
  }
}

export function checkRunId(workflow: string, current: number, given: number): void {
  if (current !== given) {
    throw new WeftError('RUN_ID_MISMATCH', `Invalid job status change request. run_id=${given} but workflow ${workflow} is at run_id=${current}`, {
      extra: { run_id: given, current_run_id: current },
    });
  }
}

function checkHolder(job: Doc, nodeKey: string): void {
  const holder = internalOf(job).compute_node_key;
  if (typeof holder === 'string' && holder !== '' && holder !== nodeKey) {
    throw new WeftError('STATE_CONFLICT', `Job ${job._key} is held by compute node ${holder}, not ${nodeKey} (a lapsed lease gives the job to another node)`, {
      extra: { job_key: job._key, compute_node_key: holder },
    });
  }
}

function nodeName(node: Doc): string {
  return typeof node.hostname === 'string' ? node.hostname : node._key;
}

/**
 * Who starts the jobs of one transaction: the compute node and the run, read once per
 * transaction (start_job reads them for its one job, a claim-and-start for all it claims).
 */
export interface Starter {
  node: Doc;
  runId: number;
}

/**
 * The run the workflow is at and whether it is canceled (one read of its status document).
 * Missing status: run 0, not canceled.
 */
export async function workflowRun(tx: GraphStore, workflow: string): Promise<{ runId: number; isCanceled: boolean }> {
  const st = await tx.get('workflow_statuses', null, workflow);
  return { runId: typeof st?.run_id === 'number' ? st.run_id : 0, isCanceled: st?.is_canceled === true };
}

/**
 * The node and run for starting jobs, inside a transaction: the node must exist (404) and
 * `runId` must be the workflow's (400 RUN_ID_MISMATCH). `current` is the workflow's run when the
 * caller has read it already.
 */
export async function starterOf(tx: GraphStore, workflow: string, nodeKey: string, runId: number, current?: number): Promise<Starter> {
  const node = await requireNode(tx, workflow, nodeKey);
  checkRunId(workflow, current ?? (await workflowRunId(tx, workflow)), runId);
  return { node, runId };
}

/**
 * start_job's writes, inside the caller's transaction, for jobs its checks passed (start_job's
 * own, or a claim's that just selected them): each job becomes `submitted` with `internal` (plus
 * the holder and its input hash), gets an `executed` edge from the node with the run_id and a
 * start event. One UPDATE per job, whatever its status was. Returns the updated jobs, in order.
 */
export async function startJobsInTx(tx: GraphStore, workflow: string, jobs: readonly { job: Doc; internal: Record<string, unknown> }[], starter: Starter): Promise<Doc[]> {
  if (jobs.length === 0) return [];
  const { node, runId } = starter;
  const hashes = await computeJobInputHashes(tx, workflow, jobs.map((j) => j.job));
  const out: Doc[] = [];
  for (const { job, internal } of jobs) {
    out.push(await tx.update('jobs', workflow, job._key, { status: 'submitted', internal: { ...internal, compute_node_key: node._key, hash: hashes.get(job._id) } }));
  }
  const edges = jobs.map(({ job }) => ({ _from: node._id, _to: job._id, data: { run_id: runId } }));
  if (edges.length === 1) await tx.insert('executed', workflow, edges[0]!);
  else await tx.insertMany('executed', workflow, edges);
  const name = nodeName(node);
  await writeEvents(tx, workflow, jobs.map(({ job }) => jobEvent('start', job, `Started job ${job._key}`, { node_name: name, run_id: runId })));
  return out;
}

/** `PUT .../start_job/{rev}/{run_id}/{compute_node_key}`: submitted_pending → submitted. */
export async function startJob(store: GraphStore, workflow: string, key: string, rev: string, runId: number, nodeKey: string): Promise<Doc> {
  return store.transaction(async (tx) => {
    const job = await requireJob(tx, workflow, key);
    const node = await requireNode(tx, workflow, nodeKey);
    if (job.status !== 'submitted_pending') {
      throw new WeftError('INVALID_TRANSITION', `job status must be submitted_pending: ${String(job.status)}`, { extra: { job_key: job._key, status: job.status } });
    }
    checkHolder(job, node._key);
    checkRev(job, rev);
    checkRunId(workflow, await workflowRunId(tx, workflow), runId);
    return (await startJobsInTx(tx, workflow, [{ job, internal: internalOf(job) }], { node, runId }))[0]!;
  });
}

/** One start of complete_jobs: start_job's path parameters. */
export interface StartRequest {
  key: string;
  rev: string;
  runId: number;
  nodeKey: string;
}

/**
 * The revisions the starts of one complete_jobs gave (job key → the revision the start was
 * given, and the one it left): a completion of the same job in the same request may carry the
 * first (the worker has not seen the second yet).
 */
export type StartedRevs = Map<string, { from: string; to: string }>;

/** What complete_jobs answers for one start: the job, or the error start_job would answer. */
export type StartOutcome = CompletionOutcome;

/**
 * complete_jobs' starts (Weft extension, for jobs a worker claimed ahead and has already
 * launched): each with start_job's rules in a transaction of its own, all queued on the store at
 * once so they share its group commit. A job this node already started (submitted and held by it,
 * in this run) answers 200 and changes nothing, so a retried request is harmless.
 *
 * `ran(failed)` is called once every start's transaction has done its work (before their
 * commit), as completeJobs' is; `revs` is filled inside each transaction.
 */
export async function startJobsEach(store: GraphStore, workflow: string, starts: readonly StartRequest[], revs: StartedRevs, ran?: (failed: boolean) => void): Promise<StartOutcome[]> {
  let left = starts.length;
  let broken = false;
  if (left === 0) ran?.(false);
  const settled = await Promise.allSettled(
    starts.map(async (s) => {
      let once = false;
      const done = (failed: boolean): void => {
        if (once) return;
        once = true;
        broken ||= failed;
        if (--left === 0) ran?.(broken);
      };
      try {
        return await store.transaction(async (tx) => {
          try {
            return await startInTx(tx, workflow, s, revs);
          } catch (err) {
            done(!isRefusal(err));
            throw err;
          } finally {
            done(false);
          }
        });
      } catch (err) {
        done(!isRefusal(err));
        throw err;
      }
    }),
  );
  const out: StartOutcome[] = [];
  for (const r of settled) {
    if (r.status === 'fulfilled') out.push({ job: r.value });
    else if (isRefusal(r.reason)) out.push({ error: r.reason });
    else throw r.reason;
  }
  return out;
}

/** start_job inside a transaction, or nothing for a job this node already started in this run. */
async function startInTx(tx: GraphStore, workflow: string, s: StartRequest, revs: StartedRevs): Promise<Doc> {
  const job = await requireJob(tx, workflow, s.key);
  const node = await requireNode(tx, workflow, s.nodeKey);
  const runId = await workflowRunId(tx, workflow);
  if (job.status === 'submitted' && internalOf(job).compute_node_key === node._key) {
    checkRunId(workflow, runId, s.runId);
    revs.set(job._key, { from: s.rev, to: job._rev });
    return job;
  }
  if (job.status !== 'submitted_pending') {
    throw new WeftError('INVALID_TRANSITION', `job status must be submitted_pending: ${String(job.status)}`, { extra: { job_key: job._key, status: job.status } });
  }
  checkHolder(job, node._key);
  checkRev(job, s.rev);
  checkRunId(workflow, runId, s.runId);
  const out = (await startJobsInTx(tx, workflow, [{ job, internal: internalOf(job) }], { node, runId: s.runId }))[0]!;
  revs.set(job._key, { from: s.rev, to: out._rev });
  return out;
}

export type { ResultBody };

function checkResultBody(key: string, status: CompleteStatus, runId: number, result: ResultBody): void {
  const details: { path: string[]; message: string; rule: string }[] = [];
  const jobKey = result.job_key.slice(result.job_key.lastIndexOf('/') + 1);
  if (jobKey !== key) details.push({ path: ['job_key'], message: `is ${result.job_key}, but the path names job ${key}`, rule: 'path_mismatch' });
  if (result.run_id !== runId) details.push({ path: ['run_id'], message: `is ${result.run_id}, but the path gives run_id ${runId}`, rule: 'path_mismatch' });
  if (result.status !== status) details.push({ path: ['status'], message: `is ${result.status}, but the path gives status ${status}`, rule: 'path_mismatch' });
  if (details.length > 0) {
    throw new WeftError('VALIDATION_FAILED', `Invalid request: body ${details.map((d) => `field ${d.path.join('.')}: ${d.message}`).join('; ')}`, { details, extra: { in: 'body' } });
  }
}

/** One completion: complete_job's path parameters and its Result body. */
export interface Completion {
  key: string;
  status: CompleteStatus;
  rev: string;
  runId: number;
  nodeKey: string;
  result: ResultBody;
}

/** `POST .../complete_job/{status}/{rev}/{run_id}/{compute_node_key}` with a Result body. */
export async function completeJob(
  store: GraphStore,
  workflow: string,
  key: string,
  status: CompleteStatus,
  rev: string,
  runId: number,
  nodeKey: string,
  result: ResultBody,
): Promise<Doc> {
  return completeOne(store, workflow, { key, status, rev, runId, nodeKey, result });
}

/** A refusal of the request (4xx), as opposed to a failure of the server or the store. */
function isRefusal(err: unknown): err is WeftError {
  return err instanceof WeftError && err.httpStatus < 500;
}

/**
 * One completion in a transaction of its own (complete_job, and each item of complete_jobs).
 * `ran` is called once the transaction's work is over, before its commit: with true when it
 * failed other than by a refusal (4xx).
 */
async function completeOne(store: GraphStore, workflow: string, c: Completion, ran?: (failed: boolean) => void, revs?: StartedRevs): Promise<Doc> {
  let failed = false;
  try {
    checkResultBody(c.key, c.status, c.runId, c.result);
    return await store.transaction(async (tx) => {
      try {
        return await completeInTx(tx, workflow, c, revs);
      } catch (err) {
        failed = !isRefusal(err);
        throw err;
      } finally {
        ran?.(failed);
      }
    });
  } catch (err) {
    failed = !isRefusal(err);
    throw err;
  } finally {
    ran?.(failed);
  }
}

/** What complete_jobs answers for one completion: the job, or the error complete_job would answer. */
export type CompletionOutcome = { job: Doc; error?: undefined } | { job?: undefined; error: WeftError };

/**
 * Completions run this many at a time: they are queued on the store together, so they share its
 * group commit, without a thousand waiters woken at the end of every transaction.
 */
const COMPLETIONS_AT_ONCE = 64;

/**
 * `POST /workflows/{key}/complete_jobs` (Weft extension): each completion with complete_job's
 * rules, in a transaction of its own (a stale one does not undo the others), answered in order.
 * A 4xx of one completion is its outcome; anything else (a store failure) is thrown once every
 * completion has finished.
 *
 * `ran(failed)` is called once, when every completion's transaction has done its work (before
 * the last commit): a transaction started then is queued behind them (the stores run
 * transactions one at a time), so it sees what they changed and shares their commit. `failed`
 * says one of them failed other than by a refusal; the whole call will then throw.
 */
export async function completeJobs(
  store: GraphStore,
  workflow: string,
  completions: readonly Completion[],
  ran?: (failed: boolean) => void,
  revs?: StartedRevs,
): Promise<CompletionOutcome[]> {
  let left = completions.length;
  let broken = false;
  if (left === 0) ran?.(false);
  const out: CompletionOutcome[] = [];
  let failure: unknown;
  for (let i = 0; i < completions.length; i += COMPLETIONS_AT_ONCE) {
    const settled = await Promise.allSettled(
      completions.slice(i, i + COMPLETIONS_AT_ONCE).map((c) => {
        let once = false;
        return completeOne(store, workflow, c, (failed) => {
          if (once) return;
          once = true;
          broken ||= failed;
          if (--left === 0) ran?.(broken);
        }, revs);
      }),
    );
    for (const s of settled) {
      if (s.status === 'fulfilled') out.push({ job: s.value });
      else if (isRefusal(s.reason)) out.push({ error: s.reason });
      else failure ??= s.reason;
    }
    if (failure !== undefined) {
      if (left > 0) ran?.(true); // the later chunks will not run
      throw failure;
    }
  }
  return out;
}

/** complete_job inside a transaction: every check, then the writes and the unblocking. */
async function completeInTx(tx: GraphStore, workflow: string, c: Completion, revs?: StartedRevs): Promise<Doc> {
  const { key, status, runId, nodeKey, result } = c;
  const job = await requireJob(tx, workflow, key);
  const node = await requireNode(tx, workflow, nodeKey);
  const existing = (await tx.find('results', workflow, { where: { job_key: job._key, run_id: runId } })).items;
  const mine = existing.filter((r) => r.compute_node_key === node._key);
  // A retried report (the worker lost our answer): same status, result already recorded.
  if (job.status === status && mine.some((r) => r.status === status && r.return_code === result.return_code)) return job;
  checkHolder(job, node._key);
  // Started in the same request: the completion may carry the revision the start was given.
  const started = revs?.get(job._key);
  checkRev(job, started && started.from === c.rev ? started.to : c.rev);
  const from = String(job.status);
  const finishing = from === 'submitted_pending' || from === 'submitted';
  // A canceled job may be reported only by the node that held it when the workflow was canceled.
  const heldByReporter = internalOf(job).compute_node_key === node._key;
  if (!finishing && !(from === 'canceled' && heldByReporter)) {
    throw new WeftError('STATE_CONFLICT', `Job ${job._key} is ${from}; only a submitted_pending or submitted job (or one canceled by a workflow cancel while this node held it) can be completed`, {
      extra: { job_key: job._key, status: from },
    });
  }
  checkRunId(workflow, await workflowRunId(tx, workflow), runId);

  // One result per (job, run): a rerun in the same run overwrites the earlier one.
  const body: Record<string, unknown> = { ...result, job_key: job._key, compute_node_key: node._key };
  delete body._key;
  delete body._id;
  delete body._rev;
  const previous = existing[existing.length - 1];
  let resultDoc: Doc;
  if (previous) {
    resultDoc = await tx.replace('results', workflow, previous._key, body);
    // a result posted through the generic API has no edge yet
    if ((await tx.edges('returned', workflow, { from: job._id, to: resultDoc._id })).length === 0) {
      await tx.insert('returned', workflow, { _from: job._id, _to: resultDoc._id });
    }
  } else {
    resultDoc = await tx.insert('results', workflow, body);
    await tx.insert('returned', workflow, { _from: job._id, _to: resultDoc._id });
  }
  const internal = internalOf(job);
  if (typeof internal.hash !== 'string' || internal.hash === '') internal.hash = await computeJobInputHash(tx, workflow, job);
  const updated = await tx.update('jobs', workflow, job._key, { status, internal });
  const failed = result.return_code !== 0 || status === 'canceled';
  const extra: Record<string, unknown> = { node_name: nodeName(node), run_id: runId, status, return_code: result.return_code };
  // Only an unfinished → finished change unblocks (a job already canceled by a workflow cancel has no waiting dependants).
  if (finishing) {
    const p = await propagateCompletion(tx, workflow, updated, status, failed);
    if (p.ready.length > 0) Object.assign(extra, keyList('ready_job_keys', p.ready));
    if (p.canceled.length > 0) Object.assign(extra, keyList('canceled_job_keys', p.canceled));
  }
  await writeEvents(tx, workflow, [jobEvent('complete', job, `Completed job ${job._key} with status=${status} return_code=${result.return_code}`, extra)]);
  return updated;
}

/** Statuses a job enters only through a claim or start_job (they need a holder). */
const CLAIM_STATUSES: readonly string[] = ['submitted_pending', 'submitted'];

/** `PUT .../manage_status_change/{status}/{rev}/{run_id}`: set an unfinished status, with the reversal. */
export async function manageStatusChange(store: GraphStore, workflow: string, key: string, status: JobStatus, rev: string, runId: number): Promise<Doc> {
  if (COMPLETE_STATUSES.includes(status)) {
    throw new WeftError('INVALID_TRANSITION', `Invalid status ${status} for manage_status_change: Post complete_job status instead.`, { extra: { status } });
  }
  return store.transaction(async (tx) => {
    const job = await requireJob(tx, workflow, key);
    checkRev(job, rev, 'STALE_REVISION');
    const from = String(job.status);
    if (from === status) return job;
    if (CLAIM_STATUSES.includes(status)) {
      throw new WeftError('INVALID_TRANSITION', `A job becomes ${status} only through prepare_jobs_for_submission and start_job, not manage_status_change`, {
        extra: { job_key: job._key, status: from, requested: status },
      });
    }
    checkRunId(workflow, await workflowRunId(tx, workflow), runId);
    const patch: Record<string, unknown> = { status };
    if (status === 'uninitialized' || status === 'ready' || status === 'blocked') {
      const internal = internalOf(job);
      delete internal.compute_node_key;
      delete internal.claimed_at;
      patch.internal = internal;
    }
    const updated = await tx.update('jobs', workflow, job._key, patch);
    const events: EngineEvent[] = [];
    const extra: Record<string, unknown> = { old_status: from, status, run_id: runId };
    if (COMPLETE_STATUSES.includes(from as JobStatus)) {
      const reset = await reverseCompletion(tx, workflow, [job._id]);
      if (reset.length > 0) Object.assign(extra, keyList('reset_job_keys', reset));
    }
    events.push(jobEvent('status_change', job, `Changed the status of job ${job._key} from ${from} to ${status}`, extra));
    await writeEvents(tx, workflow, events);
    return updated;
  });
}
