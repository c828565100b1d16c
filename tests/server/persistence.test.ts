/**
 * Restart persistence: stop the server, start a new one on the same SQLite file, and every
 * document, edge, config and status is there with the same keys and revisions.
 */
import { afterAll, expect, it } from 'vitest';
import { WORKFLOW_COLLECTION_NAMES } from '../../graph/model.js';
import { SAMPLE_DOCS } from '../fixtures/sample-docs.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';

let srv: TestServer | undefined;
afterAll(async () => {
  await srv?.close();
});

it('keeps everything across a restart on the same file', async () => {
  srv = await startTestServer();
  const first = srv.baseUrl;
  const wf = (await api(first, 'POST', '/workflows', { name: 'persist', user: 'bob' })).body;
  const docs: Record<string, unknown> = {};
  for (const c of WORKFLOW_COLLECTION_NAMES) docs[c] = (await api(first, 'POST', `/workflows/${wf._key}/${c}`, SAMPLE_DOCS[c])).body;
  const file = (await api(first, 'POST', `/workflows/${wf._key}/files`, { path: '/in' })).body;
  const job = (await api(first, 'POST', `/workflows/${wf._key}/jobs`, { name: 'reader', command: 'cat /in', input_files: [file._id] })).body;
  const status = (await api(first, 'GET', `/workflows/${wf._key}/status`)).body;
  const newStatus = (await api(first, 'PUT', `/workflows/${wf._key}/status`, { ...status, run_id: 3 })).body;

  srv = await srv.restart();
  const second = srv.baseUrl;
  expect((await api(second, 'GET', `/workflows/${wf._key}`)).body).toEqual(wf);
  for (const c of WORKFLOW_COLLECTION_NAMES) {
    const d = docs[c] as { _key: string };
    expect((await api(second, 'GET', `/workflows/${wf._key}/${c}/${d._key}`)).body).toEqual(d);
  }
  expect((await api(second, 'GET', `/workflows/${wf._key}/status`)).body).toEqual(newStatus);
  const needs = (await api(second, 'GET', `/workflows/${wf._key}/edges/needs`)).body;
  expect(needs.items.map((e: { _from: string; _to: string }) => [e._from, e._to])).toEqual([[job._id, file._id]]);

  // New keys after the restart do not collide with old ones.
  const after = (await api(second, 'POST', `/workflows/${wf._key}/files`, { path: '/later' })).body;
  expect(after._key).not.toBe(file._key);
  expect((await api(second, 'GET', `/workflows/${wf._key}/files`)).body.total_count).toBe(3);
});
