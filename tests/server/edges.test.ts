/**
 * The generic edge API for every edge collection, end checks on POST, and cascades: deleting a
 * vertex (one, or all of a collection) deletes the edges that touch it.
 */
import { describe, expect, it } from 'vitest';
import { EDGE_COLLECTIONS, EDGE_COLLECTION_NAMES, type WorkflowCollectionName } from '../../graph/model.js';
import { SAMPLE_DOCS } from '../fixtures/sample-docs.js';
import { api, testServerForSuite } from '../helpers/server.js';

const srv = testServerForSuite();
const call = (method: string, path: string, body?: unknown) => api(srv.baseUrl, method, path, body);

async function vertex(wf: string, c: string): Promise<{ _id: string; _key: string }> {
  const res = await call('POST', `/workflows/${wf}/${c}`, SAMPLE_DOCS[c as WorkflowCollectionName]);
  expect(res.status).toBe(200);
  return res.body;
}

describe.each(EDGE_COLLECTION_NAMES)('edge collection %s', (name) => {
  it('creates, reads, lists and deletes edges between the right collections', async () => {
    const wf = (await call('POST', '/workflows', { name })).body._key as string;
    const spec = EDGE_COLLECTIONS[name];
    const from = await vertex(wf, spec.from[0]!);
    const to = await vertex(wf, spec.to[spec.to.length - 1]!);
    const created = await call('POST', `/workflows/${wf}/edges/${name}`, { _from: from._id, _to: to._id, data: { run_id: 1 } });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ _from: from._id, _to: to._id, data: { run_id: 1 } });
    expect(created.body._id).toBe(`${name}/${created.body._key}`);

    const got = await call('GET', `/workflows/${wf}/edges/${name}/${created.body._key}`);
    expect(got.body).toEqual(created.body);
    await call('POST', `/workflows/${wf}/edges/${name}`, { _from: from._id, _to: to._id });
    const list = await call('GET', `/workflows/${wf}/edges/${name}?limit=1`);
    expect(list.body).toMatchObject({ count: 1, total_count: 2, has_more: true, skip: 0 });

    const del = await call('DELETE', `/workflows/${wf}/edges/${name}/${created.body._key}`);
    expect(del.status).toBe(200);
    expect(del.body._key).toBe(created.body._key);
    expect((await call('GET', `/workflows/${wf}/edges/${name}/${created.body._key}`)).status).toBe(404);
    const again = await call('DELETE', `/workflows/${wf}/edges/${name}/${created.body._key}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('DOCUMENT_NOT_FOUND');
    const all = await call('DELETE', `/workflows/${wf}/edges/${name}`);
    expect(all.body.count).toBe(1);
    expect((await call('GET', `/workflows/${wf}/edges/${name}`)).body.total_count).toBe(0);
    // The vertices are untouched.
    expect((await call('GET', `/workflows/${wf}/${spec.from[0]}/${from._key}`)).status).toBe(200);
  });
});

describe('edge ends', () => {
  it('rejects ends in the wrong collection, in another workflow, or missing, naming the field', async () => {
    const wf = (await call('POST', '/workflows', { name: 'ends' })).body._key as string;
    const other = (await call('POST', '/workflows', { name: 'other' })).body._key as string;
    const job = await vertex(wf, 'jobs');
    const file = await vertex(wf, 'files');
    const foreignFile = await vertex(other, 'files');

    const wrong = await call('POST', `/workflows/${wf}/edges/needs`, { _from: file._id, _to: job._id });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.details.map((d: { path: string[] }) => d.path[0])).toEqual(['_from', '_to']);

    const foreign = await call('POST', `/workflows/${wf}/edges/needs`, { _from: job._id, _to: foreignFile._id });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.details[0].path).toEqual(['_to']);
    expect(foreign.body.error.message).toContain('_to');

    const bare = await call('POST', `/workflows/${wf}/edges/needs`, { _from: job._key, _to: file._key });
    expect(bare.status).toBe(200);
    expect(bare.body).toMatchObject({ _from: job._id, _to: file._id });
    expect(await srv.store.count('needs', wf)).toBe(1);
  });
});

describe('cascades', () => {
  it('deleting a vertex deletes its edges, and only its edges', async () => {
    const wf = (await call('POST', '/workflows', { name: 'cascade' })).body._key as string;
    const a = (await call('POST', `/workflows/${wf}/jobs`, { name: 'a', command: 'x' })).body;
    const f1 = await vertex(wf, 'files');
    const f2 = await vertex(wf, 'files');
    const b = (await call('POST', `/workflows/${wf}/jobs`, { name: 'b', command: 'x', blocked_by: [a._id], input_files: [f1._id] })).body;
    const c = (await call('POST', `/workflows/${wf}/jobs`, { name: 'c', command: 'x', blocked_by: [b._id], output_files: [f2._id] })).body;
    expect(await srv.store.count('blocks', wf)).toBe(2);

    expect((await call('DELETE', `/workflows/${wf}/jobs/${b._key}`)).status).toBe(200);
    expect(await srv.store.count('blocks', wf)).toBe(0);
    expect(await srv.store.count('needs', wf)).toBe(0);
    expect(await srv.store.count('produces', wf)).toBe(1);
    expect((await call('GET', `/workflows/${wf}/jobs/${c._key}`)).status).toBe(200);

    // Deleting a whole vertex collection removes the edges touching it.
    expect((await call('DELETE', `/workflows/${wf}/files`)).body.count).toBe(2);
    expect(await srv.store.count('produces', wf)).toBe(0);
    expect((await call('GET', `/workflows/${wf}/jobs`)).body.total_count).toBe(2);
  });
});
