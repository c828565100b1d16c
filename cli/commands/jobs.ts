/**
 * `weft jobs ...`: the jobs of one workflow.
 *
 *   weft jobs list KEY [--status S]      weft jobs reset KEY JOB
 *   weft jobs show KEY JOB               weft jobs disable KEY JOB
 *   weft jobs logs KEY JOB [--stderr] [--output-dir DIR] [--run N]
 *
 * JOB is a job key or a job name.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { JOB_STATUSES } from '../../graph/model.js';
import type { Doc } from '../../client/index.js';
import { apiCall, CliError, clientFor, connectWorkflow, intOption, requireJob, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { DEFAULT_OUTPUT_DIR, jobLogPaths } from '../lib/logs.js';
import { formatDuration, formatFields, printJson, printTable } from '../lib/output.js';
import { latestResults, outcomeOf } from '../lib/summary.js';

export function registerJobsCommand(program: Command): void {
  const jobs = program.command('jobs').alias('job').description('List, show, reset and disable the jobs of a workflow; print their logs');

  withConnection(jobs.command('list <workflow>').description('List the jobs of a workflow with their status and current result'))
    .option('-s, --status <status>', `only jobs with this status (${JOB_STATUSES.join(', ')})`)
    .action(async (key: string, opts: ConnectionOptions & { status?: string }) => {
      if (opts.status !== undefined && !(JOB_STATUSES as readonly string[]).includes(opts.status)) {
        throw new CliError(`--status must be one of ${JOB_STATUSES.join(', ')}; got ${JSON.stringify(opts.status)}`, 'VALIDATION_FAILED');
      }
      const { client, workflow } = await connectWorkflow(opts, key);
      const wk = workflow._key;
      const [list, results] = await Promise.all([apiCall(() => client.list(wk, 'jobs', opts.status ? { status: opts.status } : {})), latestResults(client, wk)]);
      if (opts.json) return printJson(list.map((j) => ({ ...j, result: results.get(j._key) ?? null })));
      printTable(
        list,
        [
          { header: 'key', value: (j) => j._key },
          { header: 'name', value: (j) => j['name'] },
          { header: 'status', value: (j) => statusText(j, results.get(j._key)) },
          { header: 'run', value: (j) => results.get(j._key)?.['run_id'], right: true },
          { header: 'rc', value: (j) => results.get(j._key)?.['return_code'], right: true },
          { header: 'run time', value: (j) => minutesText(results.get(j._key)?.['exec_time_minutes']), right: true },
          { header: 'command', value: (j) => truncate(String(j['command'] ?? ''), 60) },
        ],
        opts.status ? `(no ${opts.status} jobs)` : '(no jobs)',
      );
    });

  withConnection(jobs.command('show <workflow> <job>').description('Show one job: command, status, requirements, blockers and results of every run')).action(async (key: string, jobRef: string, opts: ConnectionOptions) => {
    const client = clientFor(opts);
    const wk = (await requireWorkflow(client, key))._key;
    const job = await requireJob(client, wk, jobRef);
    const [rr, results, blockers] = await Promise.all([
      apiCall(() => client.request<Doc>('GET', `/workflows/${wk}/jobs/${job._key}/resource_requirements`)).catch(() => null),
      apiCall(() => client.list(wk, 'results', { job_key: job._key })),
      apiCall(() => client.request<{ items: { from: Doc | null }[] }>('POST', `/workflows/${wk}/join_by_inbound_edge/jobs/blocks`, { body: { _key: job._key } })),
    ]);
    const blockedBy = blockers.items.map((row) => String(row.from?.['name'] ?? row.from?._key ?? '')).filter(Boolean);
    if (opts.json) return printJson({ job, resource_requirements: rr, blocked_by: blockedBy, results });
    process.stdout.write(
      formatFields([
        ['key', job._key],
        ['name', job['name']],
        ['status', job['status']],
        ['command', job['command']],
        ...(job['invocation_script'] ? [['invocation_script', job['invocation_script']] as const] : []),
        ['resources', rr ? `${String(rr['name'] ?? '')}: ${String(rr['num_cpus'])} CPU, ${String(rr['num_gpus'])} GPU, ${String(rr['memory'])}, ${String(rr['runtime'])}` : 'default'],
        ['blocked by', blockedBy.join(', ')],
        ['cancel on blocker failure', job['cancel_on_blocking_job_failure']],
        ['supports termination', job['supports_termination']],
      ]),
    );
    if (results.length > 0) {
      process.stdout.write('\nResults:\n');
      printTable(
        [...results].sort((a, b) => Number(a['run_id']) - Number(b['run_id'])),
        [
          { header: 'run', value: (r) => r['run_id'], right: true },
          { header: 'status', value: (r) => r['status'] },
          { header: 'rc', value: (r) => r['return_code'], right: true },
          { header: 'run time', value: (r) => minutesText(r['exec_time_minutes']), right: true },
          { header: 'completed', value: (r) => r['completion_time'] },
        ],
      );
    }
  });

  withConnection(jobs.command('reset <workflow> <job>').description('Reset a job (and its downstream jobs) to uninitialized; `weft workflows restart` then reruns them')).action(async (key: string, jobRef: string, opts: ConnectionOptions) => {
    const client = clientFor(opts);
    const wk = (await requireWorkflow(client, key))._key;
    const job = await requireJob(client, wk, jobRef);
    const status = String(job['status'] ?? '');
    if (status === 'submitted' || status === 'submitted_pending') throw new CliError(`Job ${String(job['name'] ?? job._key)} is held by a worker (${status}); cancel the workflow or wait for it`, 'STATE_CONFLICT');
    if (status !== 'uninitialized') {
      if (status === 'done' || status === 'canceled' || status === 'terminated') {
        // Through the state machine, so downstream jobs are reset too.
        const { run_id } = await apiCall(() => client.getWorkflowStatus(wk));
        await apiCall(() => client.manageStatusChange(wk, job._key, 'uninitialized', job._rev, run_id));
      } else {
        await apiCall(() => client.put(wk, 'jobs', job._key, { ...job, status: 'uninitialized' }));
      }
    }
    if (opts.json) return printJson({ workflow: wk, job: job._key, status: 'uninitialized' });
    process.stdout.write(`Reset job ${String(job['name'] ?? job._key)} (${job._key}) to uninitialized; run \`weft workflows restart ${wk}\` to rerun it\n`);
  });

  withConnection(jobs.command('disable <workflow> <job>').description('Disable a job: it is not run, and counts as finished for the workflow')).action(async (key: string, jobRef: string, opts: ConnectionOptions) => {
    const client = clientFor(opts);
    const wk = (await requireWorkflow(client, key))._key;
    const job = await requireJob(client, wk, jobRef);
    const status = String(job['status'] ?? '');
    if (status === 'submitted' || status === 'submitted_pending') throw new CliError(`Job ${String(job['name'] ?? job._key)} is held by a worker (${status}); it cannot be disabled now`, 'STATE_CONFLICT');
    if (status !== 'disabled') await apiCall(() => client.put(wk, 'jobs', job._key, { ...job, status: 'disabled' }));
    if (opts.json) return printJson({ workflow: wk, job: job._key, status: 'disabled' });
    process.stdout.write(`Disabled job ${String(job['name'] ?? job._key)} (${job._key})\n`);
  });

  withConnection(jobs.command('logs <workflow> <job>').description("Print a job's stdout (or --stderr) from the worker's output directory"))
    .option('--stderr', 'print stderr instead of stdout')
    .option('-o, --output-dir <dir>', `the worker's output directory (default ${DEFAULT_OUTPUT_DIR})`)
    .option('--run <n>', 'run id (default: the current run)')
    .action(async (key: string, jobRef: string, opts: ConnectionOptions & { stderr?: boolean; outputDir?: string; run?: string }) => {
      const client = clientFor(opts);
      const wk = (await requireWorkflow(client, key))._key;
      const job = await requireJob(client, wk, jobRef);
      const runId = intOption('run', opts.run, 1) ?? (await apiCall(() => client.getWorkflowStatus(wk))).run_id;
      const dir = opts.outputDir ?? DEFAULT_OUTPUT_DIR;
      const paths = jobLogPaths(dir, wk, job._key, runId);
      const path = opts.stderr ? paths.stderr : paths.stdout;
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        throw new CliError(`No ${opts.stderr ? 'stderr' : 'stdout'} log for job ${String(job['name'] ?? job._key)} run ${runId}: ${path} does not exist (did the job run? is --output-dir the worker's?)`, 'DOCUMENT_NOT_FOUND');
      }
      if (opts.json) return printJson({ workflow: wk, job: job._key, run_id: runId, path, text });
      process.stdout.write(text);
    });
}

function statusText(job: Doc, result: Doc | undefined): string {
  const status = String(job['status'] ?? '');
  const outcome = outcomeOf(status, result);
  return outcome === 'failed' ? 'done (failed)' : status;
}

function minutesText(v: unknown): string {
  return typeof v === 'number' ? formatDuration(v * 60) : '';
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
