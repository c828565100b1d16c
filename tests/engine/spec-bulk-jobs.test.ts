/**
 * POST /workflows/{workflow}/bulk_jobs over HTTP: many jobs in one transaction with their
 * relationship fields (ids or keys) as edges, stored as the single job POST stores them; every
 * reference checked before anything is written, so one bad reference in the last of 10,000 jobs
 * writes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { api, testServerForSuite } from '../helpers/server.js';

const srv = testServerForSuite();
let wf: string;
const ids: Record<string, string> = {};

const call = (method: string, path: string, body?: unknown) => api(srv.baseUrl, method, path, body);
async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const res = await call(method, path, body);
  expect(res.status, `${method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`).toBe(200);
  return res.body;
}

beforeAll(async () => {
  wf = (await ok('POST', '/workflows', { name: 'bulk' }))._key;
  ids.file = (await ok('POST', `/workflows/${wf}/files`, { name: 'f', path: '/f' }))._id;
  ids.out = (await ok('POST', `/workflows/${wf}/files`, { name: 'o', path: '/o' }))._id;
  ids.ud = (await ok('POST', `/workflows/${wf}/user_data`, { name: 'u' }))._id;
  ids.rr = (await ok('POST', `/workflows/${wf}/resource_requirements`, { name: 'r', memory: '2g' }))._id;
  ids.sched = (await ok('POST', `/workflows/${wf}/local_schedulers`, { name: 'l' }))._id;
  ids.first = (await ok('POST', `/workflows/${wf}/jobs`, { name: 'first', command: 'true' }))._id;
});

const count = async (path: string) => (await ok('GET', `${path}?limit=1`)).total_count as number;

describe('POST /workflows/{workflow}/bulk_jobs', () => {
  it('inserts jobs with edges from ids and bare keys, stored like a single job POST', async () => {
    const key = (id: string) => id.slice(id.indexOf('/') + 1);
    const { items } = await ok('POST', `/workflows/${wf}/bulk_jobs`, {
      jobs: [
        { name: 'b1', command: 'one', input_files: [ids.file], output_files: [key(ids.out!)], resource_requirements: ids.rr, scheduler: key(ids.sched!), blocked_by: [ids.first] },
        { name: 'b2', command: 'two', input_user_data: [ids.ud], cancel_on_blocking_job_failure: false },
      ],
    });
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({ name: 'b1', command: 'one', status: 'uninitialized', cancel_on_blocking_job_failure: true, supports_termination: false });
    expect(items[0]).not.toHaveProperty('input_files');
    expect(await ok('GET', `/workflows/${wf}/jobs/${items[1]._key}`)).toEqual(items[1]);
    const single = await ok('POST', `/workflows/${wf}/jobs`, { name: 'b1', command: 'one' });
    expect(Object.keys(single).sort()).toEqual(Object.keys(items[0]).sort());

    const edges = async (name: string) => (await ok('GET', `/workflows/${wf}/edges/${name}`)).items.map((e: any) => `${e._from}->${e._to}`);
    expect(await edges('needs')).toContain(`${items[0]._id}->${ids.file}`);
    expect(await edges('produces')).toContain(`${items[0]._id}->${ids.out}`);
    expect(await edges('requires')).toContain(`${items[0]._id}->${ids.rr}`);
    expect(await edges('scheduled_bys')).toContain(`${items[0]._id}->${ids.sched}`);
    expect(await edges('blocks')).toContain(`${ids.first}->${items[0]._id}`);
    expect(await edges('consumes')).toContain(`${items[1]._id}->${ids.ud}`);
  });

  it('a blocked_by may name the _key of another job of the same call, in any order; a loop among them is DEPENDENCY_CYCLE', async () => {
    const { items } = await ok('POST', `/workflows/${wf}/bulk_jobs`, {
      jobs: [
        { _key: 'bulk-late', name: 'late', command: 'x', blocked_by: ['bulk-early'] },
        { _key: 'bulk-early', name: 'early', command: 'y' },
      ],
    });
    expect(items.map((j: any) => j._key)).toEqual(['bulk-late', 'bulk-early']);
    const blocks = (await ok('GET', `/workflows/${wf}/edges/blocks`)).items.map((e: any) => `${e._from}->${e._to}`);
    expect(blocks).toContain('jobs/bulk-early->jobs/bulk-late');

    const before = await count(`/workflows/${wf}/jobs`);
    const res = await call('POST', `/workflows/${wf}/bulk_jobs`, {
      jobs: [
        { _key: 'loop-a', name: 'la', command: 'x', blocked_by: ['loop-b'] },
        { _key: 'loop-b', name: 'lb', command: 'x', blocked_by: ['jobs/loop-a'] },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('DEPENDENCY_CYCLE');
    expect(res.body.error.cycles).toEqual([['la', 'lb', 'la']]);
    expect(await count(`/workflows/${wf}/jobs`)).toBe(before);
  });

  it('a loop through files with a stored job is DEPENDENCY_CYCLE', async () => {
    const g = (await ok('POST', `/workflows/${wf}/files`, { name: 'g', path: '/g' }))._id;
    const h = (await ok('POST', `/workflows/${wf}/files`, { name: 'h', path: '/h' }))._id;
    // stored: E reads g and writes h
    await ok('POST', `/workflows/${wf}/jobs`, { name: 'E', command: 'e', input_files: [g], output_files: [h] });
    const before = { jobs: await count(`/workflows/${wf}/jobs`), produces: await count(`/workflows/${wf}/edges/produces`) };
    // new: N reads h and writes g, so N → g → E → h → N
    const loop = { name: 'N', command: 'n', input_files: [h], output_files: [g] };
    const bulk = await call('POST', `/workflows/${wf}/bulk_jobs`, { jobs: [{ name: 'fine', command: 'ok' }, loop] });
    expect(bulk.status).toBe(400);
    expect(bulk.body.error.code).toBe('DEPENDENCY_CYCLE');
    expect(bulk.body.error.cycles).toEqual([['N', 'E', 'N']]);
    expect({ jobs: await count(`/workflows/${wf}/jobs`), produces: await count(`/workflows/${wf}/edges/produces`) }).toEqual(before);
    // writing g without reading h is fine (E simply waits for it)
    await ok('POST', `/workflows/${wf}/jobs`, { name: 'N2', command: 'n', output_files: [g] });
  });

  it('10,000 jobs with one bad reference in the last: 400 naming it, nothing written', async () => {
    const jobs = Array.from({ length: 10_000 }, (_, i) => ({ name: `n${i}`, command: `run ${i}`, input_files: [ids.file], blocked_by: [ids.first] }));
    jobs[9_999]!.input_files = ['files/999999999'];
    const before = { jobs: await count(`/workflows/${wf}/jobs`), needs: await count(`/workflows/${wf}/edges/needs`), blocks: await count(`/workflows/${wf}/edges/blocks`) };
    const res = await call('POST', `/workflows/${wf}/bulk_jobs`, { jobs });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.details).toEqual([{ path: ['jobs', 9999, 'input_files', 0], message: expect.stringMatching(/no files document "files\/999999999"/), rule: 'reference' }]);
    expect({ jobs: await count(`/workflows/${wf}/jobs`), needs: await count(`/workflows/${wf}/edges/needs`), blocks: await count(`/workflows/${wf}/edges/blocks`) }).toEqual(before);

    // the same 10,000 with the reference fixed: all in, with their edges
    jobs[9_999]!.input_files = [ids.file!];
    const { items } = await ok('POST', `/workflows/${wf}/bulk_jobs`, { jobs });
    expect(items).toHaveLength(10_000);
    expect(await count(`/workflows/${wf}/jobs`)).toBe(before.jobs + 10_000);
    expect(await count(`/workflows/${wf}/edges/needs`)).toBe(before.needs + 10_000);
    expect(await count(`/workflows/${wf}/edges/blocks`)).toBe(before.blocks + 10_000);
  });

  it('every fault of the call in one answer: bad bodies, references of each kind, keys', async () => {
    const before = await count(`/workflows/${wf}/jobs`);
    const res = await call('POST', `/workflows/${wf}/bulk_jobs`, {
      jobs: [
        { name: 'ok', command: 'fine' },
        { name: 'no command' },
        { name: 'x', command: 'x', resource_requirements: 'resource_requirements/0', scheduler: 'nope', output_user_data: ['user_data/0'] },
        { _key: 'dup', name: 'd1', command: 'x' },
        { _key: 'dup', name: 'd2', command: 'x' },
        { _key: 'bad key/with slash', name: 'k', command: 'x' },
        { name: 'y', command: 'y', blocked_by: [ids.file] },
      ],
    });
    expect(res.status).toBe(400);
    const faults = res.body.error.details.map((d: any) => `${d.path.join('.')}:${d.rule}`).sort();
    expect(faults).toEqual([
      'jobs.1.command:invalid_type',
      'jobs.2.output_user_data.0:reference',
      'jobs.2.resource_requirements:reference',
      'jobs.2.scheduler:reference',
      'jobs.4._key:duplicate_key',
      'jobs.5._key:key',
      'jobs.6.blocked_by.0:reference',
    ]);
    expect(await count(`/workflows/${wf}/jobs`)).toBe(before);
  });

  it('refuses a body without jobs, and an unknown workflow', async () => {
    const none = await call('POST', `/workflows/${wf}/bulk_jobs`, { items: [] });
    expect(none.status).toBe(400);
    expect(none.body.error.details[0].path).toEqual(['jobs']);
    const missing = await call('POST', '/workflows/987654321/bulk_jobs', { jobs: [] });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('WORKFLOW_NOT_FOUND');
  });
});
