/**
 * Service, workflow, config/status and collection_names routes, the OpenAPI document, and a
 * workflow delete removing everything in the workflow — through a real server and SQLite file.
 */
import { describe, expect, it } from 'vitest';
import { EDGE_COLLECTION_NAMES, WORKFLOW_COLLECTION_NAMES } from '../../graph/model.js';
import { SAMPLE_DOCS } from '../fixtures/sample-docs.js';
import { api, testServerForSuite } from '../helpers/server.js';

const srv = testServerForSuite();
const call = (method: string, path: string, body?: unknown) => api(srv.baseUrl, method, path, body);

describe('service', () => {
  it('answers ping and version under the base path only', async () => {
    const ping = await call('GET', '/ping');
    expect(ping.status).toBe(200);
    expect(ping.body.message).toMatch(/running/);
    const version = await call('GET', '/version');
    expect(version.status).toBe(200);
    expect(version.body).toMatchObject({ api_version: '0.6.4', store: 'sqlite' });
    expect(version.body.version).toMatch(/^\d+\.\d+\.\d+/);
    const outside = await api(srv.url, 'GET', '/ping');
    expect(outside.status).toBe(404);
    expect(outside.body.error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('serves an OpenAPI 3.1 document generated from the route schemas', async () => {
    const res = await call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers[0].url).toBe('/torc-service');
    const jobsPost = doc.paths['/workflows/{workflow}/jobs'].post;
    expect(jobsPost.operationId).toBe('add_job');
    // The body schema is the model's job schema: command is required and a string.
    expect(jobsPost.requestBody.content['application/json'].schema.required).toContain('command');
    expect(jobsPost.requestBody.content['application/json'].schema.properties.command.type).toBe('string');
    const list = doc.paths['/workflows/{workflow}/jobs'].get;
    const names = list.parameters.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['workflow', 'skip', 'limit', 'sort_by', 'reverse_sort', '_key', 'status', 'supports_termination']));
    const limit = list.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(limit.in).toBe('query');
    for (const c of WORKFLOW_COLLECTION_NAMES) {
      expect(Object.keys(doc.paths[`/workflows/{workflow}/${c}`]).sort()).toEqual(['delete', 'get', 'post']);
      expect(Object.keys(doc.paths[`/workflows/{workflow}/${c}/{key}`]).sort()).toEqual(['delete', 'get', 'put']);
    }
    expect(Object.keys(doc.paths['/workflows/{workflow}/edges/{name}/{key}']).sort()).toEqual(['delete', 'get']);
    // Every {param} of every path is declared as a path parameter; operationIds are unique.
    const ids: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { parameters?: { name: string; in: string }[]; operationId?: string }>>)) {
      const wanted = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const op of Object.values(ops)) {
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
        expect(declared, path).toEqual(wanted);
        if (op.operationId) ids.push(op.operationId);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    const edgeName = doc.paths['/workflows/{workflow}/edges/{name}'].get.parameters.find((p: { name: string }) => p.name === 'name');
    expect(edgeName.schema.enum).toEqual(expect.arrayContaining(['blocks', 'needs', 'process_used']));
    // Catch-alls are not documented.
    expect(doc.paths['/workflows/{workflow}/{collection}']).toBeUndefined();
  });
});

describe('workflows', () => {
  it('creates a workflow with its config and status, reads, lists, updates and deletes it', async () => {
    const created = await call('POST', '/workflows', { name: 'w1', user: 'alice', description: 'first' });
    expect(created.status).toBe(200);
    const wf = created.body;
    expect(wf).toMatchObject({ name: 'w1', user: 'alice', description: 'first', is_archived: false });
    expect(wf._id).toBe(`workflows/${wf._key}`);
    expect(Date.parse(wf.timestamp)).not.toBeNaN();

    const config = await call('GET', `/workflows/${wf._key}/config`);
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      _key: wf._key,
      compute_node_expiration_buffer_seconds: 120,
      compute_node_wait_for_new_jobs_seconds: 0,
      prepare_jobs_sort_method: 'gpus_runtime_memory',
      compute_node_resource_stats: { cpu: true, memory: true, interval: 10 },
    });
    const status = await call('GET', `/workflows/${wf._key}/status`);
    expect(status.body).toMatchObject({ _key: wf._key, run_id: 0, is_canceled: false, auto_tune_status: { enabled: false, job_keys: [] } });

    expect((await call('GET', `/workflows/${wf._key}`)).body).toEqual(wf);
    expect((await call('GET', `/workflows/${encodeURIComponent(wf._id)}`)).body).toEqual(wf);

    const put = await call('PUT', `/workflows/${wf._key}`, { description: 'second', _rev: wf._rev, _key: wf._key });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'w1', user: 'alice', description: 'second' });
    const stale = await call('PUT', `/workflows/${wf._key}`, { description: 'third', _rev: wf._rev });
    expect(stale.status).toBe(409);
    expect((await call('GET', `/workflows/${wf._key}`)).body.description).toBe('second');

    const del = await call('DELETE', `/workflows/${wf._key}`);
    expect(del.status).toBe(200);
    expect(del.body._key).toBe(wf._key);
    for (const path of [`/workflows/${wf._key}`, `/workflows/${wf._key}/config`, `/workflows/${wf._key}/status`, `/workflows/${wf._key}/jobs`]) {
      const res = await call('GET', path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('WORKFLOW_NOT_FOUND');
    }
  });

  it('updates config and status with a _rev precondition (stale → 409, nothing written)', async () => {
    const wf = (await call('POST', '/workflows', { name: 'cfg' })).body;
    const config = (await call('GET', `/workflows/${wf._key}/config`)).body;
    const put = await call('PUT', `/workflows/${wf._key}/config`, { ...config, compute_node_wait_for_new_jobs_seconds: 90, worker_startup_script: 'echo hi' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ compute_node_wait_for_new_jobs_seconds: 90, worker_startup_script: 'echo hi', compute_node_expiration_buffer_seconds: 120 });
    const stale = await call('PUT', `/workflows/${wf._key}/config`, { ...config, compute_node_wait_for_new_jobs_seconds: 5 });
    expect(stale.status).toBe(409);
    expect((await call('GET', `/workflows/${wf._key}/config`)).body.compute_node_wait_for_new_jobs_seconds).toBe(90);

    const status = (await call('GET', `/workflows/${wf._key}/status`)).body;
    const bumped = await call('PUT', `/workflows/${wf._key}/status`, { ...status, run_id: status.run_id + 1 });
    expect(bumped.status).toBe(200);
    expect(bumped.body.run_id).toBe(1);
    const race = await call('PUT', `/workflows/${wf._key}/status`, { ...status, run_id: status.run_id + 1 });
    expect(race.status).toBe(409);
    expect(race.body.error.code).toBe('REVISION_CONFLICT');
    expect((await call('GET', `/workflows/${wf._key}/status`)).body.run_id).toBe(1);
  });

  it('reports the 24 collection names: documents, vertices, edges', async () => {
    const wf = (await call('POST', '/workflows', { name: 'names' })).body;
    const res = await call('GET', `/workflows/${wf._key}/collection_names`);
    expect(res.status).toBe(200);
    expect(res.body.names).toHaveLength(24);
    expect(res.body.names.slice(0, 2)).toEqual(['events', 'scheduled_compute_nodes']);
    expect(res.body.names).toEqual([...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES]);
  });

  it('deleting a workflow deletes every document and edge in it, and nothing of another', async () => {
    const wf = (await call('POST', '/workflows', { name: 'doomed' })).body._key as string;
    const other = (await call('POST', '/workflows', { name: 'kept' })).body._key as string;
    for (const w of [wf, other]) {
      for (const c of WORKFLOW_COLLECTION_NAMES) expect((await call('POST', `/workflows/${w}/${c}`, SAMPLE_DOCS[c])).status).toBe(200);
      const f = (await call('POST', `/workflows/${w}/files`, { path: '/x' })).body;
      expect((await call('POST', `/workflows/${w}/jobs`, { name: 'j', command: 'c', input_files: [f._id] })).status).toBe(200);
    }
    const keyOf = async (w: string, c: string): Promise<string[]> => (await srv.store.find(c as never, w)).items.map((d) => d._key);
    const before = await keyOf(wf, 'needs');
    expect(before).toHaveLength(1);

    expect((await call('DELETE', `/workflows/${wf}`)).status).toBe(200);
    for (const c of [...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES]) expect(await srv.store.count(c, wf)).toBe(0);
    expect(await srv.store.get('workflow_configs', null, wf)).toBeNull();
    expect(await srv.store.get('workflow_statuses', null, wf)).toBeNull();
    // The other workflow is whole.
    for (const c of WORKFLOW_COLLECTION_NAMES) expect(await srv.store.count(c, other)).toBeGreaterThan(0);
    expect(await srv.store.count('needs', other)).toBe(1);
    expect((await call('GET', `/workflows/${other}/config`)).status).toBe(200);
  });
});
