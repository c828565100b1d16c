/**
 * Every example runs as it is through `weft run` (embedded server on a SQLite file, real worker
 * processes, real jobs) in a scratch directory holding a copy of examples/: the README's quick start,
 * with what each example is meant to show checked on the results.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, cleanEnv, ensureBuilt, runWeft, startWeftServer } from '../helpers/cli.js';
import { jsonOf, scratchWithExamples } from './helpers.js';

interface Summary {
  workflow: string;
  run_id: number;
  ok: boolean;
  is_complete: boolean;
  counts: Record<string, number>;
  jobs: { name: string; status: string; outcome: string; return_code: number | null; logs?: { stdout?: string; stderr?: string } }[];
}

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = scratchWithExamples();
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(example: string, ...extra: string[]): ReturnType<typeof runWeft> {
  return runWeft(['run', `examples/${example}`, '--db', join(dir, 'weft.db'), '--json', ...extra], { cwd: dir, env: cleanEnv(), timeoutMs: 110_000 });
}

function byName(s: Summary): Map<string, Summary['jobs'][number]> {
  return new Map(s.jobs.map((j) => [j.name, j]));
}

describe('examples/ through weft run', () => {
  it('every example file is covered here', () => {
    const files = readdirSync(join(ROOT, 'examples')).filter((f) => /\.(ya?ml|json5?)$/.test(f)).sort();
    expect(files).toEqual(['dependencies.yaml', 'diamond.yaml', 'failing.yaml', 'many-jobs.json5', 'resource-classes.yaml', 'user-data.yaml']);
  });

  it('diamond: file dependencies, outputs under output/, exit 0', async () => {
    const res = await run('diamond.yaml');
    expect(res.code, res.stderr).toBe(0);
    const s = jsonOf<Summary>(res);
    expect(s.ok).toBe(true);
    expect(s.counts).toEqual({ succeeded: 4 });
    expect(readFileSync(join(dir, 'output', 'diamond', 'total.txt'), 'utf8').trim()).toBe('total: 5050');
    // The job logs are where the summary says, named by workflow, job and run.
    const post = byName(s).get('postprocess')!;
    expect(readFileSync(post.logs!.stdout!, 'utf8')).toContain('total: 5050');
    expect(post.logs!.stdout).toMatch(new RegExp(`output/job-stdio/${s.workflow}_\\w+_1\\.o$`));
  }, 120_000);

  it('diamond without --json: a readable summary on stdout, progress notes on stderr', async () => {
    const res = await runWeft(['run', 'examples/diamond.yaml', '--db', join(dir, 'weft.db')], { cwd: dir, env: cleanEnv(), timeoutMs: 110_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/all jobs succeeded/);
    expect(res.stdout).toMatch(/succeeded\s+4/);
    expect(res.stderr).toMatch(/created workflow \S+ \(diamond, 4 jobs\)/);
  }, 120_000);

  it('user data: the second job reads the JSON the first stored', async () => {
    const res = await run('user-data.yaml');
    expect(res.code, res.stderr).toBe(0);
    const s = jsonOf<Summary>(res);
    expect(s.counts).toEqual({ succeeded: 2 });
    const out = readFileSync(byName(s).get('report')!.logs!.stdout!, 'utf8');
    expect(out).toMatch(/measure stored: \{"count":\d+,"host":"[^"]+"\}/);
  }, 120_000);

  it('explicit dependencies: blocked_by orders the jobs (read back later through weft server on the same file)', async () => {
    const res = await run('dependencies.yaml');
    expect(res.code, res.stderr).toBe(0);
    const s = jsonOf<Summary>(res);
    expect(s.counts).toEqual({ succeeded: 4 });
    // "Inspect it later": a server on the run's database file, then weft events.
    const server = await startWeftServer(['--db', join(dir, 'weft.db'), '--port', '0'], { cwd: dir });
    try {
      const ev = await runWeft(['events', s.workflow, '--category', 'job', '--json', '--url', server.url], { cwd: dir });
      expect(ev.code, ev.stderr).toBe(0);
      const events = jsonOf<{ type: string; job_name?: string; timestamp: number }[]>(ev);
      const at = (type: string, job: string): number => {
        const e = events.find((x) => x.type === type && x.job_name === job);
        expect(e, `${type} event of ${job}`).toBeDefined();
        return e!.timestamp;
      };
      for (const mid of ['clean', 'index']) {
        expect(at('start', mid)).toBeGreaterThanOrEqual(at('complete', 'fetch'));
        expect(at('start', 'publish')).toBeGreaterThanOrEqual(at('complete', mid));
      }
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('many independent jobs: 200 succeed with two workers sharing the machine', async () => {
    const res = await run('many-jobs.json5', '--workers', '2');
    expect(res.code, res.stderr).toBe(0);
    const s = jsonOf<Summary>(res);
    expect(s.counts).toEqual({ succeeded: 200 });
  }, 120_000);

  it('resource classes: small and large jobs all run', async () => {
    const res = await run('resource-classes.yaml');
    expect(res.code, res.stderr).toBe(0);
    expect(jsonOf<Summary>(res).counts).toEqual({ succeeded: 6 });
  }, 120_000);

  it('failing: non-zero exit, the failure recorded, its dependants canceled, the rest run', async () => {
    const res = await run('failing.yaml');
    expect(res.code).toBe(1);
    const s = jsonOf<Summary>(res);
    expect(s.ok).toBe(false);
    expect(s.is_complete).toBe(true);
    const jobs = byName(s);
    expect(jobs.get('compute')).toMatchObject({ status: 'done', outcome: 'failed', return_code: 3 });
    expect(readFileSync(jobs.get('compute')!.logs!.stderr!, 'utf8')).toContain('something went wrong');
    expect(jobs.get('analyse')!.status).toBe('canceled');
    expect(jobs.get('plot')!.status).toBe('canceled');
    expect(jobs.get('cleanup')).toMatchObject({ outcome: 'succeeded', return_code: 0 });
    expect(jobs.get('independent')).toMatchObject({ outcome: 'succeeded', return_code: 0 });
    // The readable summary lists the failed job with its return code and log path.
    const text = await runWeft(['run', 'examples/failing.yaml', '--db', join(dir, 'weft.db')], { cwd: dir, env: cleanEnv(), timeoutMs: 110_000 });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/compute\s+\S+\s+failed\s+3\s+output\/job-stdio\/\S+\.o\s+output\/job-stdio\/\S+\.e/);
    expect(text.stdout).toMatch(/analyse\s+\S+\s+canceled/);
  }, 120_000);

  it('a job no worker can take is reported instead of waiting forever', async () => {
    writeFileSync(
      join(dir, 'big.yaml'),
      'name: too-big\nresource_requirements:\n  - { name: huge, num_cpus: 4096, memory: 1g, runtime: PT1M }\n' +
        "jobs:\n  - { name: fine, command: 'true' }\n  - { name: huge, command: 'true', resource_requirements: huge }\n  - { name: after, command: 'true', blocked_by: [huge] }\n",
    );
    const res = await runWeft(['run', 'big.yaml', '--db', join(dir, 'weft.db'), '--stall-seconds', '3', '--json'], { cwd: dir, env: cleanEnv(), timeoutMs: 110_000 });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/2 job\(s\) cannot run: 1 ready job\(s\) were taken by no worker/);
    const s = jsonOf<Summary>(res);
    expect(s.counts).toEqual({ succeeded: 1, blocked: 1, ready: 1 });
  }, 120_000);
});
