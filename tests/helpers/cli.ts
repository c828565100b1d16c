/**
 * Run the real `weft` binary (dist/cli/main.js). `ensureBuilt()` compiles with tsc when the
 * binary is missing or older than a source file, so the suite also works straight after a clone.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEFT_BIN = join(ROOT, 'dist', 'cli', 'main.js');

/** Every source folder the binary runs (the worker and the schedulers too). */
const SOURCE_DIRS = ['cli', 'server', 'graph', 'worker', 'client', 'schedulers'];

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Build dist/ unless the binary is newer than every source file it runs. */
export function ensureBuilt(): void {
  const built = existsSync(WEFT_BIN) ? statSync(WEFT_BIN).mtimeMs : 0;
  const src = Math.max(...SOURCE_DIRS.map((d) => newestSource(join(ROOT, d))));
  if (built >= src) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    // tsc exits non-zero on type errors elsewhere but still emits; only a missing binary is fatal.
    if (!existsSync(WEFT_BIN)) throw err;
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `weft ...args` to completion. */
export function runWeft(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WEFT_BIN, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** process.env without WEFT_* variables (so the developer's settings do not leak into tests). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_') && k !== 'VITEST' && k !== 'NODE_ENV') env[k] = v;
  return { ...env, ...extra };
}

export interface ServerProcess {
  child: ChildProcess;
  /** The API base URL the server printed. */
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Send a signal and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `weft server ...args` and wait until it prints its URL. */
export function startWeftServer(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WEFT_BIN, 'server', ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? cleanEnv({ WEFT_LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`weft server did not start: ${stderr}`));
    }, 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          url: m[1]!,
          stdout: () => stdout,
          stderr: () => stderr,
          stop: async (signal = 'SIGINT') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`weft server exited with ${code}: ${stderr}`));
    });
  });
}
