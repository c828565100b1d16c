/**
 * The executor port: where scheduler commands (sbatch, squeue, scancel, ...) run and where their
 * scripts are written. `LocalExecutor` runs them on this host; `SshExecutor` on a login node.
 *
 * Commands are always argv arrays. An executor that has to go through a shell (SSH) quotes every
 * word itself; callers never build command strings.
 */
import { WeftError } from '../graph/errors.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status; a command killed by a signal reports 128 + the signal number when known, else -1. */
  code: number;
}

export interface ExecOptions {
  /** Milliseconds before the command is abandoned (and killed where possible). Default 60 000. */
  timeoutMs?: number;
  /** Extra environment for the command. */
  env?: Readonly<Record<string, string>>;
  /** Working directory. */
  cwd?: string;
}

export interface CommandExecutor {
  /** For messages: "this host", "ssh alice@login1:22". */
  readonly description: string;
  /** Run argv[0] with the other elements as its arguments. Resolves for any exit status. */
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Write a file (creating or truncating it), then set its mode (default 0o644). */
  writeFile(path: string, content: string, mode?: number): Promise<void>;
  /** The file's text, or null when it does not exist. */
  readFile(path: string): Promise<string | null>;
  /** Create a directory and its parents. */
  mkdirp(path: string): Promise<void>;
  /** Release connections. The executor may reconnect on the next call. */
  close(): Promise<void>;
}

/** Run and throw SCHEDULER_FAILED (with stderr) when the exit status is not 0. */
export async function runChecked(executor: CommandExecutor, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  const result = await executor.run(argv, options);
  if (result.code !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).slice(0, 2000);
    throw new WeftError('SCHEDULER_FAILED', `${argv[0] ?? ''} failed on ${executor.description} with exit status ${result.code}${said ? `: ${said}` : ''}`, {
      extra: { argv: [...argv], code: result.code, stderr: result.stderr },
    });
  }
  return result;
}

/** Default command timeout in milliseconds. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
