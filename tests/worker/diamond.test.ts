/**
 * The worker in-process against a real server: a diamond of file dependencies runs to completion
 * with the files written by the jobs; the job's environment; process stats stored and linked.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWorker } from '../../worker/index.js';
import { testServerForSuite } from '../helpers/server.js';
import { jobsByName, resultsFor, startedWorkflow, tempDirForSuite } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite();

function diamond(d: string): Record<string, unknown> {
  const f = (n: string): string => join(d, n);
  return {
    name: 'diamond',
    files: ['in', 'f1', 'f2', 'f3', 'f4', 'f5'].map((n) => ({ name: n, path: f(n) })),
    jobs: [
      { name: 'pre', command: `cat ${f('in')} > ${f('f1')}; echo pre >> ${f('f1')}; cp ${f('f1')} ${f('f2')}`, input_files: ['in'], output_files: ['f1', 'f2'] },
      { name: 'work1', command: `(cat ${f('f1')}; echo work1) > ${f('f3')}`, input_files: ['f1'], output_files: ['f3'] },
      { name: 'work2', command: `(cat ${f('f2')}; echo work2) > ${f('f4')}`, input_files: ['f2'], output_files: ['f4'] },
      { name: 'post', command: `cat ${f('f3')} ${f('f4')} > ${f('f5')}`, input_files: ['f3', 'f4'], output_files: ['f5'] },
    ],
  };
}

describe('worker: diamond', () => {
  it('runs every job in dependency order, with results, output files and stdio files', async () => {
    const d = join(dir, 'diamond');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    writeFileSync(join(d, 'in'), 'input\n');
    const { wf, client } = await startedWorkflow(srv.baseUrl, diamond(d));
    const out = join(dir, 'out1');
    const summary = await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: out, numCpus: 4, memoryGb: 4, pollIntervalSeconds: 0.2 });
    expect(summary.reason).toBe('complete');
    expect(summary.done).toBe(4);
    expect(readFileSync(join(d, 'f5'), 'utf8')).toBe('input\npre\nwork1\ninput\npre\nwork2\n');
    const jobs = await jobsByName(client, wf);
    for (const name of ['pre', 'work1', 'work2', 'post']) {
      const job = jobs.get(name)!;
      expect(job['status']).toBe('done');
      const results = await resultsFor(client, wf, job._key);
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ return_code: 0, run_id: 1, status: 'done' });
      expect(Number.isNaN(Date.parse(String(results[0]!['completion_time'])))).toBe(false);
    }
    // output files' mtimes were recorded for change detection
    const files = new Map((await client.list(wf, 'files')).map((f) => [f['name'], f]));
    expect(typeof files.get('f5')!['st_mtime']).toBe('number');
    // the compute node is registered and inactive now, with its duration
    const nodes = await client.list(wf, 'compute_nodes');
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ is_active: false, pid: process.pid, resources: { num_cpus: 4, memory_gb: 4 } });
    expect(nodes[0]!['duration_seconds']).toBeGreaterThan(0);
  });

  it('gives each job its WEFT_* variables and writes stdout/stderr to the job-stdio files', async () => {
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'env',
      jobs: [{ name: 'show', command: 'echo "$WEFT_WORKFLOW_KEY|$WEFT_JOB_KEY|$WEFT_JOB_NAME|$WEFT_RUN_ID|$WEFT_URL"; echo to-err >&2' }],
    });
    const out = join(dir, 'out2');
    await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: out, numCpus: 2, memoryGb: 2 });
    const job = (await jobsByName(client, wf)).get('show')!;
    expect(readFileSync(join(out, 'job-stdio', `${wf}_${job._key}_1.o`), 'utf8')).toBe(`${wf}|${job._key}|show|1|${srv.baseUrl}\n`);
    expect(readFileSync(join(out, 'job-stdio', `${wf}_${job._key}_1.e`), 'utf8')).toBe('to-err\n');
  });

  it('a missing command fails that job (127), a job without its declared output fails (1), the worker goes on', async () => {
    const d = join(dir, 'fail');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'fail',
      files: [{ name: 'never', path: join(d, 'never') }],
      jobs: [
        { name: 'missing', command: 'weft-no-such-command-xyz' },
        { name: 'lazy', command: 'true', output_files: ['never'] },
        { name: 'fine1', command: 'true' },
        { name: 'fine2', command: 'exit 0' },
      ],
    });
    const summary = await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out3'), numCpus: 1, memoryGb: 2 });
    expect(summary.reason).toBe('complete');
    const jobs = await jobsByName(client, wf);
    const rc = async (name: string): Promise<unknown> => (await resultsFor(client, wf, jobs.get(name)!._key))[0]?.['return_code'];
    expect(await rc('missing')).toBe(127);
    expect(await rc('lazy')).toBe(1);
    expect(await rc('fine1')).toBe(0);
    expect(await rc('fine2')).toBe(0);
  });

  it('stores the process stats of a job that ran long enough to be sampled, linked to the job', async () => {
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'stats',
      jobs: [{ name: 'busy', command: `${JSON.stringify(process.execPath)} -e 'const b = Buffer.alloc(32 * 1024 * 1024, 1); const t = Date.now(); while (Date.now() - t < 1500) {} if (b[0] !== 1) process.exit(1)'` }],
    });
    await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out4'), numCpus: 1, memoryGb: 2, statsIntervalSeconds: 0.2 });
    const job = (await jobsByName(client, wf)).get('busy')!;
    const stats = await client.list(wf, 'job_process_stats');
    expect(stats).toHaveLength(1);
    expect(stats[0]).toMatchObject({ job_key: job._key, run_id: 1 });
    expect(stats[0]!['num_samples']).toBeGreaterThan(1);
    expect(stats[0]!['max_rss']).toBeGreaterThan(32 * 1024 * 1024);
    expect(stats[0]!['max_cpu_percent']).toBeGreaterThan(0);
    const edges = await client.list(wf, 'edges/process_used');
    expect(edges).toMatchObject([{ _from: job._id, _to: stats[0]!._id }]);
    const viaJob = await client.request<unknown[]>('GET', `/workflows/${wf}/jobs/${job._key}/process_stats`);
    expect(viaJob).toHaveLength(1);
  });
});
