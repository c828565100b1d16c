/**
 * Generic per-workflow CRUD through a real server over a real SQLite file: every collection of
 * the model, list paging/sorting/filters, stale revisions, events' server timestamps, jobs'
 * relationship fields becoming edges.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { WORKFLOW_COLLECTION_NAMES } from '../../graph/model.js';
import { SAMPLE_DOCS, UPDATE_FIELD } from '../fixtures/sample-docs.js';
import { api, testServerForSuite } from '../helpers/server.js';

const srv = testServerForSuite();
const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => api(srv.baseUrl, method, path, body, headers);

async function newWorkflow(name = 'wf'): Promise<string> {
  const res = await call('POST', '/workflows', { name, user: 'tester' });
  expect(res.status).toBe(200);
  return res.body._key as string;
}

describe.each(WORKFLOW_COLLECTION_NAMES)('collection %s', (name) => {
  it('creates, reads, lists, updates and deletes a document', async () => {
    const wf = await newWorkflow();
    const created = await call('POST', `/workflows/${wf}/${name}`, SAMPLE_DOCS[name]);
    expect(created.status).toBe(200);
    const doc = created.body;
    expect(doc._id).toBe(`${name}/${doc._key}`);
    expect(typeof doc._rev).toBe('string');
    expect(doc).toMatchObject(SAMPLE_DOCS[name]);

    const got = await call('GET', `/workflows/${wf}/${name}/${doc._key}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(doc);
    // A full id works as the key too.
    expect((await call('GET', `/workflows/${wf}/${name}/${encodeURIComponent(doc._id)}`)).body).toEqual(doc);

    const list = await call('GET', `/workflows/${wf}/${name}`);
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ skip: 0, max_limit: 100000, count: 1, total_count: 1, has_more: false });
    expect(list.body.items[0]._key).toBe(doc._key);

    const field = UPDATE_FIELD[name];
    const newValue = name === 'resource_requirements' ? '2g' : `changed-${name}`;
    const put = await call('PUT', `/workflows/${wf}/${name}/${doc._key}`, { [field]: newValue, _rev: doc._rev });
    expect(put.status).toBe(200);
    expect(put.body[field]).toBe(newValue);
    expect(put.body._rev).not.toBe(doc._rev);
    // Fields not in the body keep their stored values.
    expect(put.body).toMatchObject({ ...SAMPLE_DOCS[name], [field]: newValue });

    // The old revision is stale now: 409 and nothing changes.
    const stale = await call('PUT', `/workflows/${wf}/${name}/${doc._key}`, { [field]: 'lost', _rev: doc._rev });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('REVISION_CONFLICT');
    expect((await call('GET', `/workflows/${wf}/${name}/${doc._key}`)).body[field]).toBe(newValue);

    const del = await call('DELETE', `/workflows/${wf}/${name}/${doc._key}`);
    expect(del.status).toBe(200);
    expect(del.body._key).toBe(doc._key);
    const gone = await call('GET', `/workflows/${wf}/${name}/${doc._key}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('DOCUMENT_NOT_FOUND');
    const again = await call('DELETE', `/workflows/${wf}/${name}/${doc._key}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('DOCUMENT_NOT_FOUND');
  });

  it('deletes all documents of the collection and only that workflow\'s', async () => {
    const wf1 = await newWorkflow();
    const wf2 = await newWorkflow();
    for (let i = 0; i < 3; i++) expect((await call('POST', `/workflows/${wf1}/${name}`, SAMPLE_DOCS[name])).status).toBe(200);
    expect((await call('POST', `/workflows/${wf2}/${name}`, SAMPLE_DOCS[name])).status).toBe(200);
    const del = await call('DELETE', `/workflows/${wf1}/${name}`);
    expect(del.status).toBe(200);
    expect(del.body.count).toBe(3);
    expect((await call('GET', `/workflows/${wf1}/${name}`)).body.total_count).toBe(0);
    expect((await call('GET', `/workflows/${wf2}/${name}`)).body.total_count).toBe(1);
  });

  it('does not show a document through another workflow', async () => {
    const wf1 = await newWorkflow();
    const wf2 = await newWorkflow();
    const doc = (await call('POST', `/workflows/${wf1}/${name}`, SAMPLE_DOCS[name])).body;
    const res = await call('GET', `/workflows/${wf2}/${name}/${doc._key}`);
    expect(res.status).toBe(404);
  });
});

describe('lists', () => {
  let wf: string;
  beforeAll(async () => {
    wf = await newWorkflow('paging');
    // 25 files inserted in an order that differs from their names' order.
    for (let i = 0; i < 25; i++) {
      const n = (i * 7) % 25;
      const res = await call('POST', `/workflows/${wf}/files`, { name: `f${String(n).padStart(2, '0')}`, path: `/p/${i % 3}`, st_mtime: 1000 - n });
      expect(res.status).toBe(200);
    }
  });

  it('pages with skip and limit and reports has_more', async () => {
    const seen: string[] = [];
    let skip = 0;
    for (;;) {
      const page = (await call('GET', `/workflows/${wf}/files?skip=${skip}&limit=10`)).body;
      expect(page.total_count).toBe(25);
      expect(page.max_limit).toBe(100000);
      expect(page.count).toBe(page.items.length);
      seen.push(...page.items.map((d: { _key: string }) => d._key));
      skip += page.count;
      if (!page.has_more) break;
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
  });

  it('sorts the whole result by sort_by before paging', async () => {
    const first = (await call('GET', `/workflows/${wf}/files?sort_by=name&limit=5`)).body.items.map((d: { name: string }) => d.name);
    expect(first).toEqual(['f00', 'f01', 'f02', 'f03', 'f04']);
    const second = (await call('GET', `/workflows/${wf}/files?sort_by=name&skip=5&limit=5`)).body.items.map((d: { name: string }) => d.name);
    expect(second).toEqual(['f05', 'f06', 'f07', 'f08', 'f09']);
    const rev = (await call('GET', `/workflows/${wf}/files?sort_by=name&reverse_sort=true&limit=3`)).body.items.map((d: { name: string }) => d.name);
    expect(rev).toEqual(['f24', 'f23', 'f22']);
    // A numeric field sorts numerically (st_mtime = 1000 - n, so ascending mtime is descending name).
    const byMtime = (await call('GET', `/workflows/${wf}/files?sort_by=st_mtime&limit=2`)).body.items.map((d: { name: string }) => d.name);
    expect(byMtime).toEqual(['f24', 'f23']);
  });

  it('filters by the collection\'s equality filters, typed', async () => {
    const byPath = (await call('GET', `/workflows/${wf}/files?path=/p/1`)).body;
    expect(byPath.total_count).toBe(8);
    expect(byPath.items.every((d: { path: string }) => d.path === '/p/1')).toBe(true);
    const byName = (await call('GET', `/workflows/${wf}/files?name=f07`)).body;
    expect(byName.items.map((d: { name: string }) => d.name)).toEqual(['f07']);
    const key = byName.items[0]._key;
    expect((await call('GET', `/workflows/${wf}/files?_key=${key}`)).body.items[0].name).toBe('f07');

    const jwf = await newWorkflow('filters');
    await call('POST', `/workflows/${jwf}/jobs`, { name: 'a', command: 'x', supports_termination: true });
    await call('POST', `/workflows/${jwf}/jobs`, { name: 'b', command: 'x' });
    const term = (await call('GET', `/workflows/${jwf}/jobs?supports_termination=true`)).body;
    expect(term.items.map((d: { name: string }) => d.name)).toEqual(['a']);
    expect((await call('GET', `/workflows/${jwf}/jobs?supports_termination=True`)).body.items.map((d: { name: string }) => d.name)).toEqual(['a']);
    const notTerm = (await call('GET', `/workflows/${jwf}/jobs?supports_termination=false`)).body;
    expect(notTerm.items.map((d: { name: string }) => d.name)).toEqual(['b']);

    await call('POST', `/workflows/${jwf}/results`, { ...{ job_key: '1', run_id: 1, exec_time_minutes: 1, completion_time: 't', status: 'done' }, return_code: 0 });
    await call('POST', `/workflows/${jwf}/results`, { ...{ job_key: '2', run_id: 2, exec_time_minutes: 1, completion_time: 't', status: 'done' }, return_code: -15 });
    const failed = (await call('GET', `/workflows/${jwf}/results?return_code=-15`)).body;
    expect(failed.items.map((d: { job_key: string }) => d.job_key)).toEqual(['2']);
    expect((await call('GET', `/workflows/${jwf}/results?run_id=1`)).body.items.map((d: { job_key: string }) => d.job_key)).toEqual(['1']);
  });

  it('lists workflows with filters and sorting', async () => {
    await call('POST', '/workflows', { name: 'zz-archived', user: 'alice', is_archived: true });
    const archived = (await call('GET', '/workflows?is_archived=true')).body;
    expect(archived.items.map((w: { name: string }) => w.name)).toEqual(['zz-archived']);
    const alice = (await call('GET', '/workflows?user=alice')).body;
    expect(alice.total_count).toBe(1);
    const sorted = (await call('GET', '/workflows?sort_by=name&reverse_sort=1&limit=1')).body;
    expect(sorted.items[0].name).toBe('zz-archived');
  });
});

describe('special cases', () => {
  it('of two concurrent PUTs with the same _rev exactly one wins, the other is 409', async () => {
    const wf = await newWorkflow();
    const doc = (await call('POST', `/workflows/${wf}/files`, { path: '/race' })).body;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call('PUT', `/workflows/${wf}/files/${doc._key}`, { path: `/race/${i}`, _rev: doc._rev })),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(7);
    expect((await call('GET', `/workflows/${wf}/files/${doc._key}`)).body.path).toBe(ok[0]!.body.path);
  });

  it('events get the server timestamp in ms, whatever the body says', async () => {
    const wf = await newWorkflow();
    const before = Date.now();
    const ev = await call('POST', `/workflows/${wf}/events`, { category: 'job', timestamp: 5 });
    const after = Date.now();
    expect(ev.status).toBe(200);
    expect(ev.body.timestamp).toBeGreaterThanOrEqual(before);
    expect(ev.body.timestamp).toBeLessThanOrEqual(after);
    const byCat = (await call('GET', `/workflows/${wf}/events?category=job`)).body;
    expect(byCat.total_count).toBe(1);
  });

  it('a job POST turns relationship fields into edges and stores none of them', async () => {
    const wf = await newWorkflow();
    const file = (await call('POST', `/workflows/${wf}/files`, { path: '/in' })).body;
    const out = (await call('POST', `/workflows/${wf}/files`, { path: '/out' })).body;
    const ud = (await call('POST', `/workflows/${wf}/user_data`, { name: 'u' })).body;
    const rr = (await call('POST', `/workflows/${wf}/resource_requirements`, { name: 'big', num_cpus: 8 })).body;
    const sched = (await call('POST', `/workflows/${wf}/local_schedulers`, { name: 'l' })).body;
    const first = (await call('POST', `/workflows/${wf}/jobs`, { name: 'first', command: 'true' })).body;
    expect(first.status).toBe('uninitialized');
    const job = await call('POST', `/workflows/${wf}/jobs`, {
      name: 'second',
      command: 'cat /in > /out',
      blocked_by: [first._id],
      input_files: [file._key],
      output_files: [out._id],
      input_user_data: [ud._id],
      resource_requirements: rr._id,
      scheduler: sched._id,
    });
    expect(job.status).toBe(200);
    for (const f of ['blocked_by', 'input_files', 'output_files', 'input_user_data', 'resource_requirements', 'scheduler']) {
      expect(job.body).not.toHaveProperty(f);
      expect((await call('GET', `/workflows/${wf}/jobs/${job.body._key}`)).body).not.toHaveProperty(f);
    }
    const edge = async (name: string) => (await call('GET', `/workflows/${wf}/edges/${name}`)).body.items.map((e: { _from: string; _to: string }) => [e._from, e._to]);
    expect(await edge('blocks')).toEqual([[first._id, job.body._id]]);
    expect(await edge('needs')).toEqual([[job.body._id, file._id]]);
    expect(await edge('produces')).toEqual([[job.body._id, out._id]]);
    expect(await edge('consumes')).toEqual([[job.body._id, ud._id]]);
    expect(await edge('requires')).toEqual([[job.body._id, rr._id]]);
    expect(await edge('scheduled_bys')).toEqual([[job.body._id, sched._id]]);
  });

  it('a job POST with a missing reference writes nothing and names the field', async () => {
    const wf = await newWorkflow();
    const res = await call('POST', `/workflows/${wf}/jobs`, { name: 'x', command: 'true', input_files: ['files/999999'] });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toEqual([0, 'input_files', 0]);
    expect(res.body.error.message).toContain('input_files');
    expect((await call('GET', `/workflows/${wf}/jobs`)).body.total_count).toBe(0);
  });

  it('a caller-chosen _key is kept, and a second one with the same key is 409', async () => {
    const wf = await newWorkflow();
    const a = await call('POST', `/workflows/${wf}/files`, { _key: 'my-file', path: '/a' });
    expect(a.status).toBe(200);
    expect(a.body._id).toBe('files/my-file');
    const b = await call('POST', `/workflows/${wf}/files`, { _key: 'my-file', path: '/b' });
    expect(b.status).toBe(409);
    expect(b.body.error.code).toBe('DUPLICATE_KEY');
  });
});
