/**
 * start_job, complete_job and manage_status_change over HTTP: the happy path with its results,
 * edges and events; every refusal (stale _rev, wrong run_id, illegal status, another holder,
 * body not matching the path) changes nothing; an identical retried report is answered 200 once
 * more without a second result; reversal of a finished job.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import {
  addNode, bind, buildWorkflow, claim, completePath, drain, events, getJob, jobsByName, ok, result, runJob, start, startPath, statuses, type Api,
} from './lifecycle-helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

async function chain(): Promise<{ wf: string; keys: Record<string, string>; ids: Record<string, string>; node: string }> {
  const built = await buildWorkflow(call, { jobs: { a: {}, b: { after: ['a'] }, c: { after: ['b'] } } });
  const node = await addNode(call, built.wf);
  await start(call, built.wf);
  return { ...built, node };
}

/** Everything a refused request must leave unchanged. */
async function snapshot(wf: string): Promise<string> {
  const [jobs, results, ev, returned, executed] = await Promise.all(
    ['jobs', 'results', 'events', 'edges/returned', 'edges/executed'].map((c) => ok(call, 'GET', `/workflows/${wf}/${c}`)),
  );
  return JSON.stringify([jobs.items, results.items, ev.items, returned.items, executed.items]);
}

describe('start_job and complete_job', () => {
  it('run a chain: start records holder, hash, executed edge and event; complete records result, returned edge, event, and readies the next job', async () => {
    const { wf, keys, ids, node } = await chain();
    const claimed = await claim(call, wf, keys.a!, node);
    const started = await ok(call, 'PUT', startPath(wf, keys.a!, claimed._rev, 1, node));
    expect(started.status).toBe('submitted');
    expect(started.internal.compute_node_key).toBe(node);
    expect(started.internal.hash).toMatch(/^[0-9a-f]{64}$/);
    const executed = (await ok(call, 'GET', `/workflows/${wf}/edges/executed`)).items;
    expect(executed).toHaveLength(1);
    expect(executed[0]).toMatchObject({ _from: `compute_nodes/${node}`, _to: ids['jobs:a'], data: { run_id: 1 } });

    // full ids in the path work too (Torc workers send them)
    const done = await ok(call, 'POST', completePath(wf, encodeURIComponent(ids['jobs:a']!), 'done', started._rev, 1, encodeURIComponent(`compute_nodes/${node}`)), result(keys.a!, 1));
    expect(done.status).toBe('done');
    expect(await statuses(call, wf)).toEqual({ a: 'done', b: 'ready', c: 'blocked' });
    const results = (await ok(call, 'GET', `/workflows/${wf}/results`)).items;
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ job_key: keys.a, run_id: 1, return_code: 0, status: 'done', compute_node_key: node });
    const returned = (await ok(call, 'GET', `/workflows/${wf}/edges/returned`)).items;
    expect(returned).toEqual([expect.objectContaining({ _from: ids['jobs:a'], _to: results[0]._id })]);
    const jobEvents = await events(call, wf, 'job');
    expect(jobEvents.map((e) => e.type)).toEqual(['start', 'complete']);
    expect(jobEvents[0]).toMatchObject({ job_key: keys.a, job_name: 'a', node_name: 'node-a' });
    expect(jobEvents[1]).toMatchObject({ job_key: keys.a, job_name: 'a', node_name: 'node-a', ready_job_keys: [keys.b] });
    expect((await ok(call, 'GET', `/workflows/${wf}/results/find_by_job/${keys.a}`))._id).toBe(results[0]._id);

    expect(await drain(call, wf, node)).toEqual(['b', 'c']);
    expect((await ok(call, 'GET', `/workflows/${wf}/is_complete`)).is_complete).toBe(true);
  });

  it('a retried identical complete_job is answered 200 with the job and records nothing twice', async () => {
    const { wf, keys, node } = await chain();
    const claimed = await claim(call, wf, keys.a!, node);
    const started = await ok(call, 'PUT', startPath(wf, keys.a!, claimed._rev, 1, node));
    const first = await ok(call, 'POST', completePath(wf, keys.a!, 'done', started._rev, 1, node), result(keys.a!, 1));
    const before = await snapshot(wf);
    const again = await ok(call, 'POST', completePath(wf, keys.a!, 'done', started._rev, 1, node), result(keys.a!, 1));
    expect(again._rev).toBe(first._rev);
    expect(await snapshot(wf)).toBe(before);
    // a different report for the same job is not a retry: refused
    const other = await call('POST', completePath(wf, keys.a!, 'terminated', started._rev, 1, node), result(keys.a!, 1, 0, 'terminated'));
    expect(other.status).toBe(409);
    expect(await snapshot(wf)).toBe(before);
  });

  it('refusals change nothing: stale _rev (409), wrong run_id (400), not submitted_pending (400), another holder (409), not running (409), body not matching the path (400)', async () => {
    const { wf, keys, node } = await chain();
    const other = await addNode(call, wf, 'node-b');
    // start_job on a ready job: 400
    let before = await snapshot(wf);
    const ready = await getJob(call, wf, keys.a!);
    let res = await call('PUT', startPath(wf, keys.a!, ready._rev, 1, node));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_TRANSITION');
    // complete_job on a ready job: 409
    res = await call('POST', completePath(wf, keys.a!, 'done', ready._rev, 1, node), result(keys.a!, 1));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('STATE_CONFLICT');
    expect(await snapshot(wf)).toBe(before);

    const claimed = await claim(call, wf, keys.a!, node);
    before = await snapshot(wf);
    res = await call('PUT', startPath(wf, keys.a!, ready._rev, 1, node)); // stale
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('REVISION_CONFLICT');
    res = await call('PUT', startPath(wf, keys.a!, claimed._rev, 2, node)); // wrong run
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('RUN_ID_MISMATCH');
    res = await call('PUT', startPath(wf, keys.a!, claimed._rev, 1, other)); // claimed by node, not other
    expect(res.status).toBe(409);
    res = await call('PUT', startPath(wf, keys.a!, claimed._rev, 1, 'nosuchnode'));
    expect(res.status).toBe(404);
    expect(await snapshot(wf)).toBe(before);

    const started = await ok(call, 'PUT', startPath(wf, keys.a!, claimed._rev, 1, node));
    before = await snapshot(wf);
    res = await call('POST', completePath(wf, keys.a!, 'done', claimed._rev, 1, node), result(keys.a!, 1)); // stale
    expect(res.status).toBe(409);
    res = await call('POST', completePath(wf, keys.a!, 'done', started._rev, 2, node), result(keys.a!, 2)); // wrong run
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('RUN_ID_MISMATCH');
    res = await call('POST', completePath(wf, keys.a!, 'done', started._rev, 1, other), result(keys.a!, 1)); // not the holder
    expect(res.status).toBe(409);
    res = await call('POST', completePath(wf, keys.a!, 'done', started._rev, 1, node), result(keys.b!, 1)); // job_key of another job
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('job_key');
    res = await call('POST', completePath(wf, keys.a!, 'done', started._rev, 1, node), result(keys.a!, 1, 0, 'terminated'));
    expect(res.status).toBe(400);
    res = await call('POST', completePath(wf, keys.a!, 'finished', started._rev, 1, node), result(keys.a!, 1));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('status');
    res = await call('POST', completePath(wf, keys.a!, 'done', started._rev, 1, node), { job_key: keys.a, run_id: 1 });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('return_code');
    expect(await snapshot(wf)).toBe(before);
    expect((await statuses(call, wf)).a).toBe('submitted');
  });

  it('complete_job of a job canceled by a workflow cancel records the result and unblocks nothing', async () => {
    const { wf, keys, node } = await chain();
    const claimed = await claim(call, wf, keys.a!, node);
    await ok(call, 'PUT', startPath(wf, keys.a!, claimed._rev, 1, node));
    await ok(call, 'PUT', `/workflows/${wf}/cancel`);
    const fresh = await getJob(call, wf, keys.a!); // the worker re-reads the job, as Torc's does
    expect(fresh.status).toBe('canceled');
    const res = await ok(call, 'POST', completePath(wf, keys.a!, 'canceled', fresh._rev, 1, node), result(keys.a!, 1, -9, 'canceled'));
    expect(res.status).toBe('canceled');
    expect((await ok(call, 'GET', `/workflows/${wf}/results`)).items).toHaveLength(1);
    expect(await statuses(call, wf)).toEqual({ a: 'canceled', b: 'canceled', c: 'canceled' });
    // b was never held by anyone: nobody can report it
    const b = await getJob(call, wf, keys.b!);
    const res2 = await call('POST', completePath(wf, keys.b!, 'canceled', b._rev, 1, node), result(keys.b!, 1, -9, 'canceled'));
    expect(res2.status).toBe(409);
  });
});

describe('manage_status_change', () => {
  it('done → uninitialized resets everything downstream; initialize(only_uninitialized) runs them again', async () => {
    const { wf, keys, node } = await chain();
    await drain(call, wf, node);
    const a = await getJob(call, wf, keys.a!);
    const res = await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.a}/manage_status_change/uninitialized/${encodeURIComponent(a._rev)}/1`);
    expect(res.status).toBe('uninitialized');
    expect(await statuses(call, wf)).toEqual({ a: 'uninitialized', b: 'uninitialized', c: 'uninitialized' });
    const ev = (await events(call, wf, 'job')).filter((e) => e.type === 'status_change');
    expect(ev).toEqual([expect.objectContaining({ job_key: keys.a, old_status: 'done', status: 'uninitialized', reset_job_keys: [keys.b, keys.c] })]);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=true`);
    expect(await statuses(call, wf)).toEqual({ a: 'ready', b: 'blocked', c: 'blocked' });
    expect(await drain(call, wf, node)).toEqual(['a', 'b', 'c']);
  });

  it('a job rerun within the same run keeps one result for that run (the latest), with one returned edge', async () => {
    const { wf, keys, node } = await chain();
    await runJob(call, wf, keys.a!, node, 3);
    const a = await getJob(call, wf, keys.a!);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.a}/manage_status_change/uninitialized/${encodeURIComponent(a._rev)}/1`);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=true`);
    await runJob(call, wf, keys.a!, node, 0);
    const results = (await ok(call, 'GET', `/workflows/${wf}/results?job_key=${keys.a}`)).items;
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ run_id: 1, return_code: 0 });
    expect((await ok(call, 'GET', `/workflows/${wf}/edges/returned`)).count).toBe(1);
    expect(await statuses(call, wf)).toEqual({ a: 'done', b: 'ready', c: 'blocked' });
  });

  it('refusals: complete status (400), stale _rev (400, as Torc), claim statuses (400), wrong run_id (400); the same status changes nothing', async () => {
    const { wf, keys, node } = await chain();
    await runJob(call, wf, keys.a!, node);
    const a = await getJob(call, wf, keys.a!);
    const before = await snapshot(wf);
    const path = (s: string, rev: string, run: number) => `/workflows/${wf}/jobs/${keys.a}/manage_status_change/${s}/${encodeURIComponent(rev)}/${run}`;
    let res = await call('PUT', path('done', a._rev, 1));
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('complete_job');
    res = await call('PUT', path('uninitialized', 'stale-rev', 1));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('STALE_REVISION');
    res = await call('PUT', path('submitted', a._rev, 1));
    expect(res.status).toBe(400);
    res = await call('PUT', path('uninitialized', a._rev, 7));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('RUN_ID_MISMATCH');
    res = await call('PUT', path('bogus', a._rev, 1));
    expect(res.status).toBe(400);
    expect(await snapshot(wf)).toBe(before);
    const b = (await jobsByName(call, wf)).b;
    const same = await ok(call, 'PUT', `/workflows/${wf}/jobs/${b._key}/manage_status_change/ready/${encodeURIComponent(b._rev)}/1`);
    expect(same._rev).toBe(b._rev);
    expect(await snapshot(wf)).toBe(before);
  });
});
