import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalScheduler, defaultCliPath, workerArgs } from '../../schedulers/index.js';

// Until the real worker exists these children are `node -e` scripts that receive the exact worker
// argv, so the test checks what the scheduler passes and how it follows and stops processes.
const echoArgs = `process.stdout.write(JSON.stringify(process.argv.slice(1)) + '\\n' + process.env.WEFT_WORKER_INDEX + '\\n')`;
const sleepForever = `process.on('SIGTERM', () => process.exit(3)); setInterval(() => {}, 1000)`;
const ignoreTerm = `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)`;

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-local-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('LocalScheduler', () => {
  it('starts N workers with the worker flags and reports completion with exit code 0', async () => {
    const dir = tempDir();
    const sched = new LocalScheduler({ command: [process.execPath, '-e', echoArgs], output: { dir } });
    const worker = { url: 'http://127.0.0.1:9/torc-service', workflow: '42', maxParallelJobs: 2, schedulerConfigId: 'local_schedulers/7' };
    const handle = await sched.submit({ worker, workers: 3, name: 'run 1' });
    expect(handle.pids).toHaveLength(3);
    const final = await sched.wait(handle);
    expect(final).toMatchObject({ state: 'complete', exitCode: 0 });
    const logs = readdirSync(dir).sort();
    expect(logs).toEqual(['run_1_0.log', 'run_1_1.log', 'run_1_2.log']);
    const [argvLine, index] = readFileSync(join(dir, 'run_1_2.log'), 'utf8').trim().split('\n');
    expect(JSON.parse(argvLine ?? '')).toEqual(workerArgs(worker));
    expect(index).toBe('2');
    expect(workerArgs(worker)).toEqual([
      'worker', '--url', 'http://127.0.0.1:9/torc-service', '--workflow', '42',
      '--max-parallel-jobs', '2', '--scheduler-config-id', 'local_schedulers/7',
    ]);
  });

  it('reports a failing worker with its exit code', async () => {
    const sched = new LocalScheduler({ command: [process.execPath, '-e', 'process.exit(process.env.WEFT_WORKER_INDEX === "1" ? 7 : 0)'], output: 'ignore' });
    const handle = await sched.submit({ worker: { url: 'u', workflow: 'w' }, workers: 2 });
    expect(await sched.wait(handle)).toMatchObject({ state: 'failed', exitCode: 7 });
  });

  it('reports running workers and stops them on cancel', async () => {
    const sched = new LocalScheduler({ command: [process.execPath, '-e', sleepForever], output: 'ignore' });
    const handle = await sched.submit({ worker: { url: 'u', workflow: 'w' }, workers: 2 });
    expect((await sched.status(handle)).state).toBe('running');
    await sched.cancel(handle);
    expect((await sched.status(handle)).state).toBe('canceled');
    for (const pid of handle.pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('kills a worker that ignores SIGTERM after the grace period', async () => {
    const sched = new LocalScheduler({ command: [process.execPath, '-e', ignoreTerm], output: 'ignore', killGraceMs: 300 });
    const handle = await sched.submit({ worker: { url: 'u', workflow: 'w' } });
    await new Promise((r) => setTimeout(r, 200)); // let the child install its handler
    await sched.cancel(handle);
    expect((await sched.status(handle)).state).toBe('canceled');
    expect(() => process.kill(handle.pids[0] ?? -1, 0)).toThrow();
  });

  it('rejects a non-positive worker count and an unknown handle is unknown', async () => {
    const sched = new LocalScheduler({ command: [process.execPath, '-e', ''] });
    await expect(sched.submit({ worker: { url: 'u', workflow: 'w' }, workers: 0 })).rejects.toThrow(/workers must be a positive integer/);
    expect((await sched.status({ kind: 'local', id: 'nope', pids: [] })).state).toBe('unknown');
  });

  it('finds the compiled CLI at dist/cli/main.js from the sources', () => {
    expect(defaultCliPath()).toMatch(/\/dist\/cli\/main\.js$/);
  });
});
