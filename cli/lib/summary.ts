/**
 * What happened in a run: every job with its status and the result of the current run, counted
 * by outcome. `done` is not success (a job that exits non-zero ends `done` with its return code in
 * the result), so "failed" is read from the results, not from the status.
 */
import { JOB_STATUSES } from '../../graph/model.js';
import type { Doc, WeftClient } from '../../client/index.js';
import { apiCall } from './client.js';
import { findJobLogs, type JobLogs } from './logs.js';
import { formatTable, shortPath, type Column } from './output.js';

export interface JobOutcome {
  key: string;
  name: string;
  status: string;
  /** The outcome people read: succeeded, failed, canceled, terminated, disabled, or the status. */
  outcome: string;
  return_code: number | null;
  exec_time_minutes: number | null;
  logs?: JobLogs;
}

export interface RunSummary {
  workflow: string;
  run_id: number;
  is_complete: boolean;
  is_canceled: boolean;
  /** Jobs per outcome (only outcomes that occur). */
  counts: Record<string, number>;
  jobs: JobOutcome[];
  /** True when every job succeeded or is disabled. */
  ok: boolean;
}

/** The outcome of a job from its status and its result for the current run. */
export function outcomeOf(status: string, result: Doc | undefined): string {
  const rc = typeof result?.['return_code'] === 'number' ? (result['return_code'] as number) : null;
  if (status === 'done') return rc === null || rc === 0 ? 'succeeded' : 'failed';
  if (status === 'terminated') return rc === 0 ? 'succeeded' : 'terminated';
  return status;
}

/**
 * Each job's latest result (highest run_id). A restart reruns only what changed, so a job's outcome
 * is that of the last run it took part in, not necessarily the current run.
 */
export async function latestResults(client: WeftClient, workflow: string): Promise<Map<string, Doc>> {
  const out = new Map<string, Doc>();
  for (const r of await apiCall(() => client.list(workflow, 'results'))) {
    const k = String(r['job_key']);
    const prev = out.get(k);
    if (prev === undefined || Number(r['run_id']) >= Number(prev['run_id'])) out.set(k, r);
  }
  return out;
}

/** Outcomes in the order a summary lists them. */
const OUTCOME_ORDER = ['succeeded', 'failed', 'canceled', 'terminated', 'disabled', ...JOB_STATUSES.filter((s) => !['done', 'canceled', 'terminated', 'disabled'].includes(s))];

/** Read jobs, the current run's results and the completion flags of a workflow. */
export async function collectRunSummary(client: WeftClient, workflow: string, opts: { outputDir?: string } = {}): Promise<RunSummary> {
  const [status, jobs, complete] = await Promise.all([
    apiCall(() => client.getWorkflowStatus(workflow)),
    apiCall(() => client.list(workflow, 'jobs')),
    apiCall(() => client.isComplete(workflow)),
  ]);
  const resultOf = await latestResults(client, workflow);
  const outcomes: JobOutcome[] = jobs.map((j) => {
    const r = resultOf.get(j._key);
    const st = String(j['status'] ?? '');
    const out: JobOutcome = {
      key: j._key,
      name: String(j['name'] ?? j._key),
      status: st,
      outcome: outcomeOf(st, r),
      return_code: typeof r?.['return_code'] === 'number' ? (r['return_code'] as number) : null,
      exec_time_minutes: typeof r?.['exec_time_minutes'] === 'number' ? (r['exec_time_minutes'] as number) : null,
    };
    if (opts.outputDir !== undefined && r !== undefined) out.logs = findJobLogs(opts.outputDir, workflow, j._key, Number(r['run_id']));
    return out;
  });
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.outcome] = (counts[o.outcome] ?? 0) + 1;
  const ordered: Record<string, number> = {};
  for (const k of [...OUTCOME_ORDER, ...Object.keys(counts)]) if (counts[k] !== undefined && ordered[k] === undefined) ordered[k] = counts[k];
  return {
    workflow,
    run_id: status.run_id,
    is_complete: complete.is_complete,
    is_canceled: status.is_canceled,
    counts: ordered,
    jobs: outcomes,
    ok: outcomes.every((o) => o.outcome === 'succeeded' || o.outcome === 'disabled'),
  };
}

/** The summary as text: a count table, then the jobs that did not succeed. */
export function formatRunSummary(s: RunSummary): string {
  const total = s.jobs.length;
  const countRows = Object.entries(s.counts).map(([outcome, n]) => ({ outcome, n }));
  let text = formatTable(countRows, [
    { header: 'outcome', value: (r) => r.outcome },
    { header: 'jobs', value: (r) => r.n, right: true },
  ]);
  text += `${'total'.padEnd(Math.max(7, ...countRows.map((r) => r.outcome.length)))}  ${String(total)}\n`;
  const bad = s.jobs.filter((j) => j.outcome !== 'succeeded' && j.outcome !== 'disabled');
  if (bad.length > 0) {
    const cols: Column<JobOutcome>[] = [
      { header: 'job', value: (j) => j.name },
      { header: 'key', value: (j) => j.key },
      { header: 'status', value: (j) => j.outcome },
      { header: 'rc', value: (j) => j.return_code, right: true },
      { header: 'stdout / stderr', value: (j) => (j.logs ? [j.logs.stdout, j.logs.stderr].filter((p): p is string => Boolean(p)).map(shortPath).join('  ') : '') },
    ];
    text += `\nJobs that did not succeed (${bad.length}):\n${formatTable(bad.slice(0, 50), cols)}`;
    if (bad.length > 50) text += `... and ${bad.length - 50} more (weft jobs list ${s.workflow} --json)\n`;
  }
  return text;
}
