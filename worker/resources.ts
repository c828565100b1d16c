/**
 * What this compute node offers: CPUs, memory, GPUs and the time left in its allocation. Each is
 * detected from the machine (or Slurm) unless a flag gives it.
 *
 * - CPUs: `os.availableParallelism()` (honours the affinity mask a scheduler set).
 * - Memory: total RAM in GiB.
 * - GPUs: `CUDA_VISIBLE_DEVICES` of the worker when a scheduler set it (the devices this node may
 *   use), else `nvidia-smi --query-gpu=index --format=csv,noheader`; none when neither exists.
 *   `--num-gpus N` overrides the count: the first N detected ids, or 0..N-1 when fewer exist (a
 *   "fake" count, used in tests and when the driver is not visible to the worker).
 * - End of the allocation: `--end-time` (epoch seconds), else Slurm's `SLURM_JOB_END_TIME`, else
 *   `squeue -h -j $SLURM_JOB_ID -o %e`. These are allocation ends, so the worker subtracts the
 *   workflow's `compute_node_expiration_buffer_seconds` from them. `--time-limit` (ISO duration)
 *   is this worker's own lifetime, counted from its start, and is used as is. Both given: the
 *   earlier wins.
 */
import { execFile } from 'node:child_process';
import { availableParallelism, totalmem } from 'node:os';
import { parseDurationSeconds } from './time.js';

/** Values the user gave on the command line; anything left unset is detected. */
export interface ResourceOverrides {
  numCpus?: number;
  memoryGb?: number;
  numGpus?: number;
  /** ISO-8601 duration this worker may run for. */
  timeLimit?: string;
  /** Seconds since the epoch at which the allocation ends. */
  endTime?: number;
}

export interface DetectedResources {
  numCpus: number;
  memoryGb: number;
  /** Device ids to hand out in CUDA_VISIBLE_DEVICES (length = the GPU count). */
  gpuIds: string[];
  /** Epoch ms of the allocation's end (before the expiration buffer), or null. */
  allocationEndMs: number | null;
  /** Epoch ms at which this worker's own --time-limit runs out, or null. */
  timeLimitEndMs: number | null;
  /** Where each value came from, for the log and the compute node document. */
  sources: { cpus: string; memory: string; gpus: string; end: string };
}

/** Runs a program and returns its stdout, or null when it is missing, fails or times out. */
export type ProgramRunner = (file: string, args: string[]) => Promise<string | null>;

export const runProgram: ProgramRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout) => resolve(err ? null : stdout));
  });

export interface DetectOptions {
  env?: NodeJS.ProcessEnv;
  run?: ProgramRunner;
  /** "Now" in epoch ms (tests). */
  now?: number;
}

/** Detect this node's resources, applying the overrides. */
export async function detectResources(overrides: ResourceOverrides = {}, opts: DetectOptions = {}): Promise<DetectedResources> {
  const env = opts.env ?? process.env;
  const run = opts.run ?? runProgram;
  const now = opts.now ?? Date.now();
  const detectedGpus = await detectGpuIds(env, run);
  let gpuIds = detectedGpus.ids;
  let gpuSource = detectedGpus.source;
  if (overrides.numGpus !== undefined) {
    gpuIds = gpuIds.length >= overrides.numGpus ? gpuIds.slice(0, overrides.numGpus) : Array.from({ length: overrides.numGpus }, (_, i) => String(i));
    gpuSource = '--num-gpus';
  }
  let allocationEndMs: number | null = null;
  let endSource = 'none';
  if (overrides.endTime !== undefined) {
    allocationEndMs = overrides.endTime * 1000;
    endSource = '--end-time';
  } else {
    const slurm = await slurmEndTimeMs(env, run);
    if (slurm !== null) {
      allocationEndMs = slurm.ms;
      endSource = slurm.source;
    }
  }
  let timeLimitEndMs: number | null = null;
  if (overrides.timeLimit !== undefined) {
    timeLimitEndMs = now + parseDurationSeconds(overrides.timeLimit) * 1000;
    endSource = endSource === 'none' ? '--time-limit' : `${endSource} and --time-limit`;
  }
  return {
    numCpus: overrides.numCpus ?? availableParallelism(),
    memoryGb: overrides.memoryGb ?? Math.round((totalmem() / 1024 ** 3) * 100) / 100,
    gpuIds,
    allocationEndMs,
    timeLimitEndMs,
    sources: {
      cpus: overrides.numCpus !== undefined ? '--num-cpus' : 'os.availableParallelism',
      memory: overrides.memoryGb !== undefined ? '--memory-gb' : 'os.totalmem',
      gpus: gpuSource,
      end: endSource,
    },
  };
}

/** GPU ids from CUDA_VISIBLE_DEVICES (set by a scheduler) or nvidia-smi. */
export async function detectGpuIds(env: NodeJS.ProcessEnv, run: ProgramRunner): Promise<{ ids: string[]; source: string }> {
  const visible = env['CUDA_VISIBLE_DEVICES']?.trim();
  if (visible !== undefined && visible !== '' && visible !== 'NoDevFiles') {
    const ids = visible.split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== '-1');
    return { ids, source: 'CUDA_VISIBLE_DEVICES' };
  }
  const out = await run('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader']);
  if (out === null) return { ids: [], source: 'none (no nvidia-smi)' };
  return { ids: parseNvidiaSmiIndices(out), source: 'nvidia-smi' };
}

/** The indices printed by `nvidia-smi --query-gpu=index --format=csv,noheader`, one a line. */
export function parseNvidiaSmiIndices(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l));
}

/** The Slurm allocation's end: SLURM_JOB_END_TIME, else squeue's %e for SLURM_JOB_ID. */
export async function slurmEndTimeMs(env: NodeJS.ProcessEnv, run: ProgramRunner): Promise<{ ms: number; source: string } | null> {
  const end = env['SLURM_JOB_END_TIME'];
  if (end !== undefined && /^\d+$/.test(end.trim())) return { ms: Number(end.trim()) * 1000, source: 'SLURM_JOB_END_TIME' };
  const jobId = env['SLURM_JOB_ID'];
  if (jobId === undefined || !/^\d+(_\d+)?$/.test(jobId.trim())) return null;
  const out = await run('squeue', ['-h', '-j', jobId.trim(), '-o', '%e']);
  const ms = out === null ? null : parseSqueueTime(out);
  return ms === null ? null : { ms, source: 'squeue %e' };
}

/** squeue prints `2026-11-23T15:00:00` in local time, or `N/A` / `NONE` / `Unknown` when there is no end. */
export function parseSqueueTime(text: string): number | null {
  const t = text.trim().split('\n')[0]?.trim() ?? '';
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(t)) return null;
  const ms = new Date(t).getTime(); // no offset: local time, as squeue means it
  return Number.isFinite(ms) ? ms : null;
}
