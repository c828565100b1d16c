/**
 * The HTTP API on each store: a real server on 127.0.0.1 over a real SQLite file (always) and over
 * ArangoDB (when WEFT_ARANGO_URL is set; skipped with that reason otherwise). The same requests,
 * the same answers: collections, paging, edges and their cascades, workflow removal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_COLLECTIONS, EDGE_COLLECTION_NAMES, WORKFLOW_COLLECTION_NAMES, type WorkflowCollectionName } from '../../graph/model.js';
import { startServer, type RunningServer } from '../../server/main.js';
import { SAMPLE_DOCS } from '../fixtures/sample-docs.js';
import { api } from '../helpers/server.js';
import { ARANGO_URL, dropLiveDatabase, liveArangoOptions, skipWithoutArango } from './live-options.js';

interface StoreSetup {
  name: string;
  skip: boolean;
  flags: () => Record<string, unknown>;
  cleanup: () => Promise<void>;
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'weft-api-stores-'));
const arangoOptions = liveArangoOptions(`weft_api_test_${process.pid}`);
const SETUPS: StoreSetup[] = [
  { name: 'sqlite', skip: false, flags: () => ({ store: 'sqlite', db: join(sqliteDir, 'weft.db') }), cleanup: async () => rmSync(sqliteDir, { recursive: true, force: true }) },
  {
    name: 'arango',
    skip: skipWithoutArango('the API suite'),
    flags: () => ({
      store: 'arango',
      arangoUrl: ARANGO_URL,
      arangoDb: arangoOptions.database,
      ...(arangoOptions.token ? { arangoToken: arangoOptions.token } : {}),
      ...(arangoOptions.username ? { arangoUser: arangoOptions.username, arangoPassword: arangoOptions.password } : {}),
    }),
    cleanup: () => dropLiveDatabase(arangoOptions),
  },
];

describe.each(SETUPS)('API on the $name store', (setup) => {
  let server: RunningServer;
  const call = (method: string, path: string, body?: unknown) => api(server.url, method, path, body);

  async function vertex(wf: string, c: string): Promise<{ _id: string; _key: string }> {
    const res = await call('POST', `/workflows/${wf}/${c}`, SAMPLE_DOCS[c as WorkflowCollectionName]);
    expect(res.status).toBe(200);
    return res.body;
  }

  beforeAll(async () => {
    if (setup.skip) return;
    server = await startServer({ flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...setup.flags() }, env: {}, background: [] });
  });
  afterAll(async () => {
    if (setup.skip) return;
    await server.close();
    await setup.cleanup();
  });

  it.skipIf(setup.skip)('stores, lists with paging, updates and deletes a document of every collection', async () => {
    const wf = (await call('POST', '/workflows', { name: 'every-collection' })).body._key as string;
    for (const c of WORKFLOW_COLLECTION_NAMES) {
      const a = await vertex(wf, c);
      await vertex(wf, c);
      const got = await call('GET', `/workflows/${wf}/${c}/${a._key}`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject(SAMPLE_DOCS[c]);
      expect(got.body).not.toHaveProperty('workflow');
      expect(got.body).not.toHaveProperty('weft_seq');
      const page = await call('GET', `/workflows/${wf}/${c}?limit=1`);
      expect(page.body).toMatchObject({ count: 1, total_count: 2, has_more: true });
      expect(page.body.items[0]._key).toBe(a._key);
      expect((await call('DELETE', `/workflows/${wf}/${c}/${a._key}`)).status).toBe(200);
      expect((await call('GET', `/workflows/${wf}/${c}/${a._key}`)).status).toBe(404);
    }
  });

  it.skipIf(setup.skip)('edges of every edge collection, and the cascade when a vertex goes', async () => {
    const wf = (await call('POST', '/workflows', { name: 'edges' })).body._key as string;
    for (const name of EDGE_COLLECTION_NAMES) {
      const spec = EDGE_COLLECTIONS[name];
      const from = await vertex(wf, spec.from[0]!);
      const to = await vertex(wf, spec.to[spec.to.length - 1]!);
      const created = await call('POST', `/workflows/${wf}/edges/${name}`, { _from: from._id, _to: to._id, data: { run_id: 1 } });
      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({ _from: from._id, _to: to._id, data: { run_id: 1 } });
      expect((await call('DELETE', `/workflows/${wf}/${spec.to[spec.to.length - 1]}/${to._key}`)).status).toBe(200);
      expect((await call('GET', `/workflows/${wf}/edges/${name}/${created.body._key}`)).status).toBe(404);
    }
    const a = (await call('POST', `/workflows/${wf}/jobs`, { name: 'a', command: 'x' })).body;
    const f = await vertex(wf, 'files');
    const b = (await call('POST', `/workflows/${wf}/jobs`, { name: 'b', command: 'x', blocked_by: [a._id], input_files: [f._id] })).body;
    expect((await call('GET', `/workflows/${wf}/edges/blocks`)).body.total_count).toBe(1);
    expect((await call('DELETE', `/workflows/${wf}/files`)).status).toBe(200);
    expect((await call('GET', `/workflows/${wf}/edges/needs`)).body.total_count).toBe(0);
    expect((await call('DELETE', `/workflows/${wf}/jobs/${b._key}`)).status).toBe(200);
    expect((await call('GET', `/workflows/${wf}/edges/blocks`)).body.total_count).toBe(0);
  });

  it.skipIf(setup.skip)('deleting a workflow removes it and everything in it', async () => {
    const wf = (await call('POST', '/workflows', { name: 'gone' })).body._key as string;
    await vertex(wf, 'jobs');
    await vertex(wf, 'files');
    expect((await call('DELETE', `/workflows/${wf}`)).status).toBe(200);
    expect((await call('GET', `/workflows/${wf}`)).status).toBe(404);
    expect(await server.store.count('jobs', wf)).toBe(0);
    expect(await server.store.count('files', wf)).toBe(0);
  });
});
