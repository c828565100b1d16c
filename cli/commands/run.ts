/**
 * `weft run SPEC`: the one-command path. Starts an embedded server on a local SQLite file (unless
 * --url names one), creates the workflow from the spec file, starts it, runs local workers until
 * the workflow is complete, shows a live progress bar on a terminal, and ends with a summary. The
 * exit code is 0 only when every job succeeded (or is disabled).
 *
 * A run that cannot finish (ready jobs that no worker can take, say a job asking for more CPUs
 * than this machine has) is detected: when nothing has been held by a worker and no count has
 * moved for --stall-seconds, the workers are stopped and the stuck jobs reported.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { WeftClient } from '../../client/index.js';
import type { RunningServer } from '../../server/index.js';
// The local scheduler alone, not the scheduler index (which loads the AWS SDK).
import { LocalScheduler, type LocalAllocationHandle } from '../../schedulers/local-scheduler.js';
import { apiCall, CLI_RETRY_SECONDS, intOption } from '../lib/client.js';
import { DEFAULT_OUTPUT_DIR } from '../lib/logs.js';
import { formatDuration, note, printJson, shortPath } from '../lib/output.js';
import { createProgressView, finishedOf, inFlightOf, statusCounts, type StatusCounts } from '../lib/progress.js';
import { loadSpecFile } from '../lib/spec-file.js';
import { collectRunSummary, formatRunSummary } from '../lib/summary.js';
import { countJobs, startWorkflow } from '../lib/workflow-ops.js';

interface RunFlags {
  url?: string;
  db?: string;
  workers?: string;
  outputDir?: string;
  progress?: boolean;
  json?: boolean;
  maxParallelJobs?: string;
  stallSeconds?: string;
  ignoreMissingData?: boolean;
}

const POLL_MS = 400;

/** The last line a worker wrote (why it stopped), as `: <line>`, or ''. */
function lastWorkerLine(dir: string, prefix: string): string {
  try {
    for (const f of readdirSync(dir).filter((n) => n.startsWith(prefix)).sort()) {
      const lines = readFileSync(join(dir, f), 'utf8').trim().split('\n');
      const last = lines[lines.length - 1]?.trim();
      if (last) return `: ${last.length > 300 ? `${last.slice(0, 300)}…` : last}`;
    }
  } catch {
    /* no logs: nothing to add */
  }
  return '';
}

/** Whether any worker has registered a compute node for the workflow. */
async function hasComputeNode(client: WeftClient, workflow: string): Promise<boolean> {
  const page = await apiCall(() => client.request<{ total_count: number }>('GET', `/workflows/${encodeURIComponent(workflow)}/compute_nodes`, { query: { limit: 1 } }));
  return page.total_count > 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function registerRunCommand(program: Command): void {
  program
    .command('run <spec>')
    .description('Run a workflow spec file (JSON, JSON5 or YAML) to completion on this machine: embedded server, local workers, live progress, summary')
    .option('-u, --url <url>', 'use this running server instead of an embedded one')
    .option('--db <file>', 'SQLite file of the embedded server (default ./weft.db)')
    .option('-w, --workers <n>', 'local worker processes; the machine\'s CPUs and memory are split between them (default 1)')
    .option('-o, --output-dir <dir>', `where job stdout/stderr and worker logs go (default ${DEFAULT_OUTPUT_DIR})`)
    .option('--max-parallel-jobs <n>', 'at most this many jobs at once per worker')
    .option('--stall-seconds <s>', 'give up when nothing can run for this long (default 20)')
    .option('--ignore-missing-data', 'start even when input files or user data are missing')
    .option('--no-progress', 'no progress bar (on a terminal) or progress lines (otherwise)')
    .option('--json', 'print the summary as JSON')
    .action(async (specPath: string, opts: RunFlags) => {
      process.exitCode = await runSpec(specPath, opts);
    });
}

async function runSpec(specPath: string, opts: RunFlags): Promise<number> {
  const workers = intOption('workers', opts.workers, 1) ?? 1;
  const maxParallel = intOption('max-parallel-jobs', opts.maxParallelJobs, 1);
  const stallMs = (intOption('stall-seconds', opts.stallSeconds, 1) ?? 20) * 1000;
  const outputDir = resolve(opts.outputDir ?? DEFAULT_OUTPUT_DIR);
  const { spec } = loadSpecFile(specPath);

  let server: RunningServer | undefined;
  let url = opts.url;
  if (url === undefined) {
    const { startServer } = await import('../../server/index.js');
    server = await startServer({
      flags: { host: '127.0.0.1', port: 0, db: opts.db, logLevel: process.env['WEFT_LOG_LEVEL'] ?? 'error' },
    });
    url = server.url;
  }
  const client = new WeftClient(url, { retryMinutes: server ? 1 : CLI_RETRY_SECONDS / 60, timeoutMs: 60_000 });
  const scheduler = new LocalScheduler({ output: { dir: join(outputDir, 'workers') }, env: { WEFT_URL: url }, killGraceMs: 10_000 });
  let handle: LocalAllocationHandle | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = signal;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const workflow = await apiCall(() => client.createWorkflowFromSpec(spec));
    const key = workflow._key;
    const total = await countJobs(client, key);
    const where = server ? `embedded server, ${server.config.store === 'sqlite' ? `db ${server.config.db}` : server.config.store}` : url;
    note(`weft: created workflow ${key} (${String(workflow['name'] ?? '')}, ${total} jobs) on ${where}`);
    const runId = await startWorkflow(client, workflow, opts.ignoreMissingData ? { ignoreMissingData: true } : {});

    const perWorkerCpus = Math.max(1, Math.floor(cpus().length / workers));
    const perWorkerMemGb = Math.max(0.1, Math.floor((totalmem() / 2 ** 30 / workers) * 10) / 10);
    handle = await scheduler.submit({
      name: `weft-run-${key}`,
      workers,
      worker: {
        url,
        workflow: key,
        outputDir,
        pollIntervalSeconds: 1,
        // `weft run` watches for a stuck workflow itself; workers stay until it is complete.
        waitForNewJobsSeconds: 3600,
        ...(workers > 1 ? { numCpus: perWorkerCpus, memoryGb: perWorkerMemGb } : {}),
        ...(maxParallel ? { maxParallelJobs: maxParallel } : {}),
      },
    });
    note(`weft: run ${runId}: ${workers} worker(s) started; job logs in ${shortPath(outputDir)}/job-stdio`);

    const startedAt = Date.now();
    const view = createProgressView(total, opts.progress !== false && !opts.json);
    let stuck: StatusCounts | undefined;
    let workersGone = false;
    try {
      let last = '';
      let lastChange = Date.now();
      for (;;) {
        if (interrupted) break;
        const counts = await statusCounts(client, key);
        view.update(counts);
        if (finishedOf(counts) === total) break;
        const sig = JSON.stringify(counts);
        if (sig !== last) {
          last = sig;
          lastChange = Date.now();
        }
        const alive = (await scheduler.status(handle)).state === 'running';
        if (!alive) {
          workersGone = true;
          stuck = counts;
          break;
        }
        if (inFlightOf(counts) === 0 && Date.now() - lastChange > stallMs) {
          // Only once a worker has registered: on a loaded machine a worker may take a while to start.
          if (await hasComputeNode(client, key)) {
            stuck = counts;
            break;
          }
          lastChange = Date.now();
        }
        await sleep(POLL_MS);
      }
    } finally {
      view.stop();
    }

    if (interrupted) {
      note(`weft: ${interrupted}: stopping the workers; workflow ${key} is left as it is (weft workflows restart ${key} continues it)`);
      await scheduler.cancel(handle);
    } else if (stuck) {
      await scheduler.cancel(handle);
      const left = total - finishedOf(stuck);
      note(
        workersGone
          ? `weft: the workers exited with ${left} job(s) unfinished (worker logs: ${shortPath(join(outputDir, 'workers'))})${lastWorkerLine(join(outputDir, 'workers'), `weft-run-${key}_`)}`
          : `weft: ${left} job(s) cannot run: ${stuck['ready'] ?? 0} ready job(s) were taken by no worker for ${stallMs / 1000}s ` +
              `(each worker offers ${workers > 1 ? perWorkerCpus : cpus().length} CPUs and ${workers > 1 ? perWorkerMemGb : Math.floor(totalmem() / 2 ** 30)} GiB; ` +
              `check their resource_requirements: weft jobs list ${key} --status ready)`,
      );
    } else {
      // Complete: the workers see it and exit on their own; give them a moment, then stop them.
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        scheduler.wait(handle).then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 15_000);
        }),
      ]);
      clearTimeout(timer);
      if (!done) await scheduler.cancel(handle);
    }

    const elapsedSeconds = (Date.now() - startedAt) / 1000;
    const summary = await collectRunSummary(client, key, { outputDir });
    if (opts.json) printJson({ url: server ? null : url, db: server?.config.db ?? null, output_dir: outputDir, elapsed_seconds: elapsedSeconds, ...summary });
    else {
      process.stdout.write(`\nWorkflow ${key} (${String(workflow['name'] ?? '')}), run ${summary.run_id}: ${summary.ok ? 'all jobs succeeded' : 'some jobs did not succeed'} (${formatDuration(elapsedSeconds)})\n\n`);
      process.stdout.write(formatRunSummary(summary));
      if (server) process.stdout.write(`\nInspect it later: weft server --db ${server.config.db}, then weft reports ${key}${shortPath(outputDir) === 'output' ? '' : ` --output-dir ${shortPath(outputDir)}`}\n`);
      else process.stdout.write(`\nInspect it: weft reports ${key} --url ${url}${shortPath(outputDir) === 'output' ? '' : ` --output-dir ${shortPath(outputDir)}`}\n`);
    }
    if (interrupted) return 130;
    if (stuck) return 1;
    return summary.ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (handle) await scheduler.close();
    await server?.close();
  }
}
