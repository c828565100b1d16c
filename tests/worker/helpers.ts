/**
 * Helpers for the worker's integration tests: a started workflow on a real test server, the real
 * `weft worker` binary as a child process, and reads of jobs and results.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';
import { WeftClient, type Doc } from '../../client/index.js';

export const CLI = resolve('dist/cli/main.js');

/** Create a workflow from `spec`, bump run_id to 1 and initialize its jobs (the start sequence, minus the CLI's checks). */
export async function startedWorkflow(baseUrl: string, spec: Record<string, unknown>): Promise<{ wf: string; client: WeftClient }> {
  const client = new WeftClient(baseUrl, { retryMinutes: 0.2 });
  const created = await client.createWorkflowFromSpec(spec);
  const wf = created._key;
  const st = await client.getWorkflowStatus(wf);
  await client.putWorkflowStatus(wf, { ...st, run_id: st.run_id + 1 });
  await client.initializeJobs(wf, { only_uninitialized: false });
  return { wf, client };
}

export function tempDir(prefix = 'weft-worker-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A temp dir for the tests of the calling scope (a file, or a describe block), made now and
 * deleted in afterAll. Call it before testServerForSuite to have it deleted after the server closes.
 */
export function tempDirForSuite(prefix?: string): string {
  const dir = tempDir(prefix);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function jobsByName(client: WeftClient, wf: string): Promise<Map<string, Doc>> {
  return new Map((await client.list(wf, 'jobs')).map((j) => [String(j['name']), j]));
}

export async function resultsFor(client: WeftClient, wf: string, jobKey: string): Promise<Doc[]> {
  return client.list(wf, 'results', { job_key: jobKey });
}

export interface CliWorker {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

/** SIGKILL every worker a test started that is still running (after a failed test). */
export function killStrayWorkers(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  started.clear();
}

/** Start `weft worker` (the built binary) with these arguments. */
export function startCliWorker(args: string[], env: NodeJS.ProcessEnv = {}): CliWorker {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.json)`);
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { env: { ...process.env, WEFT_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  return { child, stderr: () => err, exited };
}

/** Poll `check` until it returns a value (not a timing assertion: it only bounds how long a test waits). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Pids of running (not zombie) processes whose argv is exactly `argv` (e.g. ['sleep', '312.5']). */
export async function processesWith(...argv: string[]): Promise<number[]> {
  const marker = argv.join('\0') + '\0';
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const n of await readdir('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const cmd = await readFile(`/proc/${n}/cmdline`, 'utf8');
      if (cmd !== marker) continue;
      const stat = await readFile(`/proc/${n}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      out.push(Number(n));
    } catch {
      /* gone */
    }
  }
  return out;
}
