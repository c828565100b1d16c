/**
 * Job processes and process-tree sampling with real child processes: output files, return codes
 * (127 for a missing command, -signal), the job's environment, killing a whole tree, and CPU and
 * memory of a tree that includes grandchildren.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobProcess, ProcessTreeSampler, readProcessTable, stdioPaths, treePids } from '../../worker/index.js';
import { mkdirSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'weft-worker-proc-'));
mkdirSync(join(dir, 'job-stdio'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function launch(jobKey: string, command: string, env: NodeJS.ProcessEnv = process.env): JobProcess {
  return new JobProcess({ workflow: 'wf', jobKey, runId: 1, command, outputDir: dir, env });
}

/** Running (a zombie is dead: it only waits for init to reap it). */
async function alive(pid: number): Promise<boolean> {
  const p = (await readProcessTable()).get(pid);
  return p !== undefined && p.state !== 'Z';
}

describe('JobProcess', () => {
  it('writes stdout and stderr to the job files and reports the exit status', async () => {
    const p = launch('out', 'echo hello; echo oops >&2; exit 3');
    const exit = await p.exited;
    expect(exit.returnCode).toBe(3);
    const paths = stdioPaths(dir, 'wf', 'out', 1);
    expect(readFileSync(paths.stdout, 'utf8')).toBe('hello\n');
    expect(readFileSync(paths.stderr, 'utf8')).toBe('oops\n');
  });

  it('a command that does not exist ends with 127 and says so in the .e file', async () => {
    const exit = await launch('missing', 'no-such-command-weft-xyz --flag').exited;
    expect(exit.returnCode).toBe(127);
    expect(readFileSync(stdioPaths(dir, 'wf', 'missing', 1).stderr, 'utf8')).toMatch(/no-such-command-weft-xyz.*not found/);
  });

  it('passes the environment it is given', async () => {
    await launch('env', 'echo "$WEFT_JOB_KEY $CUDA_VISIBLE_DEVICES"', { ...process.env, WEFT_JOB_KEY: 'k1', CUDA_VISIBLE_DEVICES: '1,3' }).exited;
    expect(readFileSync(stdioPaths(dir, 'wf', 'env', 1).stdout, 'utf8')).toBe('k1 1,3\n');
  });

  it('terminate() stops the whole tree: children and grandchildren, even ones that ignore SIGTERM', async () => {
    const p = launch('tree', `trap '' TERM; bash -c "trap '' TERM; sleep 300 & wait" & sleep 300 & echo started; wait`);
    // wait until the tree is up
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length < 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pids = treePids(await readProcessTable(), p.pid!);
    }
    expect(pids.length).toBeGreaterThanOrEqual(4);
    const exit = await p.terminate(300);
    expect(exit.returnCode).toBe(-9); // it ignored SIGTERM, so SIGKILL ended it
    await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids) expect(await alive(pid)).toBe(false);
  });

  it('a job that ends leaves nothing behind in its group', async () => {
    const p = launch('bg', 'sleep 300 & echo $! ; exit 0');
    const exit = await p.exited;
    expect(exit.returnCode).toBe(0);
    const bgPid = Number(readFileSync(stdioPaths(dir, 'wf', 'bg', 1).stdout, 'utf8').trim());
    await new Promise((r) => setTimeout(r, 100));
    expect(await alive(bgPid)).toBe(false);
  });

  it('SIGTERM ends a plain job with return code -15', async () => {
    const p = launch('term', 'sleep 300');
    await new Promise((r) => setTimeout(r, 100));
    expect((await p.terminate(5_000)).returnCode).toBe(-15);
  });
});

describe('ProcessTreeSampler', () => {
  it('counts the CPU and memory of grandchildren', async () => {
    // A grandchild (node, which is certainly here) that burns one core and holds ~64 MiB.
    const p = launch('busy', `bash -c '${process.execPath} -e "const b = Buffer.alloc(64 * 1024 * 1024, 1); const t = Date.now(); while (Date.now() - t < 30000) {} if (b[0] !== 1) process.exit(1)"' ; true`);
    const sampler = new ProcessTreeSampler({ intervalMs: 0 });
    sampler.track('busy', p.pid!);
    await new Promise((r) => setTimeout(r, 700));
    await sampler.sampleOnce(); // includes start-up
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 400));
      await sampler.sampleOnce();
    }
    const stats = sampler.untrack('busy')!;
    await p.terminate(1_000);
    expect(stats.num_samples).toBe(5);
    expect(stats.max_rss).toBeGreaterThan(64 * 1024 * 1024);
    expect(stats.avg_rss).toBeGreaterThan(0);
    // One busy core is 100; the machine is shared, so only check it is clearly counted (the bash
    // parents only wait, so without the grandchild this would be about 0).
    expect(stats.max_cpu_percent).toBeGreaterThan(5);
    expect(stats.avg_cpu_percent).toBeGreaterThan(0);
    expect(stats.avg_cpu_percent).toBeLessThanOrEqual(stats.max_cpu_percent);
  });

  it('gives null for a job never sampled', () => {
    const s = new ProcessTreeSampler({ intervalMs: 0 });
    s.track('x', 999_999_999);
    expect(s.untrack('x')).toBeNull();
  });
});
