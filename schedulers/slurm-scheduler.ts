/**
 * SlurmScheduler: an allocation is one Slurm batch job that runs `weft worker` against the server.
 * Commands (sbatch, squeue, sacct, scontrol, scancel) go through a CommandExecutor, so the same
 * code drives Slurm on this host or on a login node over SSH.
 */
import { randomBytes } from 'node:crypto';
import { WeftError } from '../graph/errors.js';
import type { SlurmScheduler as SlurmSchedulerDoc } from '../graph/model.js';
import { runChecked, type CommandExecutor } from './executor.js';
import { defaultCliPath } from './local-scheduler.js';
import type { AllocationHandle, AllocationState, AllocationStatus, Scheduler, SchedulerCapabilities, SubmitRequest } from './port.js';
import { buildSbatchScript } from './sbatch-script.js';

export interface SlurmSchedulerOptions {
  executor: CommandExecutor;
  /** The slurm_schedulers document (its `_id` becomes the worker's scheduler config id). */
  config: SlurmSchedulerDoc;
  /** Absolute directory on the cluster for scripts and Slurm output. Created when missing. */
  workDir: string;
  /** argv prefix that runs weft on the compute nodes. Default: this Node and this checkout's CLI. */
  weftCommand?: readonly string[];
  /** One worker per node through srun. Default false. */
  startOneWorkerPerNode?: boolean;
  /** Keep the sbatch scripts after submission. Default false (Slurm keeps its own copy). */
  keepScripts?: boolean;
  /** Environment exported in the batch script before the worker starts. */
  workerEnv?: Readonly<Record<string, string>>;
  /** Further sbatch attempts after a transient failure (Slurm busy, socket timeout). Default 3. */
  submitRetries?: number;
  /** Milliseconds between sbatch attempts. Default 2000. */
  retryDelayMs?: number;
}

export interface SlurmAllocationHandle extends AllocationHandle {
  readonly kind: 'slurm';
  /** The Slurm job id. */
  readonly id: string;
  /** Where the script was written (deleted after submission unless kept). */
  readonly scriptPath: string;
}

const TRANSIENT = /timed out|temporarily|try again|unable to contact|connection refused|slurm_persist_conn|resource temporarily unavailable/i;

/** Slurm job states → allocation states. */
export function mapSlurmState(state: string): AllocationState {
  const s = state.trim().toUpperCase().split(/\s+/)[0] ?? '';
  if (['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'SPECIAL_EXIT'].includes(s)) return 'pending';
  if (['RUNNING', 'COMPLETING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESIZING'].includes(s)) return 'running';
  if (s === 'COMPLETED') return 'complete';
  if (s.startsWith('CANCELLED')) return 'canceled';
  if (['FAILED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'OUT_OF_MEMORY', 'REVOKED'].includes(s)) return 'failed';
  return 'unknown';
}

/** `0:0` (exit:signal) → exit code; a signal gives 128 + signal. */
export function parseSlurmExitCode(text: string | undefined): number | null {
  if (!text) return null;
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) return null;
  const code = Number(m[1]);
  const signal = Number(m[2]);
  return signal > 0 && code === 0 ? 128 + signal : code;
}

/** The job id in `sbatch --parsable` output (`123` or `123;cluster`). */
export function parseSbatchOutput(stdout: string): string {
  const line = stdout.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? '';
  const m = /^(\d+)(?:;\S+)?$/.exec(line.trim());
  if (!m?.[1]) throw new WeftError('SCHEDULER_FAILED', `sbatch --parsable printed no job id: ${JSON.stringify(stdout.slice(0, 500))}`);
  return m[1];
}

export class SlurmScheduler implements Scheduler<SlurmAllocationHandle> {
  readonly capabilities: SchedulerCapabilities = { kind: 'slurm', canCancel: true, reportsExitCode: true, multiNode: true };
  readonly executor: CommandExecutor;
  readonly config: SlurmSchedulerDoc;
  private readonly options: SlurmSchedulerOptions;

  constructor(options: SlurmSchedulerOptions) {
    if (!options.workDir.startsWith('/')) {
      throw new WeftError('VALIDATION_FAILED', `The Slurm work directory must be an absolute path, got ${JSON.stringify(options.workDir)}`, {
        details: [{ path: ['workDir'], message: 'must be absolute', rule: 'absolute' }],
      });
    }
    this.options = options;
    this.executor = options.executor;
    this.config = options.config;
  }

  /** The text of the script `submit` would write for this request (for dry runs and tests). */
  script(request: SubmitRequest): string {
    return buildSbatchScript({
      config: this.config,
      jobName: request.name ?? `weft_${request.worker.workflow}`,
      workDir: this.options.workDir,
      worker: { ...request.worker, schedulerConfigId: request.worker.schedulerConfigId ?? this.config._id },
      weftCommand: this.options.weftCommand ?? [process.execPath, defaultCliPath()],
      startOneWorkerPerNode: this.options.startOneWorkerPerNode ?? (request.workers !== undefined && request.workers > 1),
      env: this.options.workerEnv,
    });
  }

  /** Write the script and `sbatch --parsable` it. Resolves with the Slurm job id. */
  async submit(request: SubmitRequest): Promise<SlurmAllocationHandle> {
    const text = this.script(request);
    const dir = this.options.workDir;
    const base = (request.name ?? `weft_${request.worker.workflow}`).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60);
    const scriptPath = `${dir}/${base}_${Date.now()}_${randomBytes(3).toString('hex')}.sh`;
    await this.executor.mkdirp(dir);
    await this.executor.writeFile(scriptPath, text, 0o700);
    const retries = this.options.submitRetries ?? 3;
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const result = await this.executor.run(['sbatch', '--parsable', scriptPath], { cwd: dir });
      if (result.code === 0) {
        const id = parseSbatchOutput(result.stdout);
        if (!this.options.keepScripts) await this.executor.run(['rm', '-f', '--', scriptPath]).catch(() => undefined);
        return { kind: 'slurm', id, name: request.name, scriptPath };
      }
      lastError = new WeftError('SCHEDULER_FAILED', `sbatch failed on ${this.executor.description} with exit status ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 2000)}`);
      if (!TRANSIENT.test(result.stderr) || attempt === retries) break;
      await new Promise((r) => setTimeout(r, this.options.retryDelayMs ?? 2000));
    }
    if (!this.options.keepScripts) await this.executor.run(['rm', '-f', '--', scriptPath]).catch(() => undefined);
    throw lastError;
  }

  /**
   * squeue (which also lists recently ended jobs), then scontrol for the exit code, then sacct
   * for jobs Slurm no longer holds in memory. Without accounting an old job is `unknown`: the
   * caller falls back to the allocation's own records.
   */
  async status(handle: SlurmAllocationHandle): Promise<AllocationStatus> {
    const id = handle.id;
    const q = await this.executor.run(['squeue', '-h', '--states=all', '-j', id, '-o', '%i|%T|%r']);
    const row = q.code === 0 ? q.stdout.split('\n').map((l) => l.split('|')).find((f) => f[0] === id) : undefined;
    if (row?.[1]) {
      const state = mapSlurmState(row[1]);
      if (state === 'pending' || state === 'running') return { state, detail: `${row[1]}${row[2] && row[2] !== 'None' ? ` (${row[2]})` : ''}` };
      const exitCode = await this.scontrolExitCode(id);
      return { state, exitCode, detail: row[1] };
    }
    const acct = await this.executor.run(['sacct', '-n', '-P', '-X', '-j', id, '-o', 'JobID,State,ExitCode']).catch(() => null);
    if (acct !== null && acct.code === 0) {
      const fields = acct.stdout.split('\n').map((l) => l.split('|')).find((f) => f[0] === id);
      if (fields?.[1]) return { state: mapSlurmState(fields[1]), exitCode: parseSlurmExitCode(fields[2]), detail: fields[1] };
    }
    return { state: 'unknown', detail: `Slurm no longer lists job ${id}${acct === null || acct.code !== 0 ? ' and sacct is not available' : ''}` };
  }

  private async scontrolExitCode(id: string): Promise<number | null> {
    const r = await this.executor.run(['scontrol', '-o', 'show', 'job', id]).catch(() => null);
    if (r === null || r.code !== 0) return null;
    const m = /(?:^|\s)ExitCode=(\d+:\d+)/.exec(r.stdout);
    return parseSlurmExitCode(m?.[1]);
  }

  /** scancel; a job that has already ended is not an error. */
  async cancel(handle: SlurmAllocationHandle): Promise<void> {
    const r = await this.executor.run(['scancel', handle.id]);
    if (r.code !== 0 && !/invalid job id|already completing or completed|job has finished/i.test(r.stderr)) {
      await runChecked(this.executor, ['scancel', handle.id]);
    }
  }
}
