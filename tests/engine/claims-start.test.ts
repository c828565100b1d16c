/**
 * Claim and start in one call (Weft extension): prepare_jobs_for_submission and
 * prepare_next_jobs_for_submission with start_run_id start each claimed job in the claim's
 * transaction, exactly as start_job does. Real server, real SQLite file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { WeftClient } from '../../client/index.js';
import { api, testServerForSuite } from '../helpers/server.js';
import { createWithNode, NODE_RESOURCES as RESOURCES, statusesByName, type Json } from './claims-helpers.js';

const srv = testServerForSuite();
let b: string;

beforeAll(() => {
  b = srv.baseUrl;
});

const setup = (spec: Json) => createWithNode(b, spec);

async function get(path: string): Promise<any> {
  const res = await api(b, 'GET', path);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

const chainSpec = {
  name: 'claim-start',
  jobs: [
    { name: 'a', command: 'echo a' },
    { name: 'b', command: 'echo b' },
    { name: 'c', command: 'echo c', blocked_by: ['a'] },
  ],
};

describe('prepare_jobs_for_submission with start_run_id', () => {
  it('returns the claimed jobs submitted, held, hashed, with their current _rev, an executed edge and a start event each', async () => {
    const { wf, node, nodeId, run } = await setup(chainSpec);
    const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&start_run_id=${run}`, RESOURCES);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const jobs = res.body.jobs as Json[];
    expect(jobs.map((j) => j.name).sort()).toEqual(['a', 'b']);
    for (const j of jobs) {
      expect(j.status).toBe('submitted');
      expect(j.internal.compute_node_key).toBe(node);
      expect(typeof j.internal.claimed_at).toBe('number');
      expect(j.internal.hash).toMatch(/^[0-9a-f]{64}$/);
      const stored = await get(`/workflows/${wf}/jobs/${j._key}`);
      expect(stored._rev).toBe(j._rev);
      expect(stored.status).toBe('submitted');
    }
    const statuses = await statusesByName(b, wf);
    expect(statuses.get('c')).toBe('blocked');

    const executed = (await get(`/workflows/${wf}/edges/executed`)).items as Json[];
    expect(executed.map((e) => e._to).sort()).toEqual(jobs.map((j) => j._id).sort());
    for (const e of executed) {
      expect(e._from).toBe(nodeId);
      expect(e.data.run_id).toBe(run);
    }
    const events = (await get(`/workflows/${wf}/events`)).items as Json[];
    const starts = events.filter((e) => e.type === 'start');
    expect(starts.map((e) => e.job_key).sort()).toEqual(jobs.map((j) => j._key).sort());
    for (const e of starts) {
      expect(e.run_id).toBe(run);
      expect(e.node_name).toBe('host-a');
    }
    expect(events.filter((e) => e.type === 'claim')).toHaveLength(1);

    // The same hash as start_job records (the two share the code): compare with a job started the usual way.
    const a = jobs.find((j) => j.name === 'a')!;
    const done = await api(b, 'POST', `/workflows/${wf}/jobs/${a._key}/complete_job/done/${a._rev}/${run}/${node}`, {
      job_key: a._key, run_id: run, return_code: 0, exec_time_minutes: 0, completion_time: 'now', status: 'done',
    });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.status).toBe('done');
    expect((await statusesByName(b, wf)).get('c')).toBe('ready');
  });

  it('starts a job with the same input hash start_job gives', async () => {
    const { wf, node, run } = await setup({ name: 'hash', jobs: [{ name: 'x', command: 'echo same' }] });
    const started = (await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&start_run_id=${run}`, RESOURCES)).body.jobs[0];
    const other = await setup({ name: 'hash2', jobs: [{ name: 'x', command: 'echo same' }] });
    const claimed = (await api(b, 'POST', `/workflows/${other.wf}/prepare_jobs_for_submission?compute_node_key=${other.node}`, RESOURCES)).body.jobs[0];
    expect(claimed.status).toBe('submitted_pending');
    const viaStart = await api(b, 'PUT', `/workflows/${other.wf}/jobs/${claimed._key}/start_job/${claimed._rev}/${other.run}/${other.node}`);
    expect(viaStart.status).toBe(200);
    expect(started.internal.hash).toBe(viaStart.body.internal.hash);
  });

  it('refuses a run_id that is not the workflow\'s with 400 RUN_ID_MISMATCH and claims nothing', async () => {
    const { wf, node, run } = await setup(chainSpec);
    const eventsBefore = (await get(`/workflows/${wf}/events`)).items.length;
    const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&start_run_id=${run + 1}`, RESOURCES);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('RUN_ID_MISMATCH');
    const next = await api(b, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=5&compute_node_key=${node}&start_run_id=${run + 1}`);
    expect(next.status).toBe(400);
    expect(next.body.error.code).toBe('RUN_ID_MISMATCH');
    const statuses = await statusesByName(b, wf);
    expect([...statuses.values()].sort()).toEqual(['blocked', 'ready', 'ready']);
    expect((await get(`/workflows/${wf}/events`)).items.length).toBe(eventsBefore);
    expect((await get(`/workflows/${wf}/edges/executed`)).items).toHaveLength(0);
  });

  it('needs compute_node_key (400 naming it) and an existing node (404)', async () => {
    const { wf, run } = await setup(chainSpec);
    for (const path of [`prepare_jobs_for_submission?start_run_id=${run}`, `prepare_next_jobs_for_submission?start_run_id=${run}`]) {
      const res = await api(b, 'POST', `/workflows/${wf}/${path}`, RESOURCES);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details[0].path).toEqual(['compute_node_key']);
      expect(res.body.error.message).toContain('compute_node_key');
    }
    const bad = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?start_run_id=x&compute_node_key=1`, RESOURCES);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toEqual(['start_run_id']);
    const missing = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?start_run_id=${run}&compute_node_key=999999`, RESOURCES);
    expect(missing.status).toBe(404);
    expect([...(await statusesByName(b, wf)).values()].sort()).toEqual(['blocked', 'ready', 'ready']);
  });

  it('prepare_next_jobs_for_submission starts up to limit, through the client', async () => {
    const { wf, node, run } = await setup({ name: 'next', jobs: [1, 2, 3].map((i) => ({ name: `j${i}`, command: 'true' })) });
    const client = new WeftClient(b);
    const got = await client.prepareNextJobsForSubmission(wf, 2, { compute_node_key: node, start_run_id: run });
    expect(got.jobs.map((j) => j.status)).toEqual(['submitted', 'submitted']);
    const packed = await client.prepareJobsForSubmission(wf, RESOURCES, { compute_node_key: node, start_run_id: run, limit: 5 });
    expect(packed.jobs.map((j) => j.name)).toEqual(['j3']);
    expect(packed.jobs[0]!.status).toBe('submitted');
    // A claim without start_run_id is unchanged: submitted_pending.
    const plain = await setup({ name: 'plain', jobs: [{ name: 'p', command: 'true' }] });
    expect((await client.prepareJobsForSubmission(plain.wf, RESOURCES, { compute_node_key: plain.node })).jobs[0]!.status).toBe('submitted_pending');
  });

  it('claims nothing from a canceled workflow', async () => {
    const { wf, node, run } = await setup(chainSpec);
    expect((await api(b, 'PUT', `/workflows/${wf}/cancel`)).status).toBe(200);
    const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&start_run_id=${run}`, RESOURCES);
    expect(res.status).toBe(200);
    expect(res.body.jobs).toEqual([]);
  });
});
