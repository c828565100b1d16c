/**
 * prepare_jobs_for_submission over HTTP: the worked examples of the reference (section 4.1) and
 * Weft's packing rule (consumed totals, no early stop, limit = jobs returned, multi-node jobs use
 * nodes), sort methods, time limits, GPUs, scheduler binding, canceled workflows, bad input.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { api, testServerForSuite } from '../helpers/server.js';
import { claim, createInitialized, jobs, statusesByName, type Json } from './claims-helpers.js';

const srv = testServerForSuite();
let b: string;

beforeAll(() => {
  b = srv.baseUrl;
});

const W36 = { num_cpus: 36, memory_gb: 92, num_gpus: 0, num_nodes: 1, time_limit: 'PT4H' };

/** The reference's mixed workflow: medium, large (ten bound to the bigmem Slurm scheduler), gpu, short, long. */
async function mixedWorkflow(): Promise<string> {
  return createInitialized(b, {
    name: 'mixed',
    resource_requirements: [
      { name: 'medium', num_cpus: 12, memory: '8g', runtime: 'PT1H' },
      { name: 'large', num_cpus: 18, memory: '16g', runtime: 'PT1H' },
      { name: 'gpu', num_cpus: 1, num_gpus: 1, memory: '32g', runtime: 'PT1H' },
      { name: 'short', num_cpus: 4, memory: '4g', runtime: 'PT30M' },
      { name: 'long', num_cpus: 4, memory: '8g', runtime: 'P1D' },
    ],
    schedulers: { slurm_schedulers: [{ name: 'bigmem', account: 'acct', nodes: 1, walltime: '04:00:00' }] },
    jobs: [
      { name: 'short_job', command: 'true', resource_requirements: 'short' },
      { name: 'medium_job', command: 'true', resource_requirements: 'medium' },
      { name: 'long_job', command: 'true', resource_requirements: 'long' },
      { name: 'gpu_job', command: 'true', resource_requirements: 'gpu' },
      { name: 'large_job_no_scheduler', command: 'true', resource_requirements: 'large' },
      ...jobs('large_job_bigmem_', 10, { resource_requirements: 'large', scheduler: 'slurm_schedulers/bigmem' }),
    ],
  });
}

async function bigmemId(wf: string): Promise<string> {
  const res = await api(b, 'GET', `/workflows/${wf}/slurm_schedulers`);
  return res.body.items[0]._id as string;
}

const names = (r: { jobs: Json[] }) => r.jobs.map((j) => j.name as string);

describe('the reference worked examples', () => {
  it('30 jobs of 4 CPU / 4 GiB and a 36 CPU / 92 GiB worker: 9 jobs (CPUs run out)', async () => {
    const wf = await createInitialized(b, { name: 'cpu', resource_requirements: [{ name: 'rr', num_cpus: 4, memory: '4g', runtime: 'PT30M' }], jobs: jobs('j', 30, { resource_requirements: 'rr' }) });
    const r = await claim(b, wf, W36);
    expect(r.jobs).toHaveLength(9);
    expect(r.reason).toBe('');
    expect(r.jobs.every((j) => j.status === 'submitted_pending')).toBe(true);
    const statuses = [...(await statusesByName(b, wf)).values()];
    expect(statuses.filter((s) => s === 'submitted_pending')).toHaveLength(9);
    expect(statuses.filter((s) => s === 'ready')).toHaveLength(21);
  });

  it('the same jobs and a 200 CPU / 82 GiB worker: 20 jobs (memory runs out)', async () => {
    const wf = await createInitialized(b, { name: 'mem', resource_requirements: [{ name: 'rr', num_cpus: 4, memory: '4g', runtime: 'PT30M' }], jobs: jobs('j', 30, { resource_requirements: 'rr' }) });
    expect((await claim(b, wf, { ...W36, num_cpus: 200, memory_gb: 82 })).jobs).toHaveLength(20);
  });

  it('jobs of 40 and 50 minutes and a 45-minute worker: only the 40-minute job', async () => {
    const wf = await createInitialized(b, {
      name: 'time',
      resource_requirements: [{ name: 'm40', runtime: 'PT40M' }, { name: 'm50', runtime: 'PT50M' }],
      jobs: [{ name: 'short', command: 'true', resource_requirements: 'm40' }, { name: 'medium', command: 'true', resource_requirements: 'm50' }],
    });
    expect(names(await claim(b, wf, { ...W36, time_limit: 'PT45M' }))).toEqual(['short']);
  });

  it('sort none keeps insertion order; the default sort puts the longer runtime first', async () => {
    const spec = {
      name: 'order',
      resource_requirements: [{ name: 'm40', runtime: 'PT40M' }, { name: 'm50', runtime: 'PT50M' }],
      jobs: [{ name: 'short', command: 'true', resource_requirements: 'm40' }, { name: 'medium', command: 'true', resource_requirements: 'm50' }],
    };
    expect(names(await claim(b, await createInitialized(b, spec), W36, 'sort_method=none'))).toEqual(['short', 'medium']);
    expect(names(await claim(b, await createInitialized(b, spec), W36))).toEqual(['medium', 'short']);
    expect(names(await claim(b, await createInitialized(b, spec), W36, 'sort_method=gpus_runtime_memory'))).toEqual(['medium', 'short']);
  });

  it('mixed requirements, 36 CPU / 92 GiB / no GPU / 24 h: the default sort starts with long_job', async () => {
    const wf = await mixedWorkflow();
    const r = await claim(b, wf, { ...W36, time_limit: 'P1D' });
    // runtime first: long (24 h); then the 1 h jobs by memory: large (16g), medium (8g); short no longer fits.
    expect(names(r)).toEqual(['long_job', 'large_job_no_scheduler', 'medium_job']);
    expect(names(r).some((n) => n.startsWith('large_job_bigmem'))).toBe(false);
  });

  it('mixed requirements, gpus_memory_runtime: starts with large_job_no_scheduler (bound large jobs excluded)', async () => {
    const wf = await mixedWorkflow();
    const r = await claim(b, wf, { ...W36, time_limit: 'P1D' }, 'sort_method=gpus_memory_runtime');
    // memory first: large (16g); then long and medium (8g, the longer first); short no longer fits.
    expect(names(r)).toEqual(['large_job_no_scheduler', 'long_job', 'medium_job']);
  });

  it('a 1 CPU / 1 GPU / 1 h worker gets exactly gpu_job', async () => {
    const wf = await mixedWorkflow();
    expect(names(await claim(b, wf, { num_cpus: 1, memory_gb: 64, num_gpus: 1, num_nodes: 1, time_limit: 'PT1H' }))).toEqual(['gpu_job']);
  });

  it('a worker of the bigmem scheduler gets two large jobs, bound and unbound alike', async () => {
    const wf = await mixedWorkflow();
    const id = await bigmemId(wf);
    const r = await claim(b, wf, { ...W36, scheduler_config_id: id });
    expect(names(r)).toEqual(['large_job_no_scheduler', 'large_job_bigmem_0']);
    // The id may also be given Torc-style or as a bare key.
    const key = id.slice(id.indexOf('/') + 1);
    expect(names(await claim(b, wf, { ...W36, scheduler_config_id: `slurm_schedulers__${wf}/${key}` }))).toEqual(['large_job_bigmem_1', 'large_job_bigmem_2']);
    expect(names(await claim(b, wf, { ...W36, scheduler_config_id: key }))).toEqual(['large_job_bigmem_3', 'large_job_bigmem_4']);
  });

  it('a worker with no scheduler never receives bound jobs', async () => {
    const wf = await mixedWorkflow();
    const r = await claim(b, wf, { num_cpus: 1000, memory_gb: 1000, num_gpus: 8, num_nodes: 1, time_limit: null });
    expect(names(r).sort()).toEqual(['gpu_job', 'large_job_no_scheduler', 'long_job', 'medium_job', 'short_job']);
  });
});

describe('Weft packing: consumed totals, no early stop', () => {
  const spec = {
    name: 'skip',
    resource_requirements: [{ name: 'big', num_cpus: 8, memory: '1g', runtime: 'PT2H' }, { name: 'small', num_cpus: 1, memory: '1g', runtime: 'PT30M' }],
    jobs: [...jobs('big', 3, { resource_requirements: 'big' }), ...jobs('small', 5, { resource_requirements: 'small' })],
  };
  const worker = { num_cpus: 10, memory_gb: 100, num_gpus: 0, num_nodes: 1, time_limit: 'PT3H' };

  it('a job that does not fit is skipped and smaller ones further down still fill the worker', async () => {
    const wf = await createInitialized(b, spec);
    // big0 (8 CPUs), big1/big2 skipped, then two small jobs use the last 2 CPUs.
    expect(names(await claim(b, wf, worker))).toEqual(['big0', 'small0', 'small1']);
  });

  it('limit bounds the jobs returned, not the candidates examined (Torc would return only big0)', async () => {
    const wf = await createInitialized(b, spec);
    expect(names(await claim(b, wf, { ...worker, num_cpus: 12 }, 'limit=3'))).toEqual(['big0', 'small0', 'small1']);
    expect(names(await claim(b, wf, { ...worker, num_cpus: 100 }, 'limit=1'))).toEqual(['big1']);
  });

  it('multi-node jobs use up nodes; single-node jobs run on nodes the worker has', async () => {
    const wf = await createInitialized(b, {
      name: 'nodes',
      resource_requirements: [
        { name: 'n2', num_cpus: 1, num_nodes: 2, runtime: 'PT2H' },
        { name: 'n5', num_cpus: 1, num_nodes: 5, runtime: 'PT3H' },
        { name: 'n1', num_cpus: 1, num_nodes: 1, runtime: 'PT1H' },
      ],
      jobs: [...jobs('two', 3, { resource_requirements: 'n2' }), { name: 'five', command: 'true', resource_requirements: 'n5' }, ...jobs('one', 2, { resource_requirements: 'n1' })],
    });
    const r = await claim(b, wf, { num_cpus: 64, memory_gb: 64, num_gpus: 0, num_nodes: 4, time_limit: null });
    expect(names(r)).toEqual(['two0', 'two1', 'one0', 'one1']);
  });

  it('nothing fits: no jobs, and a reason naming the budget', async () => {
    const wf = await createInitialized(b, spec);
    const r = await claim(b, wf, { num_cpus: 0, memory_gb: 4, num_gpus: 0, num_nodes: 1, time_limit: 'PT1H' });
    expect(r.jobs).toEqual([]);
    expect(r.reason).toMatch(/^No jobs matched status='ready' or 'scheduled', memory_bytes <= 4294967296, num_cpus <= 0, num_gpus <= 0, runtime_seconds <= 3600, num_nodes <= 1/);
  });

  it('claims drain the workflow: every job once, then an empty answer', async () => {
    const wf = await createInitialized(b, spec);
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await claim(b, wf, { ...worker, num_cpus: 9 });
      if (r.jobs.length === 0) break;
      seen.push(...names(r));
    }
    expect(seen.sort()).toEqual(['big0', 'big1', 'big2', 'small0', 'small1', 'small2', 'small3', 'small4']);
  });
});

describe('holders, events, cancel and bad input', () => {
  const spec = { name: 'basic', resource_requirements: [{ name: 'rr', num_cpus: 1, memory: '1g', runtime: 'PT10M' }], jobs: jobs('j', 4, { resource_requirements: 'rr' }) };
  const worker = { num_cpus: 2, memory_gb: 8, num_gpus: 0, num_nodes: 1, time_limit: 'PT1H' };

  async function node(wf: string, host: string): Promise<string> {
    const res = await api(b, 'POST', `/workflows/${wf}/compute_nodes`, { hostname: host, pid: 1, start_time: 't', resources: worker });
    expect([200, 201]).toContain(res.status);
    return res.body._key as string;
  }

  it('records the claiming compute node and the claim time; another node cannot start the job', async () => {
    const wf = await createInitialized(b, spec);
    const mine = await node(wf, 'mine');
    const other = await node(wf, 'other');
    const before = Date.now();
    const r = await claim(b, wf, worker, `compute_node_key=${mine}`);
    expect(r.jobs).toHaveLength(2);
    for (const j of r.jobs) {
      expect(j.internal.compute_node_key).toBe(mine);
      expect(j.internal.claimed_at).toBeGreaterThanOrEqual(before);
      expect(j.internal.num_cpus).toBe(1);
    }
    const runId = (await api(b, 'GET', `/workflows/${wf}/status`)).body.run_id;
    const job = r.jobs[0]!;
    const stolen = await api(b, 'PUT', `/workflows/${wf}/jobs/${job._key}/start_job/${job._rev}/${runId}/${other}`);
    expect(stolen.status).toBe(409);
    const started = await api(b, 'PUT', `/workflows/${wf}/jobs/${job._key}/start_job/${job._rev}/${runId}/${mine}`);
    expect(started.status).toBe(200);
    expect(started.body.status).toBe('submitted');
  });

  it('writes one claim event per non-empty claim, naming the jobs and the node', async () => {
    const wf = await createInitialized(b, spec);
    const mine = await node(wf, 'mine');
    const r = await claim(b, wf, worker, `compute_node_key=compute_nodes/${mine}`);
    const events = (await api(b, 'GET', `/workflows/${wf}/events?category=job`)).body.items as Json[];
    const claims = events.filter((e) => e.type === 'claim');
    expect(claims).toHaveLength(1);
    expect(claims[0]!.job_keys).toEqual(r.jobs.map((j) => j._key));
    expect(claims[0]!.compute_node_key).toBe(mine);
    await claim(b, wf, { ...worker, num_cpus: 0 });
    expect(((await api(b, 'GET', `/workflows/${wf}/events?category=job`)).body.items as Json[]).filter((e) => e.type === 'claim')).toHaveLength(1);
  });

  it('a canceled workflow hands out nothing, with the reason', async () => {
    const wf = await createInitialized(b, spec);
    expect((await api(b, 'PUT', `/workflows/${wf}/cancel`)).status).toBe(200);
    expect(await claim(b, wf, worker)).toEqual({ jobs: [], reason: 'The workflow was canceled.' });
    expect((await api(b, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=3`)).body).toEqual({ jobs: [] });
    expect((await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_scheduling`)).body).toEqual({ schedulers: [] });
  });

  it.each([
    ['a decimal time_limit', { ...worker, time_limit: 'PT1.5H' }, '', 400, 'time_limit'],
    ['a time_limit that is not ISO 8601', { ...worker, time_limit: 'four hours' }, '', 400, 'time_limit'],
    ['a time_limit with years', { ...worker, time_limit: 'P1Y' }, '', 400, 'time_limit'],
    ['no num_cpus', { memory_gb: 1 }, '', 400, 'num_cpus'],
    ['negative memory', { ...worker, memory_gb: -1 }, '', 400, 'memory_gb'],
    ['fractional CPUs', { ...worker, num_cpus: 1.5 }, '', 400, 'num_cpus'],
    ['an unknown sort method', worker, 'sort_method=fastest', 400, 'sort_method'],
    ['limit 0', worker, 'limit=0', 400, 'limit'],
    ['limit not a number', worker, 'limit=ten', 400, 'limit'],
    ['an unknown query parameter', worker, 'sort=none', 400, 'sort'],
    ['an unknown compute node', worker, 'compute_node_key=999999', 404, 'compute_node_key'],
  ])('%s is refused and nothing changes', async (_what, body, query, status, field) => {
    const wf = await createInitialized(b, spec);
    const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission${query ? `?${query}` : ''}`, body);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(JSON.stringify(res.body.error)).toContain(field);
    expect([...(await statusesByName(b, wf)).values()].every((s) => s === 'ready')).toBe(true);
  });

  it('an unknown workflow is 404', async () => {
    const res = await api(b, 'POST', '/workflows/nope123/prepare_jobs_for_submission', worker);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('WORKFLOW_NOT_FOUND');
  });

  it('Torc-style float limits are accepted', async () => {
    const wf = await createInitialized(b, spec);
    expect((await claim(b, wf, worker, 'limit=1.0')).jobs).toHaveLength(1);
  });
});
