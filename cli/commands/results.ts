/**
 * `weft results KEY [--run N | --all-runs]`: the results the workers reported (return code, run
 * time, completion time), for the current run by default.
 */
import { Command } from 'commander';
import { apiCall, clientFor, intOption, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { formatDuration, printJson, printTable } from '../lib/output.js';

export function registerResultsCommand(program: Command): void {
  withConnection(program.command('results <workflow>').description('List job results (return code, run time) of the current run'))
    .option('--run <n>', 'results of this run id instead of the current one')
    .option('--all-runs', 'results of every run')
    .action(async (key: string, opts: ConnectionOptions & { run?: string; allRuns?: boolean }) => {
      const client = clientFor(opts);
      const wk = (await requireWorkflow(client, key))._key;
      const runId = opts.allRuns ? undefined : (intOption('run', opts.run) ?? (await apiCall(() => client.getWorkflowStatus(wk))).run_id);
      const [results, jobs] = await Promise.all([
        apiCall(() => client.list(wk, 'results', runId === undefined ? {} : { run_id: runId })),
        apiCall(() => client.list(wk, 'jobs')),
      ]);
      const names = new Map(jobs.map((j) => [j._key, String(j['name'] ?? j._key)]));
      const rows = [...results].sort((a, b) => Number(a['run_id']) - Number(b['run_id']) || String(a['completion_time']).localeCompare(String(b['completion_time'])));
      if (opts.json) return printJson(rows.map((r) => ({ ...r, job_name: names.get(String(r['job_key'])) ?? null })));
      printTable(
        rows,
        [
          { header: 'job', value: (r) => names.get(String(r['job_key'])) ?? '' },
          { header: 'key', value: (r) => r['job_key'] },
          { header: 'run', value: (r) => r['run_id'], right: true },
          { header: 'status', value: (r) => r['status'] },
          { header: 'rc', value: (r) => r['return_code'], right: true },
          { header: 'run time', value: (r) => (typeof r['exec_time_minutes'] === 'number' ? formatDuration(r['exec_time_minutes'] * 60) : ''), right: true },
          { header: 'completed', value: (r) => r['completion_time'] },
        ],
        runId === undefined ? '(no results)' : `(no results for run ${runId})`,
      );
    });
}
