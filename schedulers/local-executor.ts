/** LocalExecutor: scheduler commands on this host, through execFile (argv, no shell). */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { WeftError } from '../graph/errors.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type CommandExecutor, type ExecOptions, type ExecResult } from './executor.js';

export interface LocalExecutorOptions {
  /** Environment added to every command (e.g. SLURM_CONF). */
  env?: Readonly<Record<string, string>>;
  /** Default command timeout in milliseconds. Default 60 000. */
  timeoutMs?: number;
}

export class LocalExecutor implements CommandExecutor {
  readonly description = 'this host';
  private readonly env: Readonly<Record<string, string>>;
  private readonly timeoutMs: number;

  constructor(options: LocalExecutorOptions = {}) {
    this.env = options.env ?? {};
    this.timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  }

  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const [file, ...args] = argv;
    if (file === undefined) return Promise.reject(new WeftError('VALIDATION_FAILED', 'An empty command cannot be run'));
    const timeout = options.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      execFile(
        file,
        args,
        { env: { ...process.env, ...this.env, ...options.env }, cwd: options.cwd, timeout, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
        (error, stdout, stderr) => {
          if (error === null) {
            resolve({ stdout, stderr, code: 0 });
            return;
          }
          const e = error as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: NodeJS.Signals | null };
          if (typeof e.code === 'string') {
            const why = e.code === 'ENOENT' ? `${file} was not found on this host (is it installed and on PATH?)` : `${file} could not be started: ${e.message}`;
            reject(new WeftError('SCHEDULER_FAILED', why, { cause: error }));
          } else if (e.killed && e.signal) {
            reject(new WeftError('SCHEDULER_FAILED', `${file} did not finish within ${timeout} ms on this host`, { cause: error }));
          } else {
            const signal = e.signal ? osConstants.signals[e.signal] : undefined;
            resolve({ stdout, stderr, code: typeof e.code === 'number' ? e.code : signal !== undefined ? 128 + signal : -1 });
          }
        },
      );
    });
  }

  async writeFile(path: string, content: string, mode = 0o644): Promise<void> {
    await writeFile(path, content, { mode });
    await chmod(path, mode);
  }

  async readFile(path: string): Promise<string | null> {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async mkdirp(path: string): Promise<void> {
    await mkdir(path, { recursive: true });
  }

  async close(): Promise<void> {
    // Nothing is held between calls.
  }
}
