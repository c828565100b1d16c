/**
 * prepare_next_jobs_for_submission (the next N, no resource checks) and
 * prepare_jobs_for_scheduling (ready jobs that ask for compute nodes become scheduled), over HTTP.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { api, testServerForSuite } from '../helpers/server.js';
import { claim, createInitialized, jobs, statusesByName, type Json } from './claims-helpers.js';

const srv = testServerForSuite();
let b: string;

beforeAll(() => {
  b = srv.baseUrl;
});

async function next(wf: string, query = ''): Promise<Json[]> {
  const res = await api(b, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission${query ? `?${query}` : ''}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.jobs;
}

/** start_job then complete_job(done, rc 0) on a claimed job, as a worker would. */
async function runToDone(wf: string, job: Json, node: string, runId: number): Promise<void> {
  const started = await api(b, 'PUT', `/workflows/${wf}/jobs/${job._key}/start_job/${job._rev}/${runId}/${node}`);
  expect(started.status, JSON.stringify(started.body)).toBe(200);
  const result = { job_key: job._key, run_id: runId, return_code: 0, exec_time_minutes: 0.1, completion_time: new Date().toISOString(), status: 'done' };
  const done = await api(b, 'POST', `/workflows/${wf}/jobs/${job._key}/complete_job/done/${started.body._rev}/${runId}/${node}`, result);
  expect(done.status, JSON.stringify(done.body)).toBe(200);
}

describe('prepare_next_jobs_for_submission', () => {
  it('hands out the diamond stage by stage: 1, then 2, then 1', async () => {
    const wf = await createInitialized(b, {
      name: 'diamond',
      jobs: [
        { name: 'preprocess', command: 'true' },
        { name: 'work1', command: 'true', blocked_by: ['preprocess'] },
        { name: 'work2', command: 'true', blocked_by: ['preprocess'] },
        { name: 'postprocess', command: 'true', blocked_by: ['work1', 'work2'] },
      ],
    });
    const node = (await api(b, 'POST', `/workflows/${wf}/compute_nodes`, { hostname: 'h', pid: 1, start_time: 't', resources: { num_cpus: 1, memory_gb: 1 } })).body._key;
    const runId = (await api(b, 'GET', `/workflows/${wf}/status`)).body.run_id;
    const stages: string[][] = [];
    for (;;) {
      const got = await next(wf, `limit=5&compute_node_key=${node}`);
      if (got.length === 0) break;
      stages.push(got.map((j) => j.name).sort());
      for (const j of got) {
        expect(j.internal.compute_node_key).toBe(node);
        await runToDone(wf, j, node, runId);
      }
    }
    expect(stages).toEqual([['preprocess'], ['work1', 'work2'], ['postprocess']]);
    expect((await api(b, 'GET', `/workflows/${wf}/is_complete`)).body.is_complete).toBe(true);
  });

  it('defaults to one job, in insertion order, and ignores resources', async () => {
    const wf = await createInitialized(b, { name: 'next', resource_requirements: [{ name: 'huge', num_cpus: 512, memory: '4t', num_gpus: 8 }], jobs: jobs('j', 5, { resource_requirements: 'huge' }) });
    expect((await next(wf)).map((j) => j.name)).toEqual(['j0']);
    expect((await next(wf, 'limit=3')).map((j) => j.name)).toEqual(['j1', 'j2', 'j3']);
    expect((await next(wf, 'limit=3')).map((j) => j.name)).toEqual(['j4']);
    expect(await next(wf, 'limit=3')).toEqual([]);
    expect([...(await statusesByName(b, wf)).values()].every((s) => s === 'submitted_pending')).toBe(true);
  });

  it('refuses a bad limit with 400', async () => {
    const wf = await createInitialized(b, { name: 'bad', jobs: jobs('j', 1) });
    for (const q of ['limit=0', 'limit=-1', 'limit=x', 'limit=100001']) {
      const res = await api(b, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?${q}`);
      expect(res.status, q).toBe(400);
      expect(JSON.stringify(res.body.error)).toContain('limit');
    }
  });
});

describe('prepare_jobs_for_scheduling', () => {
  it('turns ready jobs that ask for compute nodes into scheduled ones, which workers can still claim', async () => {
    const params = { num_jobs: 2, scheduler_id: 'slurm_schedulers/short', max_parallel_jobs: 4, start_one_worker_per_node: false };
    const wf = await createInitialized(b, {
      name: 'sched',
      schedulers: { slurm_schedulers: [{ name: 'short', account: 'a', nodes: 1, walltime: '01:00:00' }] },
      jobs: [
        { name: 'first', command: 'true' },
        { name: 'asks1', command: 'true', schedule_compute_nodes: params },
        { name: 'asks2', command: 'true', schedule_compute_nodes: params },
        { name: 'blocked', command: 'true', blocked_by: ['first'], schedule_compute_nodes: params },
      ],
    });
    const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_scheduling`);
    expect(res.status).toBe(200);
    expect(res.body.schedulers).toHaveLength(2);
    // The spec resolved the scheduler name to its id.
    const sched = (await api(b, 'GET', `/workflows/${wf}/slurm_schedulers`)).body.items[0]._id;
    expect(res.body.schedulers).toEqual([expect.objectContaining({ num_jobs: 2, scheduler_id: sched }), expect.objectContaining({ num_jobs: 2, scheduler_id: sched })]);
    const statuses = await statusesByName(b, wf);
    expect(Object.fromEntries(statuses)).toEqual({ first: 'ready', asks1: 'scheduled', asks2: 'scheduled', blocked: 'blocked' });
    // A second call finds nothing new to schedule.
    expect((await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_scheduling`)).body.schedulers).toEqual([]);
    const events = (await api(b, 'GET', `/workflows/${wf}/events?category=job`)).body.items as Json[];
    expect(events.filter((e) => e.type === 'scheduled')).toHaveLength(1);
    // Scheduled and ready jobs are both claimable; sort none merges them in insertion order.
    const got = await claim(b, wf, { num_cpus: 8, memory_gb: 8, num_gpus: 0, num_nodes: 1, time_limit: null }, 'sort_method=none');
    expect(got.jobs.map((j) => j.name)).toEqual(['first', 'asks1', 'asks2']);
  });
});
