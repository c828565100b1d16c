/**
 * LocalScheduler: an allocation is N `weft worker` child processes on this host (what `weft run`
 * uses). Children are started from an argv array (no shell), with the same Node binary as this
 * process, and are killed on `cancel` or `close`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../graph/errors.js';
import { workerArgs, type AllocationHandle, type AllocationStatus, type Scheduler, type SchedulerCapabilities, type SubmitRequest } from './port.js';

/**
 * The compiled CLI entry (`dist/cli/main.js`), found from this module's own location: from
 * `dist/schedulers/` it is `../cli/main.js`; from the TypeScript sources (tests) it is
 * `<repo>/dist/cli/main.js`.
 */
export function defaultCliPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const parent = dirname(here);
  return basename(parent) === 'dist' ? join(parent, 'cli', 'main.js') : join(parent, 'dist', 'cli', 'main.js');
}

export type LocalWorkerOutput = 'inherit' | 'ignore' | { dir: string };

export interface LocalSchedulerOptions {
  /**
   * The argv prefix that starts the weft CLI; the worker args are appended.
   * Default: `[process.execPath, defaultCliPath()]`.
   */
  command?: readonly string[];
  /** Where worker stdout/stderr go. Default `inherit`; `{dir}` writes `<dir>/<name>_<i>.log`. */
  output?: LocalWorkerOutput;
  /** Extra environment for the workers (merged over this process's environment). */
  env?: Readonly<Record<string, string>>;
  /** Milliseconds between SIGTERM and SIGKILL on cancel. Default 5000. */
  killGraceMs?: number;
}

export interface LocalAllocationHandle extends AllocationHandle {
  readonly kind: 'local';
  /** Pids of the worker processes. */
  readonly pids: readonly number[];
}

interface LocalAllocation {
  children: ChildProcess[];
  exits: (number | null)[];
  signals: (NodeJS.Signals | null)[];
  spawnErrors: (Error | null)[];
  canceled: boolean;
  done: Promise<void>;
}

/** Starts worker processes on this host. */
export class LocalScheduler implements Scheduler<LocalAllocationHandle> {
  readonly capabilities: SchedulerCapabilities = { kind: 'local', canCancel: true, reportsExitCode: true, multiNode: false };

  private readonly command: readonly string[];
  private readonly usesDefaultCli: boolean;
  private readonly output: LocalWorkerOutput;
  private readonly env: Readonly<Record<string, string>>;
  private readonly killGraceMs: number;
  private readonly allocations = new Map<string, LocalAllocation>();
  private nextId = 1;

  constructor(options: LocalSchedulerOptions = {}) {
    this.usesDefaultCli = options.command === undefined;
    this.command = options.command ?? [process.execPath, defaultCliPath()];
    if (this.command.length === 0) throw new WeftError('VALIDATION_FAILED', 'LocalScheduler command must not be empty');
    this.output = options.output ?? 'inherit';
    this.env = options.env ?? {};
    this.killGraceMs = options.killGraceMs ?? 5000;
  }

  /** Start `request.workers` (default 1) worker processes. */
  async submit(request: SubmitRequest): Promise<LocalAllocationHandle> {
    const count = request.workers ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      throw new WeftError('VALIDATION_FAILED', `workers must be a positive integer, got ${String(count)}`, {
        details: [{ path: ['workers'], message: 'must be a positive integer', rule: 'min' }],
      });
    }
    const [file, ...prefix] = this.command as [string, ...string[]];
    if (this.usesDefaultCli && !existsSync(prefix[0] ?? '')) {
      throw new WeftError('SCHEDULER_FAILED', `The weft CLI was not found at ${prefix[0] ?? ''}: run \`npm run build\` first`);
    }
    const id = `local-${process.pid}-${this.nextId++}`;
    const name = request.name ?? id;
    const alloc: LocalAllocation = { children: [], exits: [], signals: [], spawnErrors: [], canceled: false, done: Promise.resolve() };
    const finished: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const args = [...prefix, ...workerArgs(request.worker)];
      const stdio = this.stdioFor(name, i);
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          stdio: ['ignore', stdio, stdio],
          env: { ...process.env, ...this.env, WEFT_WORKER_INDEX: String(i) },
        });
      } finally {
        // The child holds its own copy of the log fd.
        if (typeof stdio === 'number') closeSync(stdio);
      }
      alloc.children.push(child);
      alloc.exits.push(null);
      alloc.signals.push(null);
      alloc.spawnErrors.push(null);
      finished.push(
        new Promise<void>((res) => {
          child.once('error', (err) => {
            alloc.spawnErrors[i] = err;
            res();
          });
          child.once('exit', (code, signal) => {
            alloc.exits[i] = code;
            alloc.signals[i] = signal;
            res();
          });
        }),
      );
    }
    alloc.done = Promise.all(finished).then(() => undefined);
    this.allocations.set(id, alloc);
    return { kind: 'local', id, name, pids: alloc.children.map((c) => c.pid ?? -1) };
  }

  /** 'inherit', 'ignore', or an fd opened for appending to `<dir>/<name>_<i>.log`. */
  private stdioFor(name: string, index: number): 'inherit' | 'ignore' | number {
    if (this.output === 'inherit' || this.output === 'ignore') return this.output;
    mkdirSync(this.output.dir, { recursive: true });
    const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
    return openSync(resolve(this.output.dir, `${safe}_${index}.log`), 'a');
  }

  async status(handle: LocalAllocationHandle): Promise<AllocationStatus> {
    const alloc = this.allocations.get(handle.id);
    if (alloc === undefined) {
      // Started by another process: all we can know is whether its pids are still alive.
      const alive = handle.pids.filter(pidAlive);
      return alive.length > 0
        ? { state: 'running', detail: `${alive.length} of ${handle.pids.length} worker pids alive (started by another process)` }
        : { state: 'unknown', detail: 'not started by this process and no worker pid is alive' };
    }
    const running = alloc.children.filter((c, i) => alloc.exits[i] === null && alloc.signals[i] === null && alloc.spawnErrors[i] === null && c.exitCode === null && c.signalCode === null);
    if (running.length > 0) return { state: 'running', detail: `${running.length} of ${alloc.children.length} workers running` };
    if (alloc.canceled) return { state: 'canceled', exitCode: firstFailure(alloc), detail: 'canceled' };
    const spawnError = alloc.spawnErrors.find((e) => e !== null);
    if (spawnError) return { state: 'failed', exitCode: null, detail: `worker did not start: ${spawnError.message}` };
    const code = firstFailure(alloc);
    if (code !== 0) return { state: 'failed', exitCode: code, detail: describeExits(alloc) };
    return { state: 'complete', exitCode: 0, detail: describeExits(alloc) };
  }

  /** SIGTERM every worker, then SIGKILL the ones still alive after the grace period. */
  async cancel(handle: LocalAllocationHandle): Promise<void> {
    const alloc = this.allocations.get(handle.id);
    if (alloc === undefined) {
      for (const pid of handle.pids.filter(pidAlive)) process.kill(pid, 'SIGTERM');
      return;
    }
    alloc.canceled = true;
    await stopAll(alloc, this.killGraceMs);
  }

  /** Resolves when every worker of the allocation has exited; returns its final status. */
  async wait(handle: LocalAllocationHandle): Promise<AllocationStatus> {
    const alloc = this.allocations.get(handle.id);
    if (alloc === undefined) return { state: 'unknown' };
    await alloc.done;
    return this.status(handle);
  }

  /** Stop every allocation this scheduler started (for shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.allocations.values()].map((a) => stopAll(a, this.killGraceMs)));
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The handle a record's scheduler_id (`local-...:pid,pid`) stands for. */
export function localHandleFromId(schedulerId: string): LocalAllocationHandle {
  const [id = schedulerId, pids = ''] = schedulerId.split(':');
  return { kind: 'local', id, pids: pids.split(',').filter(Boolean).map(Number) };
}

/** The scheduler_id to record for a local allocation: its id and its pids. */
export function localIdOf(handle: LocalAllocationHandle): string {
  return `${handle.id}:${handle.pids.join(',')}`;
}

function firstFailure(alloc: LocalAllocation): number | null {
  for (let i = 0; i < alloc.children.length; i++) {
    if (alloc.signals[i]) return null;
    const code = alloc.exits[i];
    if (code !== null && code !== undefined && code !== 0) return code;
  }
  return alloc.exits.every((c) => c === 0) ? 0 : null;
}

function describeExits(alloc: LocalAllocation): string {
  return alloc.children
    .map((c, i) => `pid ${c.pid ?? '?'}: ${alloc.signals[i] ? `signal ${alloc.signals[i]}` : `exit ${String(alloc.exits[i])}`}`)
    .join(', ');
}

async function stopAll(alloc: LocalAllocation, graceMs: number): Promise<void> {
  const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null && c.pid !== undefined;
  for (const c of alloc.children) if (alive(c)) c.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((res) => {
    timer = setTimeout(() => res('timeout'), graceMs);
  });
  const outcome = await Promise.race([alloc.done.then(() => 'done' as const), timeout]);
  if (timer) clearTimeout(timer);
  if (outcome === 'timeout') {
    for (const c of alloc.children) if (alive(c)) c.kill('SIGKILL');
    await alloc.done;
  }
}
