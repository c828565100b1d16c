/**
 * Workflow-wide status operations (Torc 0.6.4 section 7), each one transaction with its event:
 * cancel, reset_status, reset_job_status, is_complete.
 *
 * Differences from Torc, on purpose:
 * - cancel cancels every job that has not finished (Torc left ready and blocked jobs alone, so
 *   a canceled workflow never completed), and a canceled workflow is complete (as v0.10).
 * - reset_job_status(failed_only) resets jobs whose latest result has a non-zero return code
 *   (any run, not only the current one, so a failure survives a restart), and canceled and
 *   terminated jobs (a job canceled by a workflow cancel never ran and has no result), each
 *   with everything downstream of it.
 */
import { WeftError } from '../errors.js';
import { WORKFLOW_COMPLETE_STATUSES, type JobStatus } from '../model.js';
import type { Condition, Doc, GraphStore } from '../store/port.js';
import { keyList, workflowEvent, writeEvents } from './events.js';
import { reverseCompletion } from './lifecycle-unblock.js';

async function requireStatus(tx: GraphStore, workflow: string, opts: { notArchived?: string } = {}): Promise<Doc> {
  const wf = await tx.get('workflows', null, workflow);
  if (!wf) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
  if (opts.notArchived && wf.is_archived === true) throw new WeftError('WORKFLOW_ARCHIVED', `Workflow ${workflow} is archived; ${opts.notArchived}`);
  const st = await tx.get('workflow_statuses', null, workflow);
  if (!st) throw new WeftError('DOCUMENT_NOT_FOUND', `Workflow ${workflow} has no status document`, { extra: { collection: 'workflow_statuses', key: workflow } });
  return st;
}

const PAGE = 50_000;

/**
 * Set `status` on every job matching `where` (which the new status must not match), a page at a
 * time so a million jobs are never in memory at once. Returns their keys.
 */
async function setStatusWhere(tx: GraphStore, workflow: string, where: Condition[], status: string): Promise<string[]> {
  const keys: string[] = [];
  for (;;) {
    const page = (await tx.find('jobs', workflow, { where, limit: PAGE })).items;
    if (page.length === 0) return keys;
    await tx.updateMany('jobs', workflow, page.map((j) => ({ key: j._key, patch: { status } })));
    for (const j of page) keys.push(j._key);
  }
}

/** Statuses a cancel leaves alone: finished or disabled. */
const SETTLED: readonly string[] = WORKFLOW_COMPLETE_STATUSES;

/** `PUT /workflows/{key}/cancel`: is_canceled, and every unfinished job canceled. */
export async function cancelWorkflow(store: GraphStore, workflow: string): Promise<{ canceled: string[] }> {
  return store.transaction(async (tx) => {
    const st = await requireStatus(tx, workflow);
    await tx.update('workflow_statuses', null, workflow, { is_canceled: true });
    const keys = await setStatusWhere(tx, workflow, [{ field: 'status', op: 'not_in', value: SETTLED }], 'canceled');
    await writeEvents(tx, workflow, [
      workflowEvent(workflow, 'cancel', `Canceled workflow ${workflow}: ${keys.length} unfinished job(s) canceled`, {
        run_id: st.run_id,
        num_canceled_jobs: keys.length,
        ...keyList('canceled_job_keys', keys),
      }),
    ]);
    return { canceled: keys };
  });
}

/** `POST /workflows/{key}/reset_status`: not canceled, no completion script run detected; run_id kept. */
export async function resetWorkflowStatus(store: GraphStore, workflow: string): Promise<Doc> {
  return store.transaction(async (tx) => {
    const st = await requireStatus(tx, workflow, { notArchived: 'its status cannot be reset' });
    const updated = await tx.update('workflow_statuses', null, workflow, {
      is_canceled: false,
      scheduled_compute_node_ids: [],
      auto_tune_status: { enabled: false, job_keys: [] },
      has_detected_need_to_run_completion_script: false,
    });
    await writeEvents(tx, workflow, [workflowEvent(workflow, 'reset_status', `Reset the status of workflow ${workflow}`, { run_id: st.run_id })]);
    return updated;
  });
}

/** The latest result of each job (highest run_id, then the last written). */
function latestResults(results: readonly Doc[]): Map<string, Doc> {
  const out = new Map<string, Doc>();
  for (const r of results) {
    const key = String(r.job_key ?? '');
    const prev = out.get(key);
    if (!prev || Number(r.run_id) >= Number(prev.run_id)) out.set(key, r);
  }
  return out;
}

/** `POST /workflows/{key}/reset_job_status?failed_only=`: jobs back to uninitialized. Returns the keys reset. */
export async function resetJobStatus(store: GraphStore, workflow: string, failedOnly: boolean): Promise<string[]> {
  return store.transaction(async (tx) => {
    const st = await requireStatus(tx, workflow, { notArchived: 'its jobs cannot be reset' });
    let keys: string[];
    if (!failedOnly) {
      keys = await setStatusWhere(tx, workflow, [{ field: 'status', op: '!=', value: 'uninitialized' }], 'uninitialized');
    } else {
      const jobs = (await tx.find('jobs', workflow)).items;
      const latest = latestResults((await tx.find('results', workflow)).items);
      const failed = jobs.filter((j) => {
        if (j.status === 'canceled' || j.status === 'terminated') return true;
        if (!(WORKFLOW_COMPLETE_STATUSES as readonly string[]).includes(String(j.status as JobStatus))) return false;
        const r = latest.get(j._key);
        return r !== undefined && r.return_code !== 0;
      });
      const direct = failed.filter((j) => j.status !== 'uninitialized');
      if (direct.length > 0) await tx.updateMany('jobs', workflow, direct.map((j) => ({ key: j._key, patch: { status: 'uninitialized' } })));
      const downstream = await reverseCompletion(tx, workflow, failed.map((j) => j._id));
      keys = [...direct.map((j) => j._key), ...downstream];
    }
    await writeEvents(tx, workflow, [
      workflowEvent(workflow, 'reset_job_status', `Reset ${keys.length} job(s) to uninitialized (failed_only=${failedOnly})`, {
        failed_only: failedOnly,
        run_id: st.run_id,
        num_reset_jobs: keys.length,
        ...keyList('reset_job_keys', keys),
      }),
    ]);
    return keys;
  });
}

export interface CompletionReport {
  is_canceled: boolean;
  is_complete: boolean;
  needs_to_run_completion_script: boolean;
}

/**
 * `GET /workflows/{key}/is_complete`. Complete: canceled, or every job done, canceled, terminated
 * or disabled (no jobs: complete). needs_to_run_completion_script is true for exactly one caller
 * (the first to see the workflow complete, when a workflow_completion_script is set).
 */
export async function isWorkflowComplete(store: GraphStore, workflow: string): Promise<CompletionReport> {
  const st = await requireStatus(store, workflow);
  const isCanceled = st.is_canceled === true;
  const unfinished = isCanceled ? 0 : await store.count('jobs', workflow, [{ field: 'status', op: 'not_in', value: SETTLED }]);
  const complete = isCanceled || unfinished === 0;
  if (isCanceled || !complete) return { is_canceled: isCanceled, is_complete: complete, needs_to_run_completion_script: false };
  const config = await store.get('workflow_configs', null, workflow);
  const script = config?.workflow_completion_script;
  if (typeof script !== 'string' || script === '' || st.has_detected_need_to_run_completion_script === true) {
    return { is_canceled: false, is_complete: true, needs_to_run_completion_script: false };
  }
  // First caller wins: flip the flag in a transaction so two workers cannot both see true.
  const won = await store.transaction(async (tx) => {
    const cur = await tx.get('workflow_statuses', null, workflow);
    if (!cur || cur.has_detected_need_to_run_completion_script === true) return false;
    await tx.update('workflow_statuses', null, workflow, { has_detected_need_to_run_completion_script: true });
    await writeEvents(tx, workflow, [workflowEvent(workflow, 'completion_script_claimed', `Workflow ${workflow} is complete; its completion script is handed to one worker`)]);
    return true;
  });
  return { is_canceled: false, is_complete: true, needs_to_run_completion_script: won };
}
