/**
 * The long way round, every piece a real process: `weft server` on a SQLite file, `weft workflows
 * create/start`, two `weft worker` processes, then the inspection commands (status, jobs list,
 * results, reports, events, graph --render svg, jobs logs), a restart that reruns only what a
 * deleted output affects, events --follow, cancel of a running workflow, reset-status --failed-only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, ensureBuilt, runWeft, startWeftServer, WEFT_BIN, type RunResult, type ServerProcess } from '../helpers/cli.js';
import { jsonOf, scratchWithExamples } from './helpers.js';

let dir: string;
let server: ServerProcess;
let url: string[];
const out = (): string => join(dir, 'worker-out');

beforeAll(async () => {
  ensureBuilt();
  dir = scratchWithExamples('weft-e2e-server-');
  server = await startWeftServer(['--db', join(dir, 'weft.db'), '--port', '0'], { cwd: dir });
  url = ['--url', server.url];
}, 180_000);
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function weft(...args: string[]): Promise<RunResult> {
  return runWeft([...args, ...url], { cwd: dir, env: cleanEnv({ WEFT_LOG_LEVEL: 'warn' }), timeoutMs: 60_000 });
}

async function ok(...args: string[]): Promise<RunResult> {
  const res = await weft(...args);
  expect(res.code, `weft ${args.join(' ')}\n${res.stderr}`).toBe(0);
  return res;
}

function worker(key: string, ...extra: string[]): Promise<RunResult> {
  return runWeft(['worker', '--workflow', key, '--output-dir', out(), '--poll-interval-seconds', '1', ...extra, ...url], {
    cwd: dir,
    env: cleanEnv({ WEFT_LOG_LEVEL: 'warn' }),
    timeoutMs: 90_000,
  });
}

function hasDot(): boolean {
  return spawnSync('dot', ['-V'], { stdio: 'ignore' }).status === 0;
}

async function create(example: string): Promise<string> {
  const res = await ok('workflows', 'create', `examples/${example}`, '--json');
  return jsonOf<{ _key: string }>(res)._key;
}

type JobRow = { _key: string; name: string; status: string; result: { return_code: number; run_id: number } | null };

async function jobs(key: string): Promise<Map<string, JobRow>> {
  return new Map(jsonOf<JobRow[]>(await ok('jobs', 'list', key, '--json')).map((j) => [j.name, j]));
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe('weft server + workflows + workers', () => {
  let key: string;

  it('create, start, two workers run the diamond to completion', async () => {
    key = await create('diamond.yaml');
    const start = jsonOf<{ run_id: number; ready_jobs: number }>(await ok('workflows', 'start', key, '--json'));
    expect(start).toEqual({ workflow: key, run_id: 1, ready_jobs: 1 });
    const [a, b] = await Promise.all([worker(key), worker(key)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const status = jsonOf<{ is_complete: boolean; status_counts: Record<string, number>; outcome_counts: Record<string, number> }>(await ok('workflows', 'status', key, '--json'));
    expect(status.is_complete).toBe(true);
    expect(status.status_counts['done']).toBe(4);
    expect(status.outcome_counts).toEqual({ succeeded: 4 });
    expect(readFileSync(join(dir, 'output', 'diamond', 'total.txt'), 'utf8').trim()).toBe('total: 5050');
  }, 120_000);

  it('status, jobs list, results and reports as tables and JSON', async () => {
    const table = (await ok('workflows', 'status', key)).stdout;
    expect(table).toMatch(/state:\s+complete/);
    expect(table).toMatch(/done\s+4/);
    const list = await jobs(key);
    expect([...list.keys()].sort()).toEqual(['postprocess', 'preprocess', 'work1', 'work2']);
    for (const j of list.values()) expect(j).toMatchObject({ status: 'done', result: { return_code: 0, run_id: 1 } });
    expect((await ok('jobs', 'list', key, '--status', 'done')).stdout).toMatch(/^key\s+name\s+status\s+run\s+rc/);
    const results = jsonOf<{ job_name: string; return_code: number }[]>(await ok('results', key, '--json'));
    expect(results.map((r) => r.job_name).sort()).toEqual(['postprocess', 'preprocess', 'work1', 'work2']);
    const report = jsonOf<{ jobs: { name: string; return_code: number; run_time_seconds: number; stdout: string | null }[] }>(await ok('reports', key, '--json', '--output-dir', out()));
    for (const r of report.jobs) {
      expect(r.return_code).toBe(0);
      expect(r.run_time_seconds).toBeGreaterThanOrEqual(0);
      expect(r.stdout && existsSync(r.stdout)).toBe(true);
    }
    expect((await ok('reports', key, '--output-dir', out())).stdout).toMatch(/peak mem/);
    expect((await ok('jobs', 'logs', key, 'postprocess', '--output-dir', out())).stdout).toBe('total: 5050\n');
    expect((await ok('jobs', 'show', key, 'postprocess')).stdout).toMatch(/blocked by:\s+(work1, work2|work2, work1)/);
  }, 120_000);

  it('events and graphs', async () => {
    const events = jsonOf<{ category: string; type: string; job_name?: string }[]>(await ok('events', key, '--json'));
    expect(events.some((e) => e.category === 'workflow' && e.type === 'start')).toBe(true);
    expect(events.filter((e) => e.category === 'job' && e.type === 'complete').map((e) => e.job_name).sort()).toEqual(['postprocess', 'preprocess', 'work1', 'work2']);
    const dot = (await ok('graph', key)).stdout;
    expect(dot).toMatch(/digraph/);
    expect(dot).toContain('"preprocess"');
    const svgFile = join(dir, 'files.svg');
    await ok('graph', key, 'files', '--render', 'svg', '-o', svgFile);
    const svg = readFileSync(svgFile, 'utf8');
    expect(svg).toMatch(/<svg[\s>]/);
    for (const label of ['>preprocess<', '>postprocess<', '>total<', '>needs<', '>produces<']) expect(svg).toContain(label);
    // PNG needs Graphviz's dot: without it on PATH, one line saying so (and that SVG needs nothing).
    const noDot = await runWeft(['graph', key, '--render', 'png', '-o', join(dir, 'g.png'), ...url], { cwd: dir, env: cleanEnv({ PATH: join(dir, 'empty-path') }) });
    expect(noDot.code).not.toBe(0);
    expect(noDot.stderr.trim()).toMatch(/^weft: --render png needs Graphviz's dot program, which is not on PATH .*--render svg works without it$/);
    if (hasDot()) {
      await ok('graph', key, '--render', 'png', '-o', join(dir, 'g.png'));
      expect(readFileSync(join(dir, 'g.png')).subarray(1, 4).toString()).toBe('PNG');
    }
  }, 120_000);

  it('restart reruns only what a deleted output affects; a dry run changes nothing', async () => {
    expect(jsonOf<{ will_run: unknown[] }>(await ok('workflows', 'restart', key, '--dry-run', '--json')).will_run).toEqual([]);
    unlinkSync(join(dir, 'output', 'diamond', 'sum2.txt'));
    const dry = jsonOf<{ will_run: { name: string }[] }>(await ok('workflows', 'restart', key, '--dry-run', '--json'));
    expect(dry.will_run.map((j) => j.name).sort()).toEqual(['postprocess', 'work2']);
    expect([...(await jobs(key)).values()].every((j) => j.status === 'done')).toBe(true);
    const real = jsonOf<{ run_id: number; will_run: { name: string; status: string }[] }>(await ok('workflows', 'restart', key, '--json'));
    expect(real.run_id).toBe(2);
    expect(Object.fromEntries(real.will_run.map((j) => [j.name, j.status]))).toEqual({ work2: 'ready', postprocess: 'blocked' });
    expect((await worker(key)).code).toBe(0);
    const after = await jobs(key);
    expect(after.get('preprocess')!.result!.run_id).toBe(1);
    expect(after.get('work1')!.result!.run_id).toBe(1);
    expect(after.get('work2')!.result).toMatchObject({ run_id: 2, return_code: 0 });
    expect(after.get('postprocess')!.result).toMatchObject({ run_id: 2, return_code: 0 });
    expect(readFileSync(join(dir, 'output', 'diamond', 'sum2.txt'), 'utf8').trim()).toBe('3775');
  }, 120_000);

  it('jobs reset reruns a job and its dependants on restart; a disabled job is skipped', async () => {
    const k = await create('dependencies.yaml');
    await ok('workflows', 'start', k);
    expect((await worker(k)).code).toBe(0);
    expect((await ok('jobs', 'reset', k, 'clean')).stdout).toMatch(/Reset job clean .* to uninitialized/);
    const reset = await jobs(k);
    expect(reset.get('clean')!.status).toBe('uninitialized');
    expect(reset.get('publish')!.status).toBe('uninitialized');
    expect(reset.get('fetch')!.status).toBe('done');
    await ok('workflows', 'restart', k);
    const restarted = await jobs(k);
    expect(restarted.get('clean')!.status).toBe('ready');
    expect(restarted.get('publish')!.status).toBe('blocked');
    expect(restarted.get('index')!.status).toBe('done');
    await ok('jobs', 'disable', k, 'publish');
    expect((await worker(k)).code).toBe(0);
    const after = await jobs(k);
    expect(after.get('clean')!.result).toMatchObject({ run_id: 2, return_code: 0 });
    expect(after.get('publish')!.status).toBe('disabled');
    expect(after.get('index')!.result!.run_id).toBe(1);
    expect(jsonOf<{ is_complete: boolean }>(await ok('workflows', 'status', k, '--json')).is_complete).toBe(true);
  }, 120_000);

  it('weft run --url uses the running server: the workflow stays there to inspect', async () => {
    const res = await runWeft(['run', 'examples/user-data.yaml', '--json', '--output-dir', out(), ...url], { cwd: dir, env: cleanEnv({ WEFT_LOG_LEVEL: 'warn' }), timeoutMs: 90_000 });
    expect(res.code, res.stderr).toBe(0);
    const s = jsonOf<{ workflow: string; ok: boolean; url: string }>(res);
    expect(s.ok).toBe(true);
    expect(s.url).toBe(server.url);
    const listed = jsonOf<{ _key: string; name: string }[]>(await ok('workflows', 'list', '--json'));
    expect(listed.find((w) => w._key === s.workflow)?.name).toBe('user-data');
    expect((await ok('jobs', 'logs', s.workflow, 'report', '--output-dir', out())).stdout).toMatch(/measure stored: \{"count":/);
  }, 120_000);

  it('events --follow prints new events as they happen and stops on Ctrl-C', async () => {
    const child = spawn(process.execPath, [WEFT_BIN, 'events', key, '--follow', '--json', '--interval', '0.3', ...url], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await until(async () => stdout.includes('"type":"start"'), 'the existing events');
      const before = stdout.split('\n').filter(Boolean).length;
      await ok('workflows', 'restart', key); // adds a restart event (nothing to rerun)
      await until(async () => stdout.includes('"type":"restart"') && stdout.split('\n').filter(Boolean).length > before, 'the restart event');
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { _key: string });
      expect(new Set(lines.map((l) => l._key)).size).toBe(lines.length); // nothing printed twice
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 120_000);

  it('cancel stops a running workflow: its worker exits and the job is not left running', async () => {
    const spec = join(dir, 'slow.yaml');
    writeFileSync(spec, 'name: slow\njobs:\n  - { name: sleeper, command: sleep 60 }\n  - { name: next, command: "true", blocked_by: [sleeper] }\n');
    const k = jsonOf<{ _key: string }>(await ok('workflows', 'create', spec, '--json'))._key;
    await ok('workflows', 'start', k);
    const w = worker(k);
    await until(async () => (await jobs(k)).get('sleeper')!.status === 'submitted', 'the job to start');
    const cancel = await ok('workflows', 'cancel', k);
    expect(cancel.stdout).toMatch(new RegExp(`Canceled workflow ${k}`));
    const res = await w;
    expect(res.code, res.stderr).toBe(0);
    const after = await jobs(k);
    expect(['canceled', 'terminated']).toContain(after.get('sleeper')!.status);
    expect(jsonOf<{ is_canceled: boolean }>(await ok('workflows', 'status', k, '--json')).is_canceled).toBe(true);
  }, 120_000);

  it('reset-status --failed-only with --restart readies the failed job and blocks its dependants again', async () => {
    const k = await create('failing.yaml');
    await ok('workflows', 'start', k);
    expect((await worker(k)).code).toBe(0);
    const failed = await jobs(k);
    expect(failed.get('compute')).toMatchObject({ status: 'done', result: { return_code: 3 } });
    expect((await ok('jobs', 'list', k)).stdout).toMatch(/compute\s+done \(failed\)\s+1\s+3/);
    await ok('workflows', 'reset-status', k, '--failed-only', '--restart');
    const again = await jobs(k);
    expect(again.get('compute')!.status).toBe('ready');
    expect(again.get('analyse')!.status).toBe('blocked');
    expect(again.get('independent')!.status).toBe('done');
    await ok('workflows', 'delete', k);
    expect((await weft('workflows', 'status', k)).code).not.toBe(0);
  }, 120_000);
});
