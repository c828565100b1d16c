/**
 * Workflow-wide status operations over HTTP: cancel (every unfinished job canceled, a canceled
 * workflow is complete), reset_status (run_id kept), reset_job_status (all, or failed only with
 * the downstream jobs), is_complete and its completion-script flag (one caller wins).
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { addNode, bind, buildWorkflow, bumpRun, claim, drain, events, ok, runJob, start, startPath, statuses } from './lifecycle-helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

const diamondJobs = {
  files: { f1: { path: 'f1' }, f2: { path: 'f2' }, f3: { path: 'f3' }, f4: { path: 'f4' } },
  jobs: { pre: { produces: ['f1', 'f2'] }, w1: { needs: ['f1'], produces: ['f3'] }, w2: { needs: ['f2'], produces: ['f4'] }, post: { needs: ['f3', 'f4'] } },
};

describe('cancel and is_complete', () => {
  it('cancel: is_canceled, every unfinished job canceled (finished and disabled ones kept), one event; the workflow is complete', async () => {
    const { wf, keys } = await buildWorkflow(call, { jobs: { a: {}, b: { after: ['a'] }, c: {}, d: {}, off: {} } });
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.d!, node);
    const offJob = await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.off}`);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.off}`, { _rev: offJob._rev, status: 'disabled' });
    const claimed = await claim(call, wf, keys.a!, node);
    await ok(call, 'PUT', startPath(wf, keys.a!, claimed._rev, 1, node));
    expect(await ok(call, 'GET', `/workflows/${wf}/is_complete`)).toEqual({ is_canceled: false, is_complete: false, needs_to_run_completion_script: false });
    const res = await ok(call, 'PUT', `/workflows/${wf}/cancel`);
    expect(res.message).toBe('Canceled workflow');
    expect(await statuses(call, wf)).toEqual({ a: 'canceled', b: 'canceled', c: 'canceled', d: 'done', off: 'disabled' });
    expect((await ok(call, 'GET', `/workflows/${wf}/status`)).is_canceled).toBe(true);
    expect(await ok(call, 'GET', `/workflows/${wf}/is_complete`)).toEqual({ is_canceled: true, is_complete: true, needs_to_run_completion_script: false });
    const ev = (await events(call, wf, 'workflow')).filter((e) => e.type === 'cancel');
    expect(ev).toHaveLength(1);
    expect(ev[0].num_canceled_jobs).toBe(3);
    // reset_status: not canceled any more, run_id kept
    await ok(call, 'POST', `/workflows/${wf}/reset_status`);
    const st = await ok(call, 'GET', `/workflows/${wf}/status`);
    expect(st).toMatchObject({ is_canceled: false, run_id: 1, has_detected_need_to_run_completion_script: false });
    expect((await events(call, wf, 'workflow')).some((e) => e.type === 'reset_status')).toBe(true);
    // restart everything
    await ok(call, 'POST', `/workflows/${wf}/reset_job_status`);
    expect(Object.values(await statuses(call, wf)).every((s) => s === 'uninitialized')).toBe(true);
    await bumpRun(call, wf);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect((await drain(call, wf, node)).sort()).toEqual(['a', 'b', 'c', 'd', 'off']);
  });

  it('cancel of 1,200 jobs: one event with the count and at most 1,000 keys', async () => {
    const wf = (await ok(call, 'POST', '/workflows', { name: 'many' }))._key;
    await ok(call, 'POST', `/workflows/${wf}/bulk_jobs`, { jobs: Array.from({ length: 1200 }, (_, i) => ({ name: `j${i}`, command: 'true' })) });
    await start(call, wf);
    await ok(call, 'PUT', `/workflows/${wf}/cancel`);
    const ev = (await events(call, wf, 'workflow')).filter((e) => e.type === 'cancel');
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ num_canceled_jobs: 1200, canceled_job_keys_truncated: true });
    expect(ev[0].canceled_job_keys).toHaveLength(1000);
    expect((await ok(call, 'GET', `/workflows/${wf}/jobs/find_by_status/canceled?limit=1`)).total_count).toBe(1200);
  });

  it('a workflow with no jobs is complete; unknown workflow 404', async () => {
    const wf = (await ok(call, 'POST', '/workflows', { name: 'empty' }))._key;
    expect((await ok(call, 'GET', `/workflows/${wf}/is_complete`)).is_complete).toBe(true);
    expect((await call('GET', '/workflows/nope/is_complete')).status).toBe(404);
    expect((await call('PUT', '/workflows/nope/cancel')).status).toBe(404);
    expect((await call('POST', '/workflows/nope/reset_job_status')).status).toBe(404);
  });

  it('needs_to_run_completion_script is true for exactly one of many concurrent callers', async () => {
    const { wf } = await buildWorkflow(call, { jobs: { a: {} } });
    const cfg = await ok(call, 'GET', `/workflows/${wf}/config`);
    await ok(call, 'PUT', `/workflows/${wf}/config`, { ...cfg, workflow_completion_script: 'echo done' });
    const node = await addNode(call, wf);
    await start(call, wf);
    expect((await ok(call, 'GET', `/workflows/${wf}/is_complete`)).needs_to_run_completion_script).toBe(false);
    await drain(call, wf, node);
    const answers = await Promise.all(Array.from({ length: 10 }, () => ok(call, 'GET', `/workflows/${wf}/is_complete`)));
    expect(answers.every((a) => a.is_complete)).toBe(true);
    expect(answers.filter((a) => a.needs_to_run_completion_script)).toHaveLength(1);
  });

  it('archived workflows cannot be initialized or reset (400)', async () => {
    const wf = await ok(call, 'POST', '/workflows', { name: 'old', is_archived: true });
    for (const p of ['initialize_jobs', 'reset_status', 'reset_job_status']) {
      const res = await call('POST', `/workflows/${wf._key}/${p}`);
      expect(res.status, p).toBe(400);
      expect(res.body.error.code).toBe('WORKFLOW_ARCHIVED');
    }
  });
});

describe('reset_job_status', () => {
  it('failed_only resets the failed job and its downstream jobs (canceled by the failure), then a restart reruns exactly those', async () => {
    const { wf, keys } = await buildWorkflow(call, diamondJobs);
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.pre!, node);
    await runJob(call, wf, keys.w1!, node);
    await runJob(call, wf, keys.w2!, node, 1);
    expect(await statuses(call, wf)).toEqual({ pre: 'done', w1: 'done', w2: 'done', post: 'canceled' });
    const res = await ok(call, 'POST', `/workflows/${wf}/reset_job_status?failed_only=true`);
    expect(res.message).toBe('Reset job status to uninitialized failed_only=true');
    expect(await statuses(call, wf)).toEqual({ pre: 'done', w1: 'done', w2: 'uninitialized', post: 'uninitialized' });
    expect((await events(call, wf, 'workflow')).find((e) => e.type === 'reset_job_status')).toMatchObject({ failed_only: true });
    // a failure of an earlier run still counts after a restart bumped run_id
    await bumpRun(call, wf);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=true`);
    expect(await statuses(call, wf)).toEqual({ pre: 'done', w1: 'done', w2: 'ready', post: 'blocked' });
    expect(await drain(call, wf, node)).toEqual(['w2', 'post']);
  });

  it('failed_only after a failure of the first job resets all four; without failed_only every job is reset', async () => {
    const { wf, keys } = await buildWorkflow(call, diamondJobs);
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.pre!, node, 1);
    expect(await statuses(call, wf)).toEqual({ pre: 'done', w1: 'canceled', w2: 'canceled', post: 'canceled' });
    await ok(call, 'POST', `/workflows/${wf}/reset_job_status?failed_only=true`);
    expect(Object.values(await statuses(call, wf))).toEqual(['uninitialized', 'uninitialized', 'uninitialized', 'uninitialized']);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    await drain(call, wf, node);
    await ok(call, 'POST', `/workflows/${wf}/reset_job_status?failed_only=false`);
    expect(Object.values(await statuses(call, wf))).toEqual(['uninitialized', 'uninitialized', 'uninitialized', 'uninitialized']);
  });
});
