/**
 * POST /workflow_specifications over HTTP on a real server and SQLite file: JSON, JSON5 and YAML
 * bodies give the same workflow; the order of jobs does not matter; names become the right edges;
 * documents are stored as the single-document routes store them; a 20,000-job spec creates.
 */
import JSON5 from 'json5';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { api, testServerForSuite } from '../helpers/server.js';

const srv = testServerForSuite();

const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => api(srv.baseUrl, method, path, body, headers);

async function ok(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> {
  const res = await call(method, path, body, headers);
  expect(res.status, `${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`).toBe(200);
  return res.body;
}

/** A spec that uses every kind of reference. */
function fullSpec(): any {
  return {
    name: 'full',
    user: 'tester',
    description: 'every reference kind',
    files: [
      { name: 'in', path: 'data/in.txt' },
      { name: 'mid', path: 'data/mid.txt' },
      { name: 'out', path: 'data/out.txt' },
    ],
    user_data: [
      { name: 'params', data: { alpha: 1 } },
      { name: 'summary', is_ephemeral: true },
    ],
    resource_requirements: [
      { name: 'small', num_cpus: 1, memory: '1g', runtime: 'PT10M' },
      { name: 'gpu', num_cpus: 4, num_gpus: 1, memory: '16g', runtime: 'P0DT2H' },
    ],
    schedulers: {
      local_schedulers: [{ name: 'here' }],
      slurm_schedulers: [{ name: 'debug', account: 'acct', nodes: 2, walltime: '01:00:00' }],
      aws_schedulers: [],
    },
    jobs: [
      { name: 'prep', command: 'prep.sh', input_files: ['in'], output_files: ['mid'], input_user_data: ['params'], resource_requirements: 'small', scheduler: 'local_schedulers/here' },
      { name: 'train', command: 'train.sh', input_files: ['mid'], output_user_data: ['summary'], resource_requirements: 'gpu', scheduler: 'slurm_schedulers/debug', supports_termination: true },
      { name: 'report', command: 'report.sh', input_user_data: ['summary'], output_files: ['out'], cancel_on_blocking_job_failure: false, invocation_script: 'bash -c' },
      { name: 'cleanup', command: 'cleanup.sh', blocked_by: ['report', 'prep'] },
    ],
    config: { compute_node_wait_for_new_jobs_seconds: 30, compute_node_resource_stats: { process: true, interval: 1 } },
  };
}

/** Every edge of the workflow as `edge: from-name -> to-name`, sorted. */
async function edgesByName(wf: string): Promise<string[]> {
  const names = new Map<string, string>();
  for (const c of ['jobs', 'files', 'user_data', 'resource_requirements', 'local_schedulers', 'slurm_schedulers']) {
    for (const d of (await ok('GET', `/workflows/${wf}/${c}`)).items) names.set(d._id, d.name);
  }
  const out: string[] = [];
  for (const e of ['blocks', 'needs', 'produces', 'consumes', 'stores', 'requires', 'scheduled_bys']) {
    for (const d of (await ok('GET', `/workflows/${wf}/edges/${e}`)).items) out.push(`${e}: ${names.get(d._from)} -> ${names.get(d._to)}`);
  }
  return out.sort();
}

const EXPECTED_EDGES = [
  'blocks: prep -> cleanup',
  'blocks: report -> cleanup',
  'consumes: prep -> params',
  'consumes: report -> summary',
  'needs: prep -> in',
  'needs: train -> mid',
  'produces: prep -> mid',
  'produces: report -> out',
  'requires: prep -> small',
  'requires: train -> gpu',
  'scheduled_bys: prep -> here',
  'scheduled_bys: train -> debug',
  'stores: train -> summary',
];

describe('POST /workflow_specifications', () => {
  it('creates the workflow, its documents and the edges named in the spec (JSON)', async () => {
    const wf = await ok('POST', '/workflow_specifications', fullSpec());
    expect(wf).toMatchObject({ name: 'full', user: 'tester', description: 'every reference kind', is_archived: false });
    expect(typeof wf.timestamp).toBe('string');
    expect(await ok('GET', `/workflows/${wf._key}`)).toEqual(wf);
    expect(await edgesByName(wf._key)).toEqual(EXPECTED_EDGES);

    const jobs = (await ok('GET', `/workflows/${wf._key}/jobs`)).items;
    expect(jobs.map((j: any) => j.status)).toEqual(['uninitialized', 'uninitialized', 'uninitialized', 'uninitialized']);
    const report = jobs.find((j: any) => j.name === 'report');
    expect(report).toMatchObject({ command: 'report.sh', cancel_on_blocking_job_failure: false, supports_termination: false, invocation_script: 'bash -c' });
    // relationship fields are edges, not fields
    for (const f of ['input_files', 'output_files', 'input_user_data', 'blocked_by', 'resource_requirements', 'scheduler']) expect(report).not.toHaveProperty(f);

    const rr = (await ok('GET', `/workflows/${wf._key}/resource_requirements`)).items.find((r: any) => r.name === 'small');
    expect(rr).toMatchObject({ num_cpus: 1, num_gpus: 0, num_nodes: 1, memory: '1g', runtime: 'PT10M' });
    const slurm = (await ok('GET', `/workflows/${wf._key}/slurm_schedulers`)).items[0];
    expect(slurm).toMatchObject({ name: 'debug', account: 'acct', nodes: 2, qos: 'normal' });
    const config = await ok('GET', `/workflows/${wf._key}/config`);
    expect(config).toMatchObject({ compute_node_wait_for_new_jobs_seconds: 30, compute_node_expiration_buffer_seconds: 120, prepare_jobs_sort_method: 'gpus_runtime_memory' });
    // nested merge: the spec's two stats fields over the defaults
    expect(config.compute_node_resource_stats).toMatchObject({ process: true, interval: 1, cpu: true, memory: true, monitor_type: 'aggregation' });
    expect(await ok('GET', `/workflows/${wf._key}/status`)).toMatchObject({ run_id: 0, is_canceled: false });
  });

  it('JSON5 and YAML bodies give the same workflow as JSON', async () => {
    const json5 = JSON5.stringify(fullSpec(), null, 2).replace('{', '{\n  // a comment JSON would refuse\n');
    const fromJson5 = await ok('POST', '/workflow_specifications', json5, { 'content-type': 'application/json5' });
    expect(await edgesByName(fromJson5._key)).toEqual(EXPECTED_EDGES);
    for (const type of ['application/yaml', 'text/yaml', 'application/x-yaml; charset=utf-8']) {
      const fromYaml = await ok('POST', '/workflow_specifications', `# a spec\n${YAML.stringify(fullSpec())}`, { 'content-type': type });
      expect(fromYaml.name).toBe('full');
      expect(await edgesByName(fromYaml._key)).toEqual(EXPECTED_EDGES);
    }
  });

  it('the order of jobs does not matter: reversed, blockers after the jobs they block', async () => {
    const spec = fullSpec();
    spec.jobs.reverse();
    const wf = await ok('POST', '/workflow_specifications', spec);
    expect(await edgesByName(wf._key)).toEqual(EXPECTED_EDGES);
    // a chain written last-first
    const chain = { name: 'chain', jobs: ['d', 'c', 'b', 'a'].map((n, i, all) => ({ name: n, command: `run ${n}`, blocked_by: i < all.length - 1 ? [all[i + 1]] : [] })) };
    const c = await ok('POST', '/workflow_specifications', chain);
    expect(await edgesByName(c._key)).toEqual(['blocks: a -> b', 'blocks: b -> c', 'blocks: c -> d']);
  });

  it('a bare scheduler name that only one scheduler has, the short list names, a workflow key and job keys', async () => {
    const spec = {
      key: 'spec-key-1',
      name: 'short',
      schedulers: { slurm: [{ name: 'gpu_nodes', account: 'a', nodes: 1 }], local: [{ name: 'mine' }] },
      jobs: [
        { name: 'one', key: 'spec-job-1', command: 'x', scheduler: 'gpu_nodes', schedule_compute_nodes: { num_jobs: 2, scheduler_id: 'slurm_schedulers/gpu_nodes' } },
        { name: 'two', command: 'y', scheduler: 'local/mine', blocked_by: ['one'] },
      ],
    };
    const wf = await ok('POST', '/workflow_specifications', spec);
    expect(wf._key).toBe('spec-key-1');
    expect(await edgesByName(wf._key)).toEqual(['blocks: one -> two', 'scheduled_bys: one -> gpu_nodes', 'scheduled_bys: two -> mine']);
    const one = await ok('GET', `/workflows/${wf._key}/jobs/spec-job-1`);
    const slurm = (await ok('GET', `/workflows/${wf._key}/slurm_schedulers`)).items[0];
    // schedule_compute_nodes.scheduler_id names the spec's scheduler; the stored one is its _id
    expect(one.schedule_compute_nodes).toEqual({ num_jobs: 2, scheduler_id: slurm._id, start_one_worker_per_node: false });
    // GET names it as collection/name again, so the spec round-trips
    const back = await ok('GET', `/workflow_specifications/${wf._key}`);
    expect(back.jobs.find((j: any) => j.name === 'one').schedule_compute_nodes.scheduler_id).toBe('slurm_schedulers/gpu_nodes');
    const copy = await ok('POST', '/workflow_specifications', { ...back, jobs: back.jobs.map((j: any) => ({ ...j, name: j.name })) });
    const copySlurm = (await ok('GET', `/workflows/${copy._key}/slurm_schedulers`)).items[0];
    const copyOne = (await ok('GET', `/workflows/${copy._key}/jobs`)).items.find((j: any) => j.name === 'one');
    expect(copyOne.schedule_compute_nodes.scheduler_id).toBe(copySlurm._id);
    // the same key again: 409, and nothing of the second attempt is left
    const before = (await ok('GET', '/workflows')).total_count;
    const again = await call('POST', '/workflow_specifications', { ...spec, jobs: [] });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('DUPLICATE_KEY');
    expect((await ok('GET', '/workflows')).total_count).toBe(before);
  });

  it('GET /workflow_specifications/{key} of a created spec names the same things', async () => {
    const wf = await ok('POST', '/workflow_specifications', fullSpec());
    const back = await ok('GET', `/workflow_specifications/${wf._key}`);
    const train = back.jobs.find((j: any) => j.name === 'train');
    expect(train).toMatchObject({ input_files: ['mid'], output_user_data: ['summary'], resource_requirements: 'gpu', scheduler: 'slurm_schedulers/debug', supports_termination: true });
    expect(back.jobs.find((j: any) => j.name === 'cleanup').blocked_by.sort()).toEqual(['prep', 'report']);
  });

  it('an empty spec and the minimal one create workflows with defaults', async () => {
    const empty = await ok('POST', '/workflow_specifications', {});
    expect(empty).toMatchObject({ name: '', user: '', description: '', is_archived: false });
    expect((await ok('GET', `/workflows/${empty._key}/jobs`)).total_count).toBe(0);
    expect((await ok('GET', `/workflows/${empty._key}/config`)).compute_node_resource_stats.interval).toBe(10);
  });

  it('a 20,000-job spec (fan-out, fan-in through a file) creates whole', async () => {
    const n = 20_000;
    const jobs: any[] = [{ name: 'split', command: 'split', output_files: ['parts'] }];
    for (let i = 0; i < n - 2; i++) jobs.push({ name: `work${i}`, command: `work ${i}`, input_files: ['parts'], output_user_data: [`r${i % 100}`], resource_requirements: 'small' });
    jobs.push({ name: 'join', command: 'join', input_user_data: Array.from({ length: 100 }, (_, i) => `r${i}`) });
    const spec = {
      name: 'big',
      files: [{ name: 'parts', path: 'parts.txt' }],
      user_data: Array.from({ length: 100 }, (_, i) => ({ name: `r${i}` })),
      resource_requirements: [{ name: 'small', memory: '512m', runtime: 'PT5M' }],
      jobs: jobs.reverse(),
    };
    const wf = await ok('POST', '/workflow_specifications', spec);
    expect((await ok('GET', `/workflows/${wf._key}/jobs?limit=1`)).total_count).toBe(n);
    expect((await ok('GET', `/workflows/${wf._key}/edges/needs?limit=1`)).total_count).toBe(n - 2);
    expect((await ok('GET', `/workflows/${wf._key}/edges/stores?limit=1`)).total_count).toBe(n - 2);
    expect((await ok('GET', `/workflows/${wf._key}/edges/requires?limit=1`)).total_count).toBe(n - 2);
    expect((await ok('GET', `/workflows/${wf._key}/edges/consumes?limit=1`)).total_count).toBe(100);
  });
});
