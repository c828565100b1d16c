/**
 * `weft workflows ...`: create a workflow from a spec file, list and show workflows, start,
 * restart, cancel, reset and delete them, and show where one stands.
 *
 *   weft workflows create SPEC            weft workflows start KEY [--force]
 *   weft workflows list                   weft workflows restart KEY [--dry-run]
 *   weft workflows show KEY               weft workflows cancel KEY
 *   weft workflows status KEY             weft workflows reset-status KEY [--failed-only] [--restart]
 *   weft workflows delete KEY
 */
import { Command } from 'commander';
import YAML from 'yaml';
import { JOB_STATUSES } from '../../graph/model.js';
import { apiCall, clientFor, connectWorkflow, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { formatFields, note, printJson, printTable } from '../lib/output.js';
import { loadSpecFile } from '../lib/spec-file.js';
import { countJobs, restartWorkflow, startWorkflow, type RestartReport } from '../lib/workflow-ops.js';
import { collectRunSummary } from '../lib/summary.js';

interface StartFlags extends ConnectionOptions {
  force?: boolean;
  ignoreMissingData?: boolean;
}

export function registerWorkflowsCommand(program: Command): void {
  const wf = program.command('workflows').alias('workflow').description('Create, start, restart, cancel and inspect workflows');

  withConnection(wf.command('create <spec>').description('Create a workflow from a spec file (JSON, JSON5 or YAML)'))
    .option('--start', 'start it right away')
    .action(async (path: string, opts: ConnectionOptions & { start?: boolean }) => {
      const { spec } = loadSpecFile(path);
      const client = clientFor(opts);
      const created = await apiCall(() => client.createWorkflowFromSpec(spec));
      const jobs = await countJobs(client, created._key);
      const runId = opts.start ? await startWorkflow(client, created) : undefined;
      if (opts.json) return printJson({ ...created, num_jobs: jobs, ...(runId === undefined ? {} : { run_id: runId }) });
      process.stdout.write(`Created workflow ${created._key} (${String(created['name'] ?? '')}, ${jobs} jobs)${runId === undefined ? '' : `; started run ${runId}`}\n`);
      if (runId === undefined) process.stdout.write(`Next: weft workflows start ${created._key}, then weft worker --workflow ${created._key}\n`);
    });

  withConnection(wf.command('list').description('List workflows'))
    .option('--archived', 'include archived workflows')
    .action(async (opts: ConnectionOptions & { archived?: boolean }) => {
      const client = clientFor(opts);
      const all = await apiCall(() => client.listWorkflows());
      const shown = opts.archived ? all : all.filter((w) => w['is_archived'] !== true);
      if (opts.json) return printJson(shown);
      printTable(shown, [
        { header: 'key', value: (w) => w._key },
        { header: 'name', value: (w) => w['name'] },
        { header: 'user', value: (w) => w['user'] },
        { header: 'created', value: (w) => w['timestamp'] },
        { header: 'description', value: (w) => truncate(String(w['description'] ?? ''), 50) },
      ], '(no workflows)');
    });

  withConnection(wf.command('show <key>').description('Print the specification of a workflow (YAML; --json for JSON)')).action(async (key: string, opts: ConnectionOptions) => {
    const client = clientFor(opts);
    await requireWorkflow(client, key);
    const spec = await apiCall(() => client.getWorkflowSpec(key));
    if (opts.json) return printJson(spec);
    process.stdout.write(YAML.stringify(spec));
  });

  withConnection(wf.command('status <key>').description('Job counts by status, run id, and whether the workflow is complete')).action(async (key: string, opts: ConnectionOptions) => {
    const { client, workflow } = await connectWorkflow(opts, key);
    const summary = await collectRunSummary(client, workflow._key);
    const byStatus: Record<string, number> = {};
    for (const s of JOB_STATUSES) byStatus[s] = 0;
    for (const j of summary.jobs) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1;
    const out = {
      workflow: workflow._key,
      name: workflow['name'] ?? '',
      run_id: summary.run_id,
      is_canceled: summary.is_canceled,
      is_complete: summary.is_complete,
      num_jobs: summary.jobs.length,
      status_counts: byStatus,
      outcome_counts: summary.counts,
    };
    if (opts.json) return printJson(out);
    process.stdout.write(
      formatFields([
        ['workflow', `${out.workflow} (${String(out.name)})`],
        ['run', out.run_id],
        ['state', out.is_canceled ? 'canceled' : out.is_complete ? 'complete' : 'not complete'],
        ['jobs', out.num_jobs],
      ]),
    );
    process.stdout.write('\n');
    printTable(
      Object.entries(byStatus).filter(([, n]) => n > 0).map(([status, n]) => ({ status, n })),
      [
        { header: 'status', value: (r) => r.status },
        { header: 'jobs', value: (r) => r.n, right: true },
      ],
      '(no jobs)',
    );
    const failed = summary.jobs.filter((j) => j.outcome === 'failed');
    if (failed.length > 0) process.stdout.write(`\n${failed.length} done job(s) failed (non-zero return code): ${failed.slice(0, 10).map((j) => j.name).join(', ')}${failed.length > 10 ? ', ...' : ''}\n`);
  });

  withConnection(wf.command('start <key>').description('Initialize the jobs of a workflow for a new run (then start workers)'))
    .option('--force', 'start even if some jobs are done (they run again)')
    .option('--ignore-missing-data', 'start even when input files or user data are missing')
    .action(async (key: string, opts: StartFlags) => {
      const { client, workflow } = await connectWorkflow(opts, key);
      const runId = await startWorkflow(client, workflow, opts);
      const ready = await countJobs(client, workflow._key, 'ready');
      if (opts.json) return printJson({ workflow: workflow._key, run_id: runId, ready_jobs: ready });
      process.stdout.write(`Started workflow ${workflow._key}, run ${runId}: ${ready} job(s) ready\n`);
    });

  withConnection(wf.command('restart <key>').description('Rerun the jobs whose inputs changed, their downstream jobs, and unfinished jobs'))
    .option('--dry-run', 'report what would rerun; change nothing')
    .option('--ignore-missing-data', 'restart even when input files or user data are missing')
    .action(async (key: string, opts: ConnectionOptions & { dryRun?: boolean; ignoreMissingData?: boolean }) => {
      const { client, workflow } = await connectWorkflow(opts, key);
      const report = await restartWorkflow(client, workflow, { ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.ignoreMissingData ? { ignoreMissingData: true } : {}) });
      if (opts.json) return printJson(report);
      printRestartReport(workflow._key, report);
    });

  withConnection(wf.command('cancel <key>').description("Cancel a workflow: its running jobs are stopped, and its allocations (Slurm, AWS, local) are canceled")).action(async (key: string, opts: ConnectionOptions) => {
    const { client, workflow } = await connectWorkflow(opts, key);
    await apiCall(() => client.cancelWorkflow(workflow._key));
    let allocations: { _key: string }[] = [];
    try {
      // Loaded here: the scheduler adapters (the AWS SDK among them) are slow to load for every command.
      const { cancelWorkflowAllocations } = await import('../../schedulers/index.js');
      allocations = await cancelWorkflowAllocations(client.asRequestFn(), workflow._key);
    } catch (err) {
      // The workflow is canceled either way; say what could not be reached.
      note(`weft: warning: some allocations could not be canceled: ${String((err as Error).message).split('\n')[0]}`);
    }
    if (opts.json) return printJson({ workflow: workflow._key, canceled: true, allocations_canceled: allocations.length });
    process.stdout.write(`Canceled workflow ${workflow._key}${allocations.length > 0 ? ` and ${allocations.length} allocation(s)` : ''}\n`);
  });

  withConnection(wf.command('reset-status <key>').description('Reset the workflow and its jobs to uninitialized (all, or only failed jobs and their downstream jobs)'))
    .option('--failed-only', 'reset only jobs that failed in the current run, and their downstream jobs')
    .option('--restart', 'restart the workflow afterwards')
    .action(async (key: string, opts: ConnectionOptions & { failedOnly?: boolean; restart?: boolean }) => {
      const { client, workflow } = await connectWorkflow(opts, key);
      await apiCall(() => client.resetStatus(workflow._key));
      await apiCall(() => client.resetJobStatus(workflow._key, { failed_only: opts.failedOnly ?? false }));
      const reset = await countJobs(client, workflow._key, 'uninitialized');
      const report = opts.restart ? await restartWorkflow(client, workflow) : undefined;
      if (opts.json) return printJson({ workflow: workflow._key, uninitialized_jobs: reset, ...(report ? { restart: report } : {}) });
      process.stdout.write(`Reset workflow ${workflow._key}: ${reset} job(s) uninitialized\n`);
      if (report) printRestartReport(workflow._key, report);
      else process.stdout.write(`Next: weft workflows ${opts.failedOnly ? 'restart' : 'start'} ${workflow._key}\n`);
    });

  withConnection(wf.command('delete <key>').description('Delete a workflow and everything in it')).action(async (key: string, opts: ConnectionOptions) => {
    const { client, workflow } = await connectWorkflow(opts, key);
    await apiCall(() => client.deleteWorkflow(workflow._key));
    if (opts.json) return printJson({ workflow: workflow._key, deleted: true });
    process.stdout.write(`Deleted workflow ${workflow._key}\n`);
  });
}

function printRestartReport(key: string, r: RestartReport): void {
  const verb = r.dry_run ? 'would' : 'will';
  if (r.changed_files.length > 0) {
    process.stdout.write('Changed files:\n');
    printTable(r.changed_files, [
      { header: 'file', value: (f) => f.name },
      { header: 'path', value: (f) => f.path },
      { header: 'change', value: (f) => f.change },
    ]);
    process.stdout.write('\n');
  }
  if (r.reset_jobs.length > 0) {
    process.stdout.write(`Jobs reset${r.dry_run ? ' (dry run: nothing changed)' : ''}:\n`);
    printTable(r.reset_jobs, [
      { header: 'job', value: (j) => j.name },
      { header: 'key', value: (j) => j.key },
      { header: 'why', value: (j) => j.reason },
    ]);
    process.stdout.write('\n');
  }
  process.stdout.write(
    r.will_run.length === 0
      ? `Nothing ${verb} rerun in workflow ${key}${r.dry_run ? '' : ` (run ${r.run_id})`}\n`
      : `${r.will_run.length} job(s) ${verb} run in workflow ${key}${r.dry_run ? '' : ` (run ${r.run_id}); start workers: weft worker --workflow ${key}`}: ${r.will_run.slice(0, 20).map((j) => j.name).join(', ')}${r.will_run.length > 20 ? ', ...' : ''}\n`,
  );
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
