/**
 * The sbatch script Weft submits for one allocation: `#SBATCH` directives from a slurm_schedulers
 * document, then a bash body that works out the allocation's resources and end time from the Slurm
 * environment and starts `weft worker` (once, or once per node through srun).
 *
 * Every user value goes through `sbatchToken` (directives) or `shellQuote` (the body).
 */
import { WeftError } from '../graph/errors.js';
import type { SlurmScheduler as SlurmSchedulerDoc } from '../graph/model.js';
import { workerArgs, type WorkerLaunchOptions } from './port.js';
import { assertNoControlChars, sbatchToken, shellJoin, shellQuote, splitArgs } from './shell-quote.js';

export interface SbatchScriptOptions {
  /** The slurm_schedulers document. */
  config: SlurmSchedulerDoc;
  /** Slurm job name (any characters but newlines). */
  jobName: string;
  /** Directory on the cluster for Slurm's stdout/stderr (`slurm_<jobid>.o/.e`) and the job's cwd. */
  workDir: string;
  /** The worker to start; resources left unset are taken from the allocation. */
  worker: WorkerLaunchOptions;
  /** argv prefix that runs the weft CLI on the compute nodes (e.g. `['node', '/opt/weft/dist/cli/main.js']`). */
  weftCommand: readonly string[];
  /** Start one worker on every node through srun. Default false: one worker on the first node. */
  startOneWorkerPerNode?: boolean;
  /** Environment exported before the worker starts. */
  env?: Readonly<Record<string, string>>;
  /**
   * Also mark the scheduled compute node active before the worker and complete after it, through
   * `weft hpc node-status`. Default true when the worker has a scheduledComputeNodeKey.
   */
  markNodeStatus?: boolean;
}

const WALLTIME = /^(?:(\d+)-(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?|(\d+)(?::(\d{1,2})(?::(\d{1,2}))?)?)$/;

/**
 * Seconds in a Slurm time string (`minutes`, `minutes:seconds`, `hours:minutes:seconds`,
 * `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`); null for UNLIMITED/INFINITE.
 * Throws VALIDATION_FAILED naming `walltime` for anything else.
 */
export function parseSlurmWalltime(text: string): number | null {
  const t = text.trim();
  if (/^(unlimited|infinite)$/i.test(t)) return null;
  const m = WALLTIME.exec(t);
  if (m === null) {
    throw new WeftError('VALIDATION_FAILED', `walltime ${JSON.stringify(text)} is not a Slurm time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)`, {
      details: [{ path: ['walltime'], message: 'not a Slurm time', rule: 'format' }],
    });
  }
  const n = (s: string | undefined): number => (s === undefined ? 0 : Number(s));
  if (m[1] !== undefined) return n(m[1]) * 86400 + n(m[2]) * 3600 + n(m[3]) * 60 + n(m[4]);
  if (m[7] !== undefined) return n(m[5]) * 3600 + n(m[6]) * 60 + n(m[7]);
  if (m[6] !== undefined) return n(m[5]) * 60 + n(m[6]);
  return n(m[5]) * 60;
}

/** The `#SBATCH` option tokens (without the `#SBATCH ` prefix) for a scheduler document. */
export function sbatchDirectives(config: SlurmSchedulerDoc, jobName: string, workDir: string): string[] {
  const out: string[] = [];
  const add = (option: string, value: unknown, field: string): void => {
    if (value === undefined || value === null || value === '') return;
    const text = typeof value === 'number' ? String(Math.trunc(value)) : String(value);
    out.push(`--${option}=${sbatchToken(text, field)}`);
  };
  add('job-name', jobName, 'name');
  add('account', config.account, 'account');
  if (config.walltime) parseSlurmWalltime(config.walltime);
  add('time', config.walltime, 'walltime');
  add('chdir', workDir, 'workDir');
  add('output', `${workDir}/slurm_%j.o`, 'workDir');
  add('error', `${workDir}/slurm_%j.e`, 'workDir');
  add('nodes', config.nodes, 'nodes');
  add('partition', config.partition, 'partition');
  add('qos', config.qos, 'qos');
  add('gres', config.gres, 'gres');
  add('mem', config.mem, 'mem');
  add('tmp', config.tmp, 'tmp');
  add('ntasks-per-node', config.ntasks_per_node, 'ntasks_per_node');
  if (config.extra) {
    for (const token of splitArgs(config.extra, 'extra')) {
      if (!token.startsWith('-')) {
        throw new WeftError('VALIDATION_FAILED', `extra may hold only sbatch options; ${JSON.stringify(token)} is not an option`, {
          details: [{ path: ['extra'], message: `${token} is not an sbatch option`, rule: 'option' }],
        });
      }
      out.push(sbatchToken(token, 'extra'));
    }
  }
  return out;
}

/** The whole script text. */
export function buildSbatchScript(opts: SbatchScriptOptions): string {
  const { config, worker } = opts;
  if (opts.weftCommand.length === 0) throw new WeftError('VALIDATION_FAILED', 'weftCommand must not be empty');
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new WeftError('VALIDATION_FAILED', `Invalid environment variable name ${JSON.stringify(k)}`);
    assertNoControlChars(v, `env.${k}`);
  }
  const walltimeSeconds = config.walltime ? parseSlurmWalltime(config.walltime) : null;
  const lines: string[] = ['#!/bin/bash'];
  for (const d of sbatchDirectives(config, opts.jobName, opts.workDir)) lines.push(`#SBATCH ${d}`);
  lines.push(
    '',
    '# Written by Weft. Every value below that came from a user is single-quoted.',
    'set -u',
  );
  for (const [k, v] of Object.entries(opts.env ?? {})) lines.push(`export ${k}=${shellQuote(v)}`);
  lines.push(
    `export WEFT_URL=${shellQuote(worker.url)}`,
    `export WEFT_WORKFLOW_KEY=${shellQuote(worker.workflow)}`,
    '',
    '# When the allocation ends: Slurm\'s own end time, else start + walltime.',
    'WEFT_END_TIME=""',
    'if command -v squeue >/dev/null 2>&1; then',
    '  weft_end_text=$(squeue -h -j "$SLURM_JOB_ID" -o %e 2>/dev/null | head -n 1)',
    '  case "$weft_end_text" in',
    '    [0-9][0-9][0-9][0-9]-*) WEFT_END_TIME=$(date -d "$weft_end_text" +%s 2>/dev/null || true) ;;',
    '  esac',
    'fi',
  );
  if (walltimeSeconds !== null) lines.push(`if [ -z "$WEFT_END_TIME" ]; then WEFT_END_TIME=$(( $(date +%s) + ${walltimeSeconds} )); fi`);
  lines.push(
    'export WEFT_END_TIME',
    '',
    '# Resources of this allocation, unless the scheduler was told them.',
    'weft_args=()',
    'if [ -n "$WEFT_END_TIME" ]; then weft_args+=(--end-time "$WEFT_END_TIME"); fi',
  );
  if (worker.numCpus === undefined) lines.push('if [ -n "${SLURM_CPUS_ON_NODE:-}" ]; then weft_args+=(--num-cpus "$SLURM_CPUS_ON_NODE"); fi');
  if (worker.memoryGb === undefined) {
    lines.push('if [ -n "${SLURM_MEM_PER_NODE:-}" ]; then weft_args+=(--memory-gb "$(awk -v mb="$SLURM_MEM_PER_NODE" \'BEGIN { printf "%.3f", mb / 1024 }\')"); fi');
  }
  if (worker.numGpus === undefined) {
    lines.push('if [ -n "${SLURM_JOB_GPUS:-}" ]; then weft_args+=(--num-gpus "$(printf %s "$SLURM_JOB_GPUS" | tr , \'\\n\' | grep -c .)"); fi');
  }
  const weft = shellJoin(opts.weftCommand);
  const key = worker.scheduledComputeNodeKey;
  const mark = (opts.markNodeStatus ?? key !== undefined) && key !== undefined;
  const markLine = (status: string): string =>
    `${weft} ${shellJoin(['hpc', 'node-status', '--url', worker.url, '--workflow', worker.workflow, '--key', key ?? '', '--status', status])} --allocation-id "$SLURM_JOB_ID" || echo "weft: could not mark the scheduled compute node ${status}" >&2`;
  lines.push('');
  if (mark) lines.push(markLine('active'));
  // `${a[@]+"${a[@]}"}`: an empty array under `set -u` is an error in bash before 4.4.
  const run = `${weft} ${shellJoin(workerArgs(worker))} \${weft_args[@]+"\${weft_args[@]}"}`;
  lines.push(opts.startOneWorkerPerNode ? `srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 ${run}` : run);
  lines.push('weft_status=$?');
  if (mark) lines.push(markLine('complete'));
  lines.push('exit "$weft_status"', '');
  return lines.join('\n');
}
