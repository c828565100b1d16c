/**
 * `weft worker`: run jobs of one workflow on this machine until the workflow is complete or
 * canceled, the worker has been idle long enough, its allocation ends, or it gets SIGTERM/Ctrl-C
 * (then it stops its jobs, reports them terminated and exits 0). Logs go to stderr as JSON lines.
 */
import { Command, Option } from 'commander';
import { resolveUrl } from '../../client/index.js';
import { createWorkerLogger, numberFlag, parseDurationSeconds, runWorker } from '../../worker/index.js';

interface WorkerFlags {
  url?: string;
  workflow?: string;
  outputDir: string;
  maxParallelJobs?: string;
  numCpus?: string;
  memoryGb?: string;
  numGpus?: string;
  timeLimit?: string;
  endTime?: string;
  schedulerConfigId?: string;
  scheduledComputeNodeKey?: string;
  pollIntervalSeconds?: string;
  heartbeatSeconds?: string;
  waitForNewJobsSeconds?: string;
  killGraceSeconds?: string;
  statsIntervalSeconds?: string;
  logLevel?: string;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('Run ready jobs of a workflow on this machine (a compute node)')
    .addOption(new Option('-u, --url <url>', 'server URL with base path [env WEFT_URL] (default http://127.0.0.1:8080/torc-service)'))
    .addOption(new Option('-k, --workflow <key>', 'workflow key [env WEFT_WORKFLOW_KEY]'))
    .option('-o, --output-dir <dir>', 'where job-stdio/<workflow>_<job>_<run>.o/.e go', 'output')
    .option('--max-parallel-jobs <n>', 'never run more than n jobs at once (claims ignore resource requirements)')
    .option('--num-cpus <n>', 'CPUs to offer (default: detected)')
    .option('--memory-gb <x>', 'memory to offer in GiB (default: detected)')
    .option('--num-gpus <n>', 'GPUs to offer (default: nvidia-smi / CUDA_VISIBLE_DEVICES)')
    .option('--time-limit <iso>', 'how long this worker may run, ISO 8601 (e.g. PT2H)')
    .option('--end-time <epoch-seconds>', 'when the allocation ends (default: Slurm)')
    .option('--scheduler-config-id <id>', 'scheduler config _id this worker serves')
    .option('--scheduled-compute-node-key <key>', 'scheduled_compute_nodes key of this allocation')
    .option('--poll-interval-seconds <s>', 'look for new jobs / a cancel this often when idle (default 5)')
    .option('--heartbeat-seconds <s>', 'heartbeat period (default 10)')
    .option('--wait-for-new-jobs-seconds <s>', 'exit after this long with nothing to do (default: workflow config, else 0)')
    .option('--kill-grace-seconds <s>', 'SIGTERM-to-SIGKILL grace for jobs that support termination (default 30)')
    .option('--stats-interval-seconds <s>', 'process-tree sampling period, 0 = off (default 1)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent [env WEFT_LOG_LEVEL] (default info)')
    .action(async (flags: WorkerFlags) => {
      const workflow = flags.workflow ?? process.env['WEFT_WORKFLOW_KEY'];
      if (!workflow) throw new Error('--workflow is required (or set WEFT_WORKFLOW_KEY)');
      if (flags.timeLimit !== undefined) parseDurationSeconds(flags.timeLimit);
      const n = (name: string, v: string | undefined, integer = false, min = 0): number | undefined => numberFlag(name, v, { integer, min });
      const opt = <T>(k: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [k]: v });
      const summary = await runWorker({
        url: resolveUrl(flags.url),
        workflow,
        outputDir: flags.outputDir,
        ...opt('maxParallelJobs', n('--max-parallel-jobs', flags.maxParallelJobs, true, 1)),
        ...opt('numCpus', n('--num-cpus', flags.numCpus, true)),
        ...opt('memoryGb', n('--memory-gb', flags.memoryGb)),
        ...opt('numGpus', n('--num-gpus', flags.numGpus, true)),
        ...opt('timeLimit', flags.timeLimit),
        ...opt('endTime', n('--end-time', flags.endTime)),
        ...opt('schedulerConfigId', flags.schedulerConfigId),
        ...opt('scheduledComputeNodeKey', flags.scheduledComputeNodeKey),
        ...opt('pollIntervalSeconds', n('--poll-interval-seconds', flags.pollIntervalSeconds)),
        ...opt('heartbeatSeconds', n('--heartbeat-seconds', flags.heartbeatSeconds)),
        ...opt('waitForNewJobsSeconds', n('--wait-for-new-jobs-seconds', flags.waitForNewJobsSeconds)),
        ...opt('killGraceSeconds', n('--kill-grace-seconds', flags.killGraceSeconds)),
        ...opt('statsIntervalSeconds', n('--stats-interval-seconds', flags.statsIntervalSeconds)),
        logger: createWorkerLogger(flags.logLevel),
        handleSignals: true,
      });
      process.stderr.write(
        `weft worker: ${summary.reason}; compute node ${summary.computeNodeKey}, run ${summary.runId}: ${summary.started} started, ${summary.done} done, ${summary.failed} failed, ${summary.canceled} canceled, ${summary.terminated} terminated\n`,
      );
    });
}
