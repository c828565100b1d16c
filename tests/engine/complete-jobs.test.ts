/**
 * complete_jobs (Weft extension): many completions in one request, each with complete_job's
 * rules in its own transaction, then an optional claim (and start) that sees what they unblocked.
 * Real server, real SQLite file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { WeftClient, type JobCompletion } from '../../client/index.js';
import { api, testServerForSuite } from '../helpers/server.js';
import { createWithNode, NODE_RESOURCES as RESOURCES, statusesByName, type Json } from './claims-helpers.js';

const srv = testServerForSuite();
let b: string;
let client: WeftClient;

beforeAll(() => {
  b = srv.baseUrl;
  client = new WeftClient(b, { retryMinutes: 0 });
});

const setup = (spec: Json) => createWithNode(b, spec);

async function claimStart(wf: string, node: string, run: number, limit = 100): Promise<Json[]> {
  const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&start_run_id=${run}&limit=${limit}`, RESOURCES);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.jobs;
}

function completion(job: Json, node: string, run: number, rc = 0, status: 'done' | 'canceled' | 'terminated' = 'done'): JobCompletion {
  return {
    job_key: job._key, status, rev: job._rev, run_id: run, compute_node_key: node,
    result: { job_key: job._key, run_id: run, return_code: rc, exec_time_minutes: 0.01, completion_time: new Date().toISOString(), status },
  };
}

async function post(wf: string, body: unknown): Promise<{ status: number; body: any }> {
  return api(b, 'POST', `/workflows/${wf}/complete_jobs`, body);
}

describe('complete_jobs', () => {
  it('applies good items and answers a stale one with complete_job\'s own error, in request order', async () => {
    const { wf, node, run } = await setup({ name: 'mixed', jobs: ['a', 'b', 'c'].map((name) => ({ name, command: 'true' })) });
    const [a, bJob, c] = (await claimStart(wf, node, run)).sort((x, y) => String(x.name).localeCompare(String(y.name)));
    const stale = { ...completion(bJob!, node, run), rev: 'stale-rev' };
    const res = await client.completeJobs(wf, [completion(a!, node, run), stale, completion(c!, node, run)]);
    expect(res.items.map((i) => [i.job_key, i.status])).toEqual([[a!._key, 200], [bJob!._key, 409], [c!._key, 200]]);
    expect(res.items[0]!.job!.status).toBe('done');
    expect(res.items[1]!.error!.code).toBe('REVISION_CONFLICT');
    expect(res.claimed).toBeUndefined();
    const statuses = await statusesByName(b, wf);
    expect(Object.fromEntries(statuses)).toEqual({ a: 'done', b: 'submitted', c: 'done' });
    // The single endpoint answers the same stale request with the same error body.
    const single = await api(b, 'POST', `/workflows/${wf}/jobs/${bJob!._key}/complete_job/done/stale-rev/${run}/${node}`, stale.result);
    expect(single.status).toBe(409);
    expect(res.items[1]!.error).toEqual(single.body.error);
    // An identical retry of the whole batch: the done items answer 200 unchanged; b now completes.
    const retry = await client.completeJobs(wf, [completion(a!, node, run), completion(bJob!, node, run), completion(c!, node, run)]);
    expect(retry.items.map((i) => i.status)).toEqual([200, 200, 200]);
    expect(retry.items[0]!.job!._rev).toBe(res.items[0]!.job!._rev);
    expect(retry.items[2]!.job!._rev).toBe(res.items[2]!.job!._rev);
    expect((await api(b, 'GET', `/workflows/${wf}/results`)).body.items).toHaveLength(3);
    expect((await api(b, 'GET', `/workflows/${wf}/is_complete`)).body.is_complete).toBe(true);
  });

  it('answers per item: unknown job 404, body disagreeing with the item 400, run_id mismatch 400, job not started 409', async () => {
    const { wf, node, run } = await setup({ name: 'per-item', jobs: ['a', 'b'].map((name) => ({ name, command: 'true' })) });
    const [a] = await claimStart(wf, node, run, 1);
    const notStarted = (await api(b, 'GET', `/workflows/${wf}/jobs`)).body.items.find((j: Json) => j.status === 'ready');
    const mismatch = completion(a!, node, run);
    mismatch.result = { ...mismatch.result, job_key: notStarted._key };
    const res = await post(wf, {
      completions: [
        completion({ _key: '999999', _rev: 'x' }, node, run),
        mismatch,
        completion(a!, node, run + 1),
        completion(notStarted, node, run),
        completion(a!, node, run),
      ],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.items.map((i: Json) => [i.status, i.error?.code])).toEqual([
      [404, 'DOCUMENT_NOT_FOUND'],
      [400, 'VALIDATION_FAILED'],
      [400, 'RUN_ID_MISMATCH'],
      [409, 'STATE_CONFLICT'],
      [200, undefined],
    ]);
    expect(res.body.items[1].error.details[0].path).toEqual(['job_key']);
  });

  it('claims (and starts) in the same request the jobs its completions unblocked', async () => {
    const { wf, node, run } = await setup({
      name: 'chain',
      jobs: [
        { name: 'a', command: 'true' },
        { name: 'b', command: 'true', blocked_by: ['a'] },
        { name: 'c', command: 'true', blocked_by: ['b'] },
      ],
    });
    let held = await claimStart(wf, node, run);
    const seen: string[] = [];
    while (held.length > 0) {
      seen.push(...held.map((j) => j.name as string));
      const res = await client.completeJobs(wf, held.map((j) => completion(j, node, run)), { compute_node_key: node, resources: RESOURCES, start_run_id: run, limit: 4 });
      expect(res.items.every((i) => i.status === 200)).toBe(true);
      held = res.claimed!.jobs;
      for (const j of held) expect(j.status).toBe('submitted');
      if (held.length === 0) expect(res.claimed!.reason).not.toBe('');
    }
    expect(seen).toEqual(['a', 'b', 'c']);
    expect((await api(b, 'GET', `/workflows/${wf}/is_complete`)).body.is_complete).toBe(true);
    const events = (await api(b, 'GET', `/workflows/${wf}/events`)).body.items as Json[];
    expect(events.filter((e) => e.type === 'start')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'complete')).toHaveLength(3);
  });

  it('completes more jobs than run at once (130) in request order, then claims what they unblocked', async () => {
    const jobs: Json[] = [];
    for (let i = 0; i < 130; i++) jobs.push({ name: `p${i}`, command: 'true' });
    for (let i = 0; i < 130; i++) jobs.push({ name: `q${i}`, command: 'true', blocked_by: [`p${i}`] });
    const { wf, node, run } = await setup({ name: 'many', jobs });
    const held = (await client.prepareNextJobsForSubmission(wf, 1000, { compute_node_key: node, start_run_id: run })).jobs;
    expect(held).toHaveLength(130);
    const res = await client.completeJobs(wf, held.map((j) => completion(j, node, run)), { compute_node_key: node, resources: { ...RESOURCES, num_cpus: 1000 }, start_run_id: run });
    expect(res.items.map((i) => i.job_key)).toEqual(held.map((j) => j._key));
    expect(res.items.every((i) => i.status === 200 && i.job!.status === 'done')).toBe(true);
    expect(res.claimed!.jobs.map((j) => j.name).sort()).toEqual(Array.from({ length: 130 }, (_, i) => `q${i}`).sort());
  });

  it('claims without starting when the claim has no start_run_id, and honours limit', async () => {
    const { wf, node, run } = await setup({ name: 'limit', jobs: [1, 2, 3, 4, 5, 6].map((i) => ({ name: `j${i}`, command: 'true' })) });
    const [first] = await claimStart(wf, node, run, 1);
    const res = await client.completeJobs(wf, [completion(first!, node, run)], { compute_node_key: node, resources: RESOURCES, limit: 2 });
    expect(res.claimed!.jobs).toHaveLength(2);
    for (const j of res.claimed!.jobs) {
      expect(j.status).toBe('submitted_pending');
      expect((j.internal as Json).compute_node_key).toBe(node);
    }
    // No completions at all: a plain claim.
    const only = await client.completeJobs(wf, [], { compute_node_key: node, resources: RESOURCES, start_run_id: run });
    expect(only.items).toEqual([]);
    expect(only.claimed!.jobs.map((j) => j.status)).toEqual(['submitted', 'submitted', 'submitted']);
  });

  it('cascades a failure in the completion\'s transaction: the claim finds nothing', async () => {
    const { wf, node, run } = await setup({
      name: 'cascade',
      jobs: [
        { name: 'a', command: 'false' },
        { name: 'b', command: 'true', blocked_by: ['a'] },
        { name: 'c', command: 'true', blocked_by: ['b'] },
      ],
    });
    const [a] = await claimStart(wf, node, run);
    const res = await client.completeJobs(wf, [completion(a!, node, run, 1)], { compute_node_key: node, resources: RESOURCES, start_run_id: run });
    expect(res.items[0]!.status).toBe(200);
    expect(res.claimed!.jobs).toEqual([]);
    expect(Object.fromEntries(await statusesByName(b, wf))).toEqual({ a: 'done', b: 'canceled', c: 'canceled' });
  });

  it('refuses a bad claim before applying any completion', async () => {
    const { wf, node, run } = await setup({ name: 'bad-claim', jobs: [{ name: 'a', command: 'true' }, { name: 'b', command: 'true' }] });
    const [a] = await claimStart(wf, node, run, 1);
    const items = [completion(a!, node, run)];
    const mismatch = await post(wf, { completions: items, claim: { compute_node_key: node, resources: RESOURCES, start_run_id: run + 1 } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.code).toBe('RUN_ID_MISMATCH');
    const badLimit = await post(wf, { completions: items, claim: { compute_node_key: node, resources: { ...RESOURCES, time_limit: 'soon' } } });
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.details[0].path).toEqual(['claim', 'resources', 'time_limit']);
    const noNode = await post(wf, { completions: items, claim: { compute_node_key: '999999', resources: RESOURCES } });
    expect(noNode.status).toBe(404);
    expect(noNode.body.error.details[0].path).toEqual(['claim', 'compute_node_key']);
    expect(Object.fromEntries(await statusesByName(b, wf))).toEqual({ a: 'submitted', b: 'ready' });
  });

  it('answers bad bodies with 400 naming the field', async () => {
    const { wf, node, run } = await setup({ name: 'bad-bodies', jobs: [{ name: 'a', command: 'true' }] });
    const good = completion({ _key: '1', _rev: 'r' }, node, run);
    const cases: [unknown, (string | number)[]][] = [
      [{}, ['completions']],
      [{ completions: 'x' }, ['completions']],
      [{ completions: Array.from({ length: 1001 }, () => good) }, ['completions']],
      [{ completions: [{ ...good, rev: undefined }] }, ['completions', 0, 'rev']],
      [{ completions: [{ ...good, status: 'finished' }] }, ['completions', 0, 'status']],
      [{ completions: [{ ...good, run_id: -1 }] }, ['completions', 0, 'run_id']],
      [{ completions: [{ ...good, result: { ...good.result, return_code: 'zero' } }] }, ['completions', 0, 'result', 'return_code']],
      [{ completions: [{ ...good, extra: 1 }] }, ['completions', 0, 'extra']],
      [{ completions: [], claim: { resources: RESOURCES } }, ['claim', 'compute_node_key']],
      [{ completions: [], claim: { compute_node_key: node, resources: { memory_gb: 1 } } }, ['claim', 'resources', 'num_cpus']],
      [{ completions: [], claim: { compute_node_key: node, resources: RESOURCES, limit: 0 } }, ['claim', 'limit']],
      [{ completions: [], surprise: true }, ['surprise']],
    ];
    for (const [body, path] of cases) {
      const res = await post(wf, body);
      expect(res.status, JSON.stringify(body).slice(0, 200)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.map((d: Json) => d.path), JSON.stringify(res.body.error)).toContainEqual(path);
    }
    const unknownWf = await post('999999', { completions: [] });
    expect(unknownWf.status).toBe(404);
    expect(unknownWf.body.error.code).toBe('WORKFLOW_NOT_FOUND');
    expect((await statusesByName(b, wf)).get('a')).toBe('ready');
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await api(b, 'GET', '/openapi.json')).body;
    expect(doc.paths['/workflows/{key}/complete_jobs'].post.operationId).toBe('complete_jobs');
    const names = doc.paths['/workflows/{key}/prepare_jobs_for_submission'].post.parameters.map((p: Json) => p.name);
    expect(names).toContain('start_run_id');
  });
});
