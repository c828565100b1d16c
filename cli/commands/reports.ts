/**
 * `weft reports KEY [--run N] [--output-dir DIR]`: one line per job for the run: status, return
 * code, run time, peak memory and CPU use (from the worker's process samples, child processes
 * included), and where its logs are.
 */
import { Command } from 'commander';
import { apiCall, clientFor, intOption, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { DEFAULT_OUTPUT_DIR, findJobLogs } from '../lib/logs.js';
import { formatBytes, formatDuration, printJson, printTable } from '../lib/output.js';
import { latestResults, outcomeOf } from '../lib/summary.js';

export interface JobReport {
  key: string;
  run_id: number | null;
  name: string;
  status: string;
  outcome: string;
  return_code: number | null;
  run_time_seconds: number | null;
  peak_memory_bytes: number | null;
  avg_memory_bytes: number | null;
  avg_cpu_percent: number | null;
  max_cpu_percent: number | null;
  stdout: string | null;
  stderr: string | null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function registerReportsCommand(program: Command): void {
  withConnection(program.command('reports <workflow>').description("Per job: status, return code, run time, peak memory, CPU, log files (each job's latest run)"))
    .option('--run <n>', 'report this run id instead of the current one')
    .option('-o, --output-dir <dir>', `the workers' output directory, to find logs (default ${DEFAULT_OUTPUT_DIR})`)
    .action(async (key: string, opts: ConnectionOptions & { run?: string; outputDir?: string }) => {
      const client = clientFor(opts);
      const wk = (await requireWorkflow(client, key))._key;
      // Without --run: each job's latest run (a restart reruns only what changed).
      const onlyRun = intOption('run', opts.run);
      const runId = onlyRun ?? (await apiCall(() => client.getWorkflowStatus(wk))).run_id;
      const [jobs, resultOf, stats] = await Promise.all([
        apiCall(() => client.list(wk, 'jobs')),
        onlyRun === undefined ? latestResults(client, wk) : apiCall(() => client.list(wk, 'results', { run_id: onlyRun })).then((rs) => new Map(rs.map((r) => [String(r['job_key']), r]))),
        apiCall(() => client.list(wk, 'job_process_stats', onlyRun === undefined ? {} : { run_id: onlyRun })),
      ]);
      const statsOf = new Map(stats.map((s) => [`${String(s['job_key'])}/${String(s['run_id'])}`, s]));
      const dir = opts.outputDir ?? DEFAULT_OUTPUT_DIR;
      const rows: JobReport[] = jobs.map((j) => {
        const r = resultOf.get(j._key);
        const s = r ? statsOf.get(`${j._key}/${String(r['run_id'])}`) : undefined;
        const logs = r ? findJobLogs(dir, wk, j._key, Number(r['run_id'])) : {};
        const minutes = num(r?.['exec_time_minutes']);
        return {
          key: j._key,
          run_id: num(r?.['run_id']),
          name: String(j['name'] ?? j._key),
          status: String(j['status'] ?? ''),
          outcome: outcomeOf(String(j['status'] ?? ''), r),
          return_code: num(r?.['return_code']),
          run_time_seconds: minutes === null ? null : minutes * 60,
          peak_memory_bytes: num(s?.['max_rss']),
          avg_memory_bytes: num(s?.['avg_rss']),
          avg_cpu_percent: num(s?.['avg_cpu_percent']),
          max_cpu_percent: num(s?.['max_cpu_percent']),
          stdout: logs.stdout ?? null,
          stderr: logs.stderr ?? null,
        };
      });
      if (opts.json) return printJson({ workflow: wk, run_id: runId, jobs: rows });
      process.stdout.write(`Workflow ${wk}, ${onlyRun === undefined ? `current run ${runId} (each job's latest run shown)` : `run ${runId}`}\n`);
      const pct = (v: number | null): string => (v === null ? '' : `${v.toFixed(1)}%`);
      printTable(rows, [
        { header: 'job', value: (r) => r.name },
        { header: 'key', value: (r) => r.key },
        { header: 'run', value: (r) => r.run_id, right: true },
        { header: 'status', value: (r) => (r.outcome === 'succeeded' || r.outcome === r.status ? r.status : `${r.status} (${r.outcome})`) },
        { header: 'rc', value: (r) => r.return_code, right: true },
        { header: 'run time', value: (r) => formatDuration(r.run_time_seconds), right: true },
        { header: 'peak mem', value: (r) => formatBytes(r.peak_memory_bytes), right: true },
        { header: 'avg cpu', value: (r) => pct(r.avg_cpu_percent), right: true },
        { header: 'max cpu', value: (r) => pct(r.max_cpu_percent), right: true },
        { header: 'stdout', value: (r) => r.stdout },
      ], '(no jobs)');
    });
}
