/**
 * The job launcher (launcher.ts) with real processes, for each kind this machine runs: output
 * files, exit status, the job's variables, the pid before the end, SIGPIPE back to its default in
 * jobs, a job's leftover background processes killed when it ends; and for python and perl, the orphan rule:
 * the end of stdin without the orderly-stop record (the worker died) kills the running jobs,
 * while an orderly stop waits for them.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobLauncher, launcherKinds, type LauncherKind } from '../../worker/launcher.js';
import { JobProcess, readProcessTable, stdioPaths } from '../../worker/index.js';
import { waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-worker-launcher-'));
mkdirSync(join(dir, 'job-stdio'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function alive(pid: number): Promise<boolean> {
  const p = (await readProcessTable()).get(pid);
  return p !== undefined && p.state !== 'Z';
}

const kinds: LauncherKind[] = launcherKinds();

describe.each(kinds)('JobLauncher (%s)', (kind) => {
  const started: JobLauncher[] = [];
  afterAll(async () => {
    for (const l of started) await l.stop();
  });
  function launcher(): JobLauncher {
    const l = new JobLauncher();
    l.start(process.env, kind);
    started.push(l);
    return l;
  }
  const run = (l: JobLauncher, key: string, command: string, onStart?: (pid: number) => void): JobProcess =>
    new JobProcess({ workflow: 'wf', jobKey: `${kind}-${key}`, runId: 1, command, outputDir: dir, env: process.env, launcher: l, jobEnv: { WEFT_JOB_KEY: `${kind}-${key}` }, ...(onStart ? { onStart } : {}) });

  it('output files, exit status, the job variables; the pid comes before the end', async () => {
    const l = launcher();
    let pid: number | undefined;
    const p = run(l, 'out', 'echo "hello $WEFT_JOB_KEY"; echo oops >&2; sleep 0.2; exit 3', (x) => (pid = x));
    await waitFor('the pid', async () => pid !== undefined, 5_000);
    expect(await alive(pid!)).toBe(true);
    const exit = await p.exited;
    expect(exit.returnCode).toBe(3);
    const paths = stdioPaths(dir, 'wf', `${kind}-out`, 1);
    expect(readFileSync(paths.stdout, 'utf8')).toBe(`hello ${kind}-out\n`);
    expect(readFileSync(paths.stderr, 'utf8')).toBe('oops\n');
  });

  it('a short job: its pid and its end both arrive, the pid first', async () => {
    const l = launcher();
    const order: string[] = [];
    const p = run(l, 'short', 'true', () => order.push('start'));
    const exit = await p.exited;
    order.push('end');
    expect(exit.returnCode).toBe(0);
    expect(order).toEqual(['start', 'end']);
  });

  it('an output file that cannot be opened: the job does not run and ends with 1', async () => {
    const l = launcher();
    const marker = join(dir, `${kind}-ran`);
    const p = new JobProcess({ workflow: 'wf', jobKey: `${kind}-nodir`, runId: 1, command: `touch ${marker}`, outputDir: join(dir, 'missing'), env: process.env, launcher: l });
    expect((await p.exited).returnCode).toBe(1);
    const { existsSync } = await import('node:fs');
    expect(existsSync(marker)).toBe(false);
  });

  it('jobs get the default SIGPIPE (a writer to a closed pipe dies of it quietly)', async () => {
    const l = launcher();
    const exit = await run(l, 'pipe', 'yes | head -n 1 > /dev/null; echo "${PIPESTATUS[0]}"').exited;
    expect(exit.returnCode).toBe(0);
    const paths = stdioPaths(dir, 'wf', `${kind}-pipe`, 1);
    expect(readFileSync(paths.stdout, 'utf8')).toBe('141\n');
    expect(readFileSync(paths.stderr, 'utf8')).toBe('');
  });

  it('what a job leaves running in its group dies when it ends', async () => {
    const l = launcher();
    const exit = await run(l, 'bg', 'sleep 300 & echo $!').exited;
    expect(exit.returnCode).toBe(0);
    const bg = Number(readFileSync(stdioPaths(dir, 'wf', `${kind}-bg`, 1).stdout, 'utf8').trim());
    await waitFor('the background sleep to die', async () => !(await alive(bg)), 5_000);
  });

  // The python and perl launchers kill their jobs themselves when the worker dies; with the bash
  // launcher the worker's separate reaper does (tests/worker/cli-stop.test.ts), so this case is
  // defined only for the launchers that do it.
  const killsOrphans = kind !== 'bash';
  if (killsOrphans) it('stdin ends without the orderly-stop record (the worker died): running jobs are killed', async () => {
    const l = launcher();
    let pid: number | undefined;
    run(l, 'orphan', 'sleep 300', (x) => (pid = x));
    await waitFor('the pid', async () => pid !== undefined, 5_000);
    (l as unknown as { child: { stdin: NodeJS.WritableStream } }).child.stdin.end();
    await waitFor('the job to die', async () => !(await alive(pid!)), 5_000);
  });

  it('an orderly stop waits for the running jobs', async () => {
    const l = launcher();
    const p = run(l, 'orderly', 'sleep 0.3; echo finished');
    await new Promise((r) => setTimeout(r, 100));
    await l.stop();
    expect((await p.exited).returnCode).toBe(0);
    expect(readFileSync(stdioPaths(dir, 'wf', `${kind}-orderly`, 1).stdout, 'utf8')).toBe('finished\n');
  });
});

/**
 * open(): the first launcher that says it is ready, with nothing probed beforehand. Each one
 * checks what it needs and exits without it; on a PATH that lacks an interpreter the next kind
 * is tried, and with none the worker spawns jobs itself.
 */
describe('JobLauncher.open picks the first launcher that runs', () => {
  const opened: JobLauncher[] = [];
  afterAll(async () => {
    for (const l of opened) await l.stop();
  });
  /** A PATH with only these commands (symlinks to where they are here; one this machine lacks is left out). */
  function pathWith(names: string[]): string {
    const bin = mkdtempSync(join(dir, 'bin-'));
    for (const name of names) {
      const real = spawnSync('bash', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
      if (real !== '') symlinkSync(real, join(bin, name));
    }
    return bin;
  }
  async function open(env: NodeJS.ProcessEnv): Promise<{ l: JobLauncher; kind: LauncherKind | null }> {
    const l = new JobLauncher();
    opened.push(l);
    return { l, kind: await l.open(env) };
  }

  it.runIf(kinds.length > 0)('the preferred kind here, and it runs jobs', async () => {
    const { l, kind } = await open(process.env);
    expect(kind).toBe(kinds[0]);
    expect(l.alive).toBe(true);
    const p = new JobProcess({ workflow: 'wf', jobKey: 'open-1', runId: 1, command: 'echo "$WEFT_JOB_KEY"', outputDir: dir, env: process.env, launcher: l, jobEnv: { WEFT_JOB_KEY: 'open-1' } });
    expect((await p.exited).returnCode).toBe(0);
    expect(readFileSync(stdioPaths(dir, 'wf', 'open-1', 1).stdout, 'utf8')).toBe('open-1\n');
  });

  it.runIf(kinds.includes('perl'))('no python on the PATH: perl', async () => {
    const { l, kind } = await open({ ...process.env, PATH: pathWith(['bash', 'perl', 'setsid']) });
    expect(kind).toBe('perl');
    expect(l.reapsOrphans).toBe(true);
    expect((await new JobProcess({ workflow: 'wf', jobKey: 'open-perl', runId: 1, command: 'exit 4', outputDir: dir, env: process.env, launcher: l }).exited).returnCode).toBe(4);
  });

  it.runIf(kinds.includes('bash'))('neither python nor perl: the bash launcher (and the worker reaps orphans itself)', async () => {
    const { l, kind } = await open({ ...process.env, PATH: pathWith(['bash', 'setsid']) });
    expect(kind).toBe('bash');
    expect(l.reapsOrphans).toBe(false);
    expect((await new JobProcess({ workflow: 'wf', jobKey: 'open-bash', runId: 1, command: 'exit 5', outputDir: dir, env: process.env, launcher: l }).exited).returnCode).toBe(5);
  });

  it('none runs: null, and launches report 127 (the worker then spawns jobs itself)', async () => {
    const { l, kind } = await open({ ...process.env, PATH: pathWith([]) });
    expect(kind).toBeNull();
    expect(l.alive).toBe(false);
  });

  it('WEFT_JOB_LAUNCHER picks one (direct: none)', async () => {
    const saved = process.env['WEFT_JOB_LAUNCHER'];
    try {
      process.env['WEFT_JOB_LAUNCHER'] = 'direct';
      expect((await open(process.env)).kind).toBeNull();
      if (kinds.includes('perl')) {
        process.env['WEFT_JOB_LAUNCHER'] = 'perl';
        expect((await open(process.env)).kind).toBe('perl');
      }
    } finally {
      if (saved === undefined) delete process.env['WEFT_JOB_LAUNCHER'];
      else process.env['WEFT_JOB_LAUNCHER'] = saved;
    }
  });
});
