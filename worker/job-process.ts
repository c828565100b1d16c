/**
 * One job as a child process.
 *
 * - The command runs as `bash -c <command>` (with an invocation script: `bash -c "<script> <command>"`),
 *   so pipes, redirections and variables work as users write them. A command that does not exist
 *   makes bash exit 127: the job fails, the worker goes on.
 * - Its own session and process group (spawn `detached`), so a signal reaches everything the job
 *   started, and nothing the job does reaches the worker.
 * - Prefixed with `setpriv --pdeathsig KILL` where setpriv exists: if the worker is SIGKILLed, the
 *   kernel kills the job too, so a job never runs on after its worker (the lease gives it back).
 * - Started by the worker's launcher (launcher.ts: a bash process that forks cheaply) when one is
 *   given, else spawned directly.
 * - stdout and stderr go to `<output-dir>/job-stdio/<workflow>_<job key>_<run_id>.o` and `.e`,
 *   opened for append: a job given back by a lapsed lease and rerun in the same run keeps both
 *   attempts' output in one place.
 * - Return code: the exit status, or minus the signal number when a signal ended it (-9, -15),
 *   the convention of the reference worker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { shellQuote, type JobLauncher } from './launcher.js';

function signalName(n: number): NodeJS.Signals | null {
  const entry = Object.entries(constants.signals).find(([, v]) => v === n);
  return entry ? (entry[0] as NodeJS.Signals) : null;
}

/** Where a job's stdout and stderr go. */
export function stdioPaths(outputDir: string, workflow: string, jobKey: string, runId: number): { stdout: string; stderr: string } {
  const base = join(outputDir, 'job-stdio', `${safeName(workflow)}_${safeName(jobKey)}_${runId}`);
  return { stdout: `${base}.o`, stderr: `${base}.e` };
}

/** Keys are already [A-Za-z0-9_-] in practice; anything else becomes `_` so a name is one path component. */
function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

let setprivWorks: boolean | undefined;
/** Whether `setpriv --pdeathsig KILL` runs here (util-linux ≥ 2.33 on Linux). */
export function hasPdeathsig(): boolean {
  if (setprivWorks === undefined) {
    if (process.platform !== 'linux') setprivWorks = false;
    else {
      const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 5_000 });
      setprivWorks = r.status === 0;
    }
  }
  return setprivWorks;
}

export interface JobLaunch {
  workflow: string;
  jobKey: string;
  runId: number;
  command: string;
  invocationScript?: string | null | undefined;
  outputDir: string;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Prefix with setpriv --pdeathsig KILL (default: when available). */
  pdeathsig?: boolean;
  /**
   * Start the job through this launcher (see launcher.ts) instead of forking the worker. The
   * variables in `jobEnv` are exported by the job's script; the launcher's own environment is
   * the rest.
   */
  launcher?: JobLauncher;
  jobEnv?: Record<string, string>;
  /** Called with the job's pid once it runs. */
  onStart?: (pid: number) => void;
}

export interface JobExit {
  /** Exit status, or -signal when a signal ended it. */
  returnCode: number;
  signal: NodeJS.Signals | null;
  /** Wall seconds from spawn to exit. */
  seconds: number;
  /** Set when the process could not be started at all. */
  spawnError?: Error;
}

/** A running job. */
export class JobProcess {
  /** The job's pid (= its process group and session); with a launcher, known once it runs. */
  pid: number | undefined;
  readonly exited: Promise<JobExit>;
  readonly startedAt: number;
  private done = false;
  /** Signals sent before the launcher said which pid the job has. */
  private queued: NodeJS.Signals[] = [];

  constructor(launch: JobLaunch) {
    const { stdout, stderr } = stdioPaths(launch.outputDir, launch.workflow, launch.jobKey, launch.runId);
    const script = launch.invocationScript ? `${launch.invocationScript} ${launch.command}` : launch.command;
    this.startedAt = Date.now();
    if (launch.launcher) {
      const exports = Object.entries(launch.jobEnv ?? {})
        .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
        .join('; ');
      this.exited = new Promise<JobExit>((resolve) => {
        launch.launcher!.launch(
          stdout,
          stderr,
          exports === '' ? script : `${exports}\n${script}`,
          (pid) => {
            this.pid = pid;
            launch.onStart?.(pid);
            for (const sig of this.queued) this.signalGroup(sig);
            this.queued = [];
          },
          (status, groupKilled) => {
            this.done = true;
            // Whatever the job left behind in its group (background children) goes with it.
            if (!groupKilled) this.signalGroup('SIGKILL');
            // wait's status: 128+N for signal N.
            const signal = status > 128 && status <= 128 + 64 ? signalName(status - 128) : null;
            resolve({ returnCode: signal ? -(status - 128) : status, signal, seconds: (Date.now() - this.startedAt) / 1000 });
          },
        );
      });
      return;
    }
    const usePdeathsig = launch.pdeathsig ?? hasPdeathsig();
    const [file, args] = usePdeathsig ? ['setpriv', ['--pdeathsig', 'KILL', 'bash', '-c', script]] : ['bash', ['-c', script]];
    const out = openSync(stdout, 'a');
    const err = openSync(stderr, 'a');
    let child: ChildProcess;
    try {
      child = spawn(file, args as string[], { stdio: ['ignore', out, err], env: { ...launch.env, ...(launch.jobEnv ?? {}) }, cwd: launch.cwd, detached: true });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    this.pid = child.pid;
    if (child.pid !== undefined) launch.onStart?.(child.pid);
    this.exited = new Promise<JobExit>((resolve) => {
      child.once('error', (e) => {
        if (child.pid !== undefined) return; // errors after a successful spawn come with an exit too
        this.done = true;
        resolve({ returnCode: 127, signal: null, seconds: (Date.now() - this.startedAt) / 1000, spawnError: e });
      });
      child.once('exit', (code, signal) => {
        this.done = true;
        // Whatever the job left behind in its group (background children) goes with it.
        this.signalGroup('SIGKILL');
        const returnCode = code ?? (signal ? -(constants.signals[signal] ?? 1) : 1);
        resolve({ returnCode, signal, seconds: (Date.now() - this.startedAt) / 1000 });
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Send `signal` to the job's whole process group. */
  signalGroup(signal: NodeJS.Signals): void {
    if (this.pid === undefined) {
      if (!this.done) this.queued.push(signal);
      return;
    }
    try {
      process.kill(-this.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /**
   * SIGTERM the group, then SIGKILL it if the job has not exited within `graceMs`. Resolves with
   * the exit.
   */
  async terminate(graceMs: number): Promise<JobExit> {
    if (this.done) return this.exited;
    this.signalGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.signalGroup('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, forced]);
    clearTimeout(timer);
    return this.exited;
  }
}
