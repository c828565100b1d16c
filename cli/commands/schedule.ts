/**
 * weft schedule KEY --cron EXPR: rerun a workflow on a cron schedule (node-cron), e.g. every night
 * at 02:00 rerun whatever a new day's input files changed.
 *
 * At each tick: a dry-run restart says which jobs would run (changed input files or user data,
 * missing outputs, jobs that never finished, and everything downstream of them). When there are
 * none, nothing is touched (the run id stays). Otherwise the workflow is restarted and local
 * workers run it to the end before the next tick is considered; a tick that comes while a run is
 * still going is skipped (said on stderr), so two runs never overlap.
 *
 * Expressions are node-cron's: five fields (minute hour day month weekday) or six with seconds
 * first; `--timezone` takes an IANA zone. `--max-ticks N` stops after N ticks (for scripts and
 * tests); otherwise it runs until Ctrl-C / SIGTERM, which stops the workers and exits cleanly.
 */
import type { Command } from 'commander';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import cron from 'node-cron';
import type { WeftClient } from '../../client/index.js';
import { LocalScheduler } from '../../schedulers/local-scheduler.js';
import { apiCall, CliError, clientFor, intOption, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { DEFAULT_OUTPUT_DIR } from '../lib/logs.js';
import { note } from '../lib/output.js';
import { restartWorkflow } from '../lib/workflow-ops.js';

interface ScheduleFlags extends ConnectionOptions {
  cron: string;
  timezone?: string;
  workers?: string;
  outputDir?: string;
  maxTicks?: string;
  ignoreMissingData?: boolean;
}

export interface TickReport {
  tick: number;
  at: string;
  /** rerun: jobs ran; unchanged: nothing to do; skipped: the previous run was still going. */
  outcome: 'rerun' | 'unchanged' | 'skipped' | 'error';
  run_id?: number;
  jobs?: number;
  message?: string;
}

export function registerScheduleCommand(program: Command): void {
  withConnection(
    program
      .command('schedule <key>')
      .description('Rerun a workflow on a cron schedule: at each tick, run the jobs whose inputs changed (and their downstream jobs) with local workers')
      .requiredOption('--cron <expr>', 'cron expression: "0 2 * * *" (02:00 daily); six fields put seconds first')
      .option('--timezone <zone>', 'IANA time zone of the expression (default: this machine\'s)')
      .option('--workers <n>', 'local workers per run', '1')
      .option('--output-dir <dir>', 'worker output directory', DEFAULT_OUTPUT_DIR)
      .option('--max-ticks <n>', 'stop after this many ticks')
      .option('--ignore-missing-data', 'run even when input files or user data are missing'),
  ).action(async (key: string, opts: ScheduleFlags) => {
    if (!cron.validate(opts.cron)) throw new CliError(`--cron: not a valid cron expression: ${JSON.stringify(opts.cron)} (five fields, or six with seconds first)`, 'VALIDATION_FAILED');
    const workers = intOption('workers', opts.workers, 1) ?? 1;
    const maxTicks = intOption('max-ticks', opts.maxTicks, 1);
    const client = clientFor(opts);
    await requireWorkflow(client, key);
    await runSchedule(client, key, opts, workers, maxTicks);
  });
}

async function runSchedule(client: WeftClient, key: string, opts: ScheduleFlags, workers: number, maxTicks: number | undefined): Promise<void> {
  const outputDir = resolve(opts.outputDir ?? DEFAULT_OUTPUT_DIR);
  const scheduler = new LocalScheduler({ output: { dir: join(outputDir, 'workers') }, env: { WEFT_URL: client.baseUrl }, killGraceMs: 10_000 });
  let ticks = 0;
  let running: Promise<void> | undefined;
  let stopping = false;
  let current: Awaited<ReturnType<LocalScheduler['submit']>> | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const report = (r: TickReport): void => {
    // One JSON object per line per tick (JSON Lines), so a script can follow a long-running schedule.
    if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else note(`weft schedule: tick ${r.tick} at ${r.at}: ${r.outcome}${r.run_id !== undefined ? ` (run ${r.run_id}, ${r.jobs} job(s))` : ''}${r.message ? `: ${r.message}` : ''}`);
  };

  const tick = async (n: number): Promise<void> => {
    const at = new Date().toISOString();
    try {
      const workflow = await requireWorkflow(client, key);
      const dry = await restartWorkflow(client, workflow, { dryRun: true, ...(opts.ignoreMissingData ? { ignoreMissingData: true } : {}) });
      if (dry.will_run.length === 0) return report({ tick: n, at, outcome: 'unchanged' });
      const done = await restartWorkflow(client, workflow, opts.ignoreMissingData ? { ignoreMissingData: true } : {});
      current = await scheduler.submit({
        name: `weft-schedule-${key}-${n}`,
        workers,
        worker: {
          url: client.baseUrl,
          workflow: key,
          outputDir,
          pollIntervalSeconds: 1,
          waitForNewJobsSeconds: 30,
          ...(workers > 1 ? { numCpus: Math.max(1, Math.floor(cpus().length / workers)) } : {}),
        },
      });
      await scheduler.wait(current);
      current = undefined;
      const complete = await apiCall(() => client.isComplete(key));
      report({ tick: n, at, outcome: 'rerun', run_id: done.run_id, jobs: done.will_run.length, ...(complete.is_complete ? {} : { message: 'the workers exited before the workflow was complete' }) });
    } catch (err) {
      report({ tick: n, at, outcome: 'error', message: (err as Error).message.split('\n')[0] ?? String(err) });
    }
  };

  const task = cron.schedule(
    opts.cron,
    () => {
      if (stopping) return;
      ticks += 1;
      const n = ticks;
      if (running) {
        report({ tick: n, at: new Date().toISOString(), outcome: 'skipped', message: 'the previous run is still going' });
      } else {
        running = tick(n).finally(() => {
          running = undefined;
        });
      }
      if (maxTicks !== undefined && n >= maxTicks) {
        stopping = true;
        void task.stop();
        void (running ?? Promise.resolve()).then(finish);
      }
    },
    { ...(opts.timezone ? { timezone: opts.timezone } : {}), noOverlap: false },
  );
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    void task.stop();
    void (async () => {
      if (current) await scheduler.cancel(current);
      await running;
      finish();
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (!opts.json) note(`weft schedule: workflow ${key} on "${opts.cron}"${opts.timezone ? ` (${opts.timezone})` : ''}; Ctrl-C stops`);
  await finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}
