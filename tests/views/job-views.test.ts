import { beforeAll, describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);
let wf: string;
let ids: Record<string, string>;
let keys: Record<string, string>;

beforeAll(async () => {
  ({ wf, ids, keys } = await buildWorkflow(call, {
    files: { in1: { path: 'in1.txt' }, mid: { path: 'mid.txt' }, out: { path: 'out.txt' } },
    user_data: { params: { data: { alpha: 1 } } },
    resource_requirements: { small: { num_cpus: 1, memory: '1g' }, big: { num_cpus: 8, memory: '16g' } },
    jobs: {
      a: { needs: ['in1'], produces: ['mid'], consumes: ['params'] },
      b: { needs: ['in1', 'mid'], produces: ['out'], after: ['a'] },
      c: { needs: ['in1'], after: ['b'] },
      d: {},
    },
  }));
});

const names = (items: { name: string }[]) => items.map((i) => i.name);

describe('job lookups', () => {
  it('job_keys lists every job key in insertion order', async () => {
    const body = await ok(call, 'GET', `/workflows/${wf}/job_keys`);
    expect(body.items).toEqual([keys.a, keys.b, keys.c, keys.d]);
  });

  it('find_by_status pages over the whole result: skip really skips', async () => {
    const all = await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_status/uninitialized`);
    expect(names(all.items)).toEqual(['a', 'b', 'c', 'd']);
    expect(all).toMatchObject({ skip: 0, count: 4, total_count: 4, has_more: false, max_limit: 100000 });
    const p1 = await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_status/uninitialized?skip=1&limit=2`);
    expect(names(p1.items)).toEqual(['b', 'c']);
    expect(p1).toMatchObject({ skip: 1, count: 2, total_count: 4, has_more: true });
    const p2 = await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_status/uninitialized?skip=3&limit=2`);
    expect(names(p2.items)).toEqual(['d']);
    expect(p2.has_more).toBe(false);
    expect((await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_status/done`)).items).toEqual([]);
  });

  it('find_by_status rejects an unknown status with 400 naming the parameter', async () => {
    const res = await call('GET', `/workflows/${wf}/jobs/find_by_status/finished`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.details[0].path).toEqual(['status']);
  });

  it('find_by_needs_file lists the jobs that need a file, paged, and 404s an unknown file', async () => {
    const all = await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_needs_file/${keys['files:in1']}`);
    expect(names(all.items)).toEqual(['a', 'b', 'c']);
    const page = await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_needs_file/${encodeURIComponent(ids['files:in1']!)}?skip=2`);
    expect(names(page.items)).toEqual(['c']);
    expect(page).toMatchObject({ skip: 2, total_count: 3, has_more: false });
    expect(names((await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_needs_file/${keys['files:mid']}`)).items)).toEqual(['b']);
    const missing = await call('GET', `/workflows/${wf}/jobs/find_by_needs_file/999999`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('DOCUMENT_NOT_FOUND');
  });

  it('downstream_jobs follows blocks edges transitively, paged', async () => {
    const all = await ok(call, 'GET', `/workflows/${wf}/downstream_jobs/${keys.a}`);
    expect(names(all.items)).toEqual(['b', 'c']);
    const p = await ok(call, 'GET', `/workflows/${wf}/downstream_jobs/${keys.a}?skip=1&limit=1`);
    expect(names(p.items)).toEqual(['c']);
    expect(p).toMatchObject({ total_count: 2, has_more: false });
    expect((await ok(call, 'GET', `/workflows/${wf}/downstream_jobs/${keys.d}`)).items).toEqual([]);
    expect((await call('GET', `/workflows/${wf}/downstream_jobs/424242`)).status).toBe(404);
  });

  it('files/produced_by_job lists the outputs of a job', async () => {
    expect(names((await ok(call, 'GET', `/workflows/${wf}/files/produced_by_job/${keys.a}`)).items)).toEqual(['mid']);
    expect(names((await ok(call, 'GET', `/workflows/${wf}/files/produced_by_job/${keys.b}`)).items)).toEqual(['out']);
    expect((await ok(call, 'GET', `/workflows/${wf}/files/produced_by_job/${keys.d}`)).items).toEqual([]);
  });

  it('answers 404 WORKFLOW_NOT_FOUND for an unknown workflow', async () => {
    const res = await call('GET', `/workflows/88888888/job_keys`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('WORKFLOW_NOT_FOUND');
  });
});

describe('user data of a job', () => {
  it('POST jobs/{key}/user_data stores a document with a stores edge; stores/consumes list them', async () => {
    const ud = await ok(call, 'POST', `/workflows/${wf}/jobs/${keys.b}/user_data`, { name: 'result', data: { x: 1 } });
    expect(ud).toMatchObject({ name: 'result', data: { x: 1 }, is_ephemeral: false });
    const edges = await ok(call, 'GET', `/workflows/${wf}/edges/stores`);
    expect(edges.items.some((e: { _from: string; _to: string }) => e._from === ids['jobs:b'] && e._to === ud._id)).toBe(true);
    expect(names((await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.b}/user_data_stores`)).items)).toEqual(['result']);
    expect(names((await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.a}/user_data_consumes`)).items)).toEqual(['params']);
    expect((await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.a}/user_data_stores`)).items).toEqual([]);
  });

  it('rejects bad user data with 400 and an unknown job with 404, storing nothing', async () => {
    const before = (await ok(call, 'GET', `/workflows/${wf}/user_data`)).total_count;
    const bad = await call('POST', `/workflows/${wf}/jobs/${keys.b}/user_data`, { name: 'x', data: 'not an object' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toEqual(['data']);
    const missing = await call('POST', `/workflows/${wf}/jobs/777777/user_data`, { name: 'x' });
    expect(missing.status).toBe(404);
    expect((await ok(call, 'GET', `/workflows/${wf}/user_data`)).total_count).toBe(before);
  });
});

describe('results and process statistics', () => {
  const result = (run_id: number, return_code = 0) => ({
    job_key: keys.a, run_id, return_code, exec_time_minutes: 1.5, completion_time: '2026-01-01T00:00:00', status: 'done',
  });
  const setRun = async (run: number) => {
    const st = await ok(call, 'GET', `/workflows/${wf}/status`);
    await ok(call, 'PUT', `/workflows/${wf}/status`, { ...st, run_id: run });
  };

  it('results/find_by_job returns the result of the current run, or 404', async () => {
    await setRun(1);
    const none = await call('GET', `/workflows/${wf}/results/find_by_job/${keys.a}`);
    expect(none.status).toBe(404);
    expect(none.body.error.message).toMatch(/run_id 1/);
    const r1 = await ok(call, 'POST', `/workflows/${wf}/results`, result(1, 3));
    await ok(call, 'POST', `/workflows/${wf}/edges/returned`, { _from: ids['jobs:a'], _to: r1._id });
    await ok(call, 'POST', `/workflows/${wf}/results`, result(2, 0));
    expect((await ok(call, 'GET', `/workflows/${wf}/results/find_by_job/${keys.a}`))._key).toBe(r1._key);
    await setRun(2);
    expect((await ok(call, 'GET', `/workflows/${wf}/results/find_by_job/${encodeURIComponent(ids['jobs:a']!)}`)).return_code).toBe(0);
    await setRun(3);
    expect((await call('GET', `/workflows/${wf}/results/find_by_job/${keys.a}`)).status).toBe(404);
  });

  it('jobs/{key}/process_stats lists the statistics sorted by run_id', async () => {
    const stats = (run_id: number) => ({ job_key: keys.c, run_id, avg_cpu_percent: 10, max_cpu_percent: 20, avg_rss: 1, max_rss: 2, num_samples: 3, timestamp: 't' });
    const s2 = await ok(call, 'POST', `/workflows/${wf}/job_process_stats`, stats(2));
    await ok(call, 'POST', `/workflows/${wf}/edges/process_used`, { _from: ids['jobs:c'], _to: s2._id });
    await ok(call, 'POST', `/workflows/${wf}/job_process_stats`, stats(1));
    const list = await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.c}/process_stats`);
    expect(list.map((s: { run_id: number }) => s.run_id)).toEqual([1, 2]);
    expect(await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.d}/process_stats`)).toEqual([]);
  });
});

describe('resource requirements of a job', () => {
  it('GET gives the defaults named "default" when the job has none', async () => {
    expect(await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.d}/resource_requirements`)).toEqual({
      name: 'default', num_cpus: 1, num_gpus: 0, num_nodes: 1, memory: '1m', runtime: 'P0DT1M',
    });
  });

  it('PUT replaces the requires edge (one per job) and returns it', async () => {
    const e1 = await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.d}/resource_requirements/${keys['resource_requirements:small']}`);
    expect(e1).toMatchObject({ _from: ids['jobs:d'], _to: ids['resource_requirements:small'] });
    const e2 = await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.d}/resource_requirements/${encodeURIComponent(ids['resource_requirements:big']!)}`);
    expect(e2._to).toBe(ids['resource_requirements:big']);
    const requires = (await ok(call, 'GET', `/workflows/${wf}/edges/requires`)).items.filter((e: { _from: string }) => e._from === ids['jobs:d']);
    expect(requires).toHaveLength(1);
    expect((await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.d}/resource_requirements`)).name).toBe('big');
    const bad = await call('PUT', `/workflows/${wf}/jobs/${keys.d}/resource_requirements/123456789`);
    expect(bad.status).toBe(404);
    expect((await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.d}/resource_requirements`)).name).toBe('big');
  });
});

describe('job specifications', () => {
  it('list names instead of ids, paged', async () => {
    const all = await ok(call, 'GET', `/workflows/${wf}/job_specifications`);
    expect(all.total_count).toBe(4);
    const b = all.items[1];
    expect(b).toMatchObject({
      name: 'b',
      command: 'run b',
      input_files: ['in1', 'mid'],
      output_files: ['out'],
      output_user_data: ['result'],
      cancel_on_blocking_job_failure: true,
      supports_termination: false,
      // a produces mid, which b needs: the blocker is implied by the files
      blocked_by: [],
    });
    expect(all.items[2].blocked_by).toEqual(['b']);
    const page = await ok(call, 'GET', `/workflows/${wf}/job_specifications?skip=3&limit=5`);
    expect(page.items.map((s: { name: string }) => s.name)).toEqual(['d']);
    expect(page.items[0].resource_requirements).toBe('big');
  });

  it('one job specification by key or id; 404 for an unknown job', async () => {
    const a = await ok(call, 'GET', `/workflows/${wf}/job_specifications/${keys.a}`);
    expect(a).toMatchObject({ name: 'a', input_files: ['in1'], output_files: ['mid'], input_user_data: ['params'] });
    expect(a.resource_requirements).toBeUndefined();
    expect((await call('GET', `/workflows/${wf}/job_specifications/55555555`)).status).toBe(404);
  });
});
