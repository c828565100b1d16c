/**
 * Heartbeats and leases over HTTP with a real lease loop (leaseTimeoutSeconds 2): a job held by a
 * compute node that stops heartbeating goes back to ready with an event; the late report of the
 * old holder is refused (409) once the job is someone else's; a heartbeating node keeps its job;
 * a node that never heartbeats (a Torc worker) keeps its jobs; a claim never started lapses.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { addNode, bind, buildWorkflow, claim, completePath, events, getJob, ok, result, start, startPath, statuses, waitFor } from './lifecycle-helpers.js';

const srv = testServerForSuite({ flags: { leaseTimeoutSeconds: 2 } });
const call = bind(srv);

describe('heartbeat', () => {
  it('sets last_heartbeat to now in epoch seconds; unknown node 404', async () => {
    const { wf } = await buildWorkflow(call, { jobs: { a: {} } });
    const node = await addNode(call, wf);
    const before = Date.now() / 1000;
    const res = await ok(call, 'POST', `/workflows/${wf}/compute_nodes/${node}/heartbeat`);
    expect(res.last_heartbeat).toBeGreaterThanOrEqual(before - 0.01);
    expect(res.last_heartbeat).toBeLessThanOrEqual(Date.now() / 1000 + 0.01);
    expect((await call('POST', `/workflows/${wf}/compute_nodes/nope/heartbeat`)).status).toBe(404);
  });
});

describe('lease expiry', () => {
  it('a silent node loses its running job to another node; its late report is refused and changes nothing', async () => {
    const { wf, keys } = await buildWorkflow(call, { jobs: { a: {}, b: { after: ['a'] } } });
    const dead = await addNode(call, wf, 'dead-host', true);
    const live = await addNode(call, wf, 'live-host', true);
    await start(call, wf);
    const claimed = await claim(call, wf, keys.a!, dead);
    const started = await ok(call, 'PUT', startPath(wf, keys.a!, claimed._rev, 1, dead));
    // `live` keeps heartbeating; `dead` stops
    const beat = setInterval(() => void call('POST', `/workflows/${wf}/compute_nodes/${live}/heartbeat`), 100);
    try {
      await waitFor(async () => (await getJob(call, wf, keys.a!)).status === 'ready', 10_000, 'the job to be given back');
      const ev = (await events(call, wf, 'job')).filter((e) => e.type === 'lease_expired');
      expect(ev).toEqual([expect.objectContaining({ job_key: keys.a, old_status: 'submitted', compute_node_key: dead, node_name: 'dead-host' })]);
      const back = await getJob(call, wf, keys.a!);
      expect(back.internal.compute_node_key).toBeUndefined();
      // the dead node's late report: stale (409), nothing changes
      let res = await call('POST', completePath(wf, keys.a!, 'done', started._rev, 1, dead), result(keys.a!, 1));
      expect(res.status).toBe(409);
      // another node takes it; the old holder still cannot complete it, even with the current _rev
      const reclaimed = await claim(call, wf, keys.a!, live);
      const restarted = await ok(call, 'PUT', startPath(wf, keys.a!, reclaimed._rev, 1, live));
      res = await call('POST', completePath(wf, keys.a!, 'done', restarted._rev, 1, dead), result(keys.a!, 1));
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('STATE_CONFLICT');
      res = await call('PUT', startPath(wf, keys.a!, restarted._rev, 1, dead));
      expect(res.status).toBe(400); // not submitted_pending any more
      expect((await ok(call, 'GET', `/workflows/${wf}/results`)).count).toBe(0);
      // the live holder keeps its lease while it heartbeats, and completes
      await new Promise((r) => setTimeout(r, 2500));
      expect((await getJob(call, wf, keys.a!)).status).toBe('submitted');
      await ok(call, 'POST', completePath(wf, keys.a!, 'done', restarted._rev, 1, live), result(keys.a!, 1));
      expect(await statuses(call, wf)).toEqual({ a: 'done', b: 'ready' });
      expect((await ok(call, 'GET', `/workflows/${wf}/results`)).count).toBe(1);
    } finally {
      clearInterval(beat);
    }
  });

  it('a claim without a holder lapses when never started; a node that never heartbeats keeps its jobs', async () => {
    const { wf, keys } = await buildWorkflow(call, { jobs: { anon: {}, legacy: {} } });
    const torcNode = await addNode(call, wf, 'torc-host', false);
    await start(call, wf);
    const anon = await getJob(call, wf, keys.anon!);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.anon}`, { _rev: anon._rev, status: 'submitted_pending', internal: { ...anon.internal, claimed_at: Date.now() } });
    const claimed = await claim(call, wf, keys.legacy!, torcNode);
    await ok(call, 'PUT', startPath(wf, keys.legacy!, claimed._rev, 1, torcNode));
    await waitFor(async () => (await getJob(call, wf, keys.anon!)).status === 'ready', 10_000, 'the anonymous claim to lapse');
    expect((await getJob(call, wf, keys.legacy!)).status).toBe('submitted');
    const ev = (await events(call, wf, 'job')).filter((e) => e.type === 'lease_expired');
    expect(ev.map((e) => e.job_key)).toEqual([keys.anon]);
    // the Torc worker exits (is_active false) still holding the job: it is orphaned and given back
    const n = await ok(call, 'GET', `/workflows/${wf}/compute_nodes/${torcNode}`);
    await ok(call, 'PUT', `/workflows/${wf}/compute_nodes/${torcNode}`, { _rev: n._rev, is_active: false });
    await waitFor(async () => (await getJob(call, wf, keys.legacy!)).status === 'ready', 10_000, 'the orphaned job to be given back');
  });

  it('a job claimed through prepare_next_jobs_for_submission by a node that dies is claimed again by another node', async () => {
    const { wf, keys } = await buildWorkflow(call, { jobs: { only: {} } });
    const dead = await addNode(call, wf, 'dead-host', true);
    const live = await addNode(call, wf, 'live-host', false);
    await start(call, wf);
    const first = await ok(call, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=1&compute_node_key=${dead}`);
    expect(first.jobs.map((j: any) => j._key)).toEqual([keys.only]);
    await waitFor(async () => (await getJob(call, wf, keys.only!)).status === 'ready', 10_000, 'the claim to lapse');
    const second = await ok(call, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=1&compute_node_key=${live}`);
    expect(second.jobs.map((j: any) => j._key)).toEqual([keys.only]);
    const res = await call('PUT', startPath(wf, keys.only!, first.jobs[0]._rev, 1, dead));
    expect(res.status).toBe(409);
    await ok(call, 'PUT', startPath(wf, keys.only!, second.jobs[0]._rev, 1, live));
  });
});
