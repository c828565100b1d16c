/**
 * Auto-tune of resource requirements (Torc 0.6.4 section 8): run one job per resource
 * requirements group, measure it, write the measured needs into the group's document, then let
 * the rest of the group run with them.
 *
 * Setup disables every job of a group but the first; processing reads the first job's process
 * statistics and current-run result, rewrites the group's resource requirements, and gives the
 * disabled jobs back (`uninitialized`, so the next restart readies them). Each step is one
 * transaction: it applies whole or fails with nothing changed. Differences from 0.6.4: processing
 * sets `auto_tune_status.enabled = false` (0.6.4 added a stray `disabled` field instead); jobs that
 * setup skipped because they were blocked are left alone instead of failing the call; the group of
 * jobs without resource requirements (`default`) gets a real document named `default`.
 */
import { WeftError } from '../errors.js';
import { DEFAULT_RESOURCE_REQUIREMENTS } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { jobProcessStats, latestJobResult } from './views-jobs.js';
import { withoutMeta } from './views-spec.js';

const GiB = 1024 ** 3;

/** Job id → its resource requirements document (jobs without one are absent). */
async function requirementsByJob(store: GraphStore, workflow: string, jobs: readonly Doc[]): Promise<Map<string, Doc>> {
  const out = new Map<string, Doc>();
  if (jobs.length === 0) return out;
  for (const n of await store.neighbors('requires', workflow, jobs.map((j) => j._id), 'outbound')) {
    if (n.vertex && !out.has(n.edge._from)) out.set(n.edge._from, n.vertex);
  }
  return out;
}

function groupName(rr: Doc | undefined): string {
  return rr && typeof rr.name === 'string' && rr.name !== '' ? rr.name : rr ? rr._key : DEFAULT_RESOURCE_REQUIREMENTS.name;
}

function autoTuneStatus(status: Doc): { enabled: boolean; job_keys: string[] } & Record<string, unknown> {
  const a = (status.auto_tune_status ?? {}) as Record<string, unknown>;
  return { ...a, enabled: a.enabled === true, job_keys: Array.isArray(a.job_keys) ? (a.job_keys as string[]) : [] };
}

async function requireStatus(store: GraphStore, workflow: string): Promise<Doc> {
  const status = await store.get('workflow_statuses', null, workflow);
  if (!status) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
  return status;
}

/**
 * `POST /workflows/{key}/auto_tune_resource_requirements`: needs
 * `config.compute_node_resource_stats.process = true` (else 400). Of the jobs that are not
 * `blocked`, the first of each resource requirements group is kept (its key recorded in
 * `auto_tune_status.job_keys`) and the others become `disabled`. A job that is already disabled
 * is a 409 naming it.
 */
export async function enableAutoTune(store: GraphStore, workflow: string): Promise<{ message: string; job_keys: string[] }> {
  return store.transaction(async (tx) => {
    const config = await tx.get('workflow_configs', null, workflow);
    const stats = (config?.compute_node_resource_stats ?? {}) as Record<string, unknown>;
    if (stats.process !== true) {
      throw new WeftError('VALIDATION_FAILED', 'Auto-tune needs process statistics: set config.compute_node_resource_stats.process to true', {
        details: [{ path: ['config', 'compute_node_resource_stats', 'process'], message: 'must be true for auto-tune', rule: 'auto_tune' }],
      });
    }
    const status = await requireStatus(tx, workflow);
    const jobs = (await tx.find('jobs', workflow)).items;
    const disabled = jobs.filter((j) => j.status === 'disabled');
    if (disabled.length > 0) {
      throw new WeftError('STATE_CONFLICT', `Auto-tune cannot start: job(s) already disabled: ${disabled.slice(0, 10).map((j) => `${j.name ?? j._key} (${j._key})`).join(', ')}`, {
        details: disabled.map((j) => ({ path: ['jobs', j._key], message: 'already disabled', rule: 'status' })),
      });
    }
    const rrs = await requirementsByJob(tx, workflow, jobs);
    const seen = new Set<string>();
    const tuned: string[] = [];
    const toDisable: string[] = [];
    for (const job of jobs) {
      if (job.status === 'blocked') continue;
      const group = groupName(rrs.get(job._id));
      if (seen.has(group)) toDisable.push(job._key);
      else {
        seen.add(group);
        tuned.push(job._key);
      }
    }
    await tx.updateMany('jobs', workflow, toDisable.map((key) => ({ key, patch: { status: 'disabled' } })));
    await tx.update('workflow_statuses', null, workflow, { auto_tune_status: { ...autoTuneStatus(status), enabled: true, job_keys: tuned } });
    await tx.insert('events', workflow, {
      timestamp: Date.now(),
      category: 'workflow',
      type: 'auto_tune_start',
      job_keys: tuned,
      disabled_job_keys: toDisable,
      message: `Auto-tune enabled: running ${tuned.length} job(s), one per resource requirements group; ${toDisable.length} disabled until the results are processed`,
    });
    return { message: `Enabled auto-tune of resource requirements for ${tuned.length} group(s)`, job_keys: tuned };
  });
}

/** The measured needs of one tuned job. */
export function tunedRequirements(maxRss: number, maxCpuPercent: number, execTimeMinutes: number): { memory: string; num_cpus: number; runtime: string } {
  return {
    memory: `${Math.max(1, Math.ceil(maxRss / GiB))}g`,
    num_cpus: maxCpuPercent > 0 ? Math.ceil(maxCpuPercent / 100) : 1,
    runtime: `P0DT0H${Math.max(1, Math.ceil(execTimeMinutes))}M`,
  };
}

/**
 * `POST /workflows/{key}/process_auto_tune_resource_requirements_results`: for each tuned job,
 * its last process statistics (by run_id) and its current-run result give memory
 * (`ceil(max_rss / GiB)` g, at least 1g), CPUs (`ceil(max_cpu_percent / 100)`, at least 1) and
 * runtime (`P0DT0H<ceil(minutes)>M`, at least 1 minute), written to its group's resource
 * requirements with a `resource_requirements`/`update` event. Then every disabled job becomes
 * `uninitialized` and `auto_tune_status.enabled` false. 409 when auto-tune is not enabled; 400
 * naming the job when a tuned job has no statistics or no result for the current run.
 */
export async function processAutoTuneResults(store: GraphStore, workflow: string): Promise<{ message: string; updated: string[] }> {
  return store.transaction(async (tx) => {
    const status = await requireStatus(tx, workflow);
    const auto = autoTuneStatus(status);
    if (!auto.enabled) {
      throw new WeftError('STATE_CONFLICT', `Auto-tune is not enabled for workflow ${workflow}; call auto_tune_resource_requirements first`, {
        details: [{ path: ['auto_tune_status', 'enabled'], message: 'must be true', rule: 'state' }],
      });
    }
    const tunedJobs = await tx.getMany('jobs', workflow, auto.job_keys);
    const allJobs = (await tx.find('jobs', workflow)).items;
    const rrs = await requirementsByJob(tx, workflow, allJobs);
    const updated: string[] = [];
    for (const job of tunedJobs) {
      const stats = await jobProcessStats(tx, workflow, job._key);
      const last = stats[stats.length - 1];
      if (!last) {
        throw new WeftError('VALIDATION_FAILED', `Auto-tuned job ${job.name ?? job._key} (${job._key}) has no process statistics; it must run with process monitoring first`, {
          details: [{ path: ['jobs', job._key, 'process_stats'], message: 'no process statistics', rule: 'auto_tune' }],
        });
      }
      let result: Doc;
      try {
        result = await latestJobResult(tx, workflow, job._key);
      } catch (err) {
        throw new WeftError('VALIDATION_FAILED', `Auto-tuned job ${job.name ?? job._key} (${job._key}) has no result for the current run`, {
          details: [{ path: ['jobs', job._key, 'result'], message: 'no result for the current run', rule: 'auto_tune' }],
          cause: err,
        });
      }
      const rr = rrs.get(job._id);
      const group = groupName(rr);
      if (updated.includes(group)) {
        throw new WeftError('VALIDATION_FAILED', `Two auto-tuned jobs share the resource requirements "${group}"`, {
          details: [{ path: ['resource_requirements', group], message: 'tuned twice', rule: 'auto_tune' }],
        });
      }
      const tunedValues = tunedRequirements(Number(last.max_rss ?? 0), Number(last.max_cpu_percent ?? 0), Number(result.exec_time_minutes ?? 0));
      let before: Record<string, unknown>;
      let after: Doc;
      if (rr) {
        before = rr;
        after = await tx.update('resource_requirements', workflow, rr._key, tunedValues);
      } else {
        // The default group: make it a real document and point its jobs at it.
        before = { ...DEFAULT_RESOURCE_REQUIREMENTS };
        after = await tx.insert('resource_requirements', workflow, { ...withoutMeta(before), ...tunedValues });
        const members = allJobs.filter((j) => !rrs.has(j._id));
        await tx.insertMany('requires', workflow, members.map((j) => ({ _from: j._id, _to: after._id })));
      }
      updated.push(group);
      await tx.insert('events', workflow, {
        timestamp: Date.now(),
        category: 'resource_requirements',
        type: 'update',
        name: group,
        old: before,
        new: after,
        message: `Updated resource requirements for name = ${group}`,
      });
    }
    const disabled = allJobs.filter((j) => j.status === 'disabled' && !auto.job_keys.includes(j._key));
    await tx.updateMany('jobs', workflow, disabled.map((j) => ({ key: j._key, patch: { status: 'uninitialized' } })));
    await tx.update('workflow_statuses', null, workflow, { auto_tune_status: { ...auto, enabled: false } });
    return { message: `Updated resource requirements ${updated.join(', ') || '(none)'}; ${disabled.length} job(s) re-enabled`, updated };
  });
}
