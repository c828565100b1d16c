/**
 * initialize_jobs over HTTP: implicit dependencies become blocks edges, statuses by counting,
 * resources and scheduler in internal, strict units (400 naming the job, nothing written),
 * only_uninitialized, disabled jobs, ephemeral user data.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, drain, jobsByName, ok, statuses, addNode, start, events } from './lifecycle-helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

function diamond() {
  return buildWorkflow(call, {
    files: { inputs: { path: 'in.json' }, f1: { path: 'f1' }, f2: { path: 'f2' }, f3: { path: 'f3' }, f4: { path: 'f4' }, f5: { path: 'f5' } },
    resource_requirements: { big: { num_cpus: 4, num_gpus: 1, num_nodes: 2, memory: '2g', runtime: 'PT30M' } },
    local_schedulers: { loc: {} },
    jobs: {
      preprocess: { needs: ['inputs'], produces: ['f1', 'f2'], rr: 'big', sched: 'local_schedulers:loc' },
      work1: { needs: ['f1'], produces: ['f3'] },
      work2: { needs: ['f2'], produces: ['f4'] },
      postprocess: { needs: ['f3', 'f4'], produces: ['f5'] },
    },
  });
}

describe('initialize_jobs', () => {
  it('diamond of file dependencies: blocks edges derived once, ready/blocked by counting, resources and scheduler in internal', async () => {
    const { wf, ids } = await diamond();
    const res = await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect(res.message).toBe('Initialized job status');
    expect(await statuses(call, wf)).toEqual({ preprocess: 'ready', work1: 'blocked', work2: 'blocked', postprocess: 'blocked' });
    const jobs = await jobsByName(call, wf);
    expect(jobs.postprocess.internal.num_unfinished_blockers).toBe(2);
    expect(jobs.work1.internal.num_unfinished_blockers).toBe(1);
    expect(jobs.preprocess.internal).toMatchObject({
      num_cpus: 4, num_gpus: 1, num_nodes: 2, memory_bytes: 2 * 1024 ** 3, runtime_seconds: 1800,
      scheduler_config_id: ids['local_schedulers:loc'], num_unfinished_blockers: 0,
    });
    expect(jobs.work1.internal).toMatchObject({ num_cpus: 1, num_gpus: 0, num_nodes: 1, memory_bytes: 1024 ** 2, runtime_seconds: 60, scheduler_config_id: '' });
    const edges = (await ok(call, 'GET', `/workflows/${wf}/edges/blocks`)).items.map((e: any) => `${e._from}>${e._to}`).sort();
    expect(edges).toEqual(
      [
        `${ids['jobs:preprocess']}>${ids['jobs:work1']}`,
        `${ids['jobs:preprocess']}>${ids['jobs:work2']}`,
        `${ids['jobs:work1']}>${ids['jobs:postprocess']}`,
        `${ids['jobs:work2']}>${ids['jobs:postprocess']}`,
      ].sort(),
    );
    // again: no duplicate edges, same statuses
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect((await ok(call, 'GET', `/workflows/${wf}/edges/blocks`)).count).toBe(4);
    expect(await statuses(call, wf)).toEqual({ preprocess: 'ready', work1: 'blocked', work2: 'blocked', postprocess: 'blocked' });
    const ev = (await events(call, wf, 'workflow')).filter((e) => e.type === 'initialize_jobs');
    expect(ev).toHaveLength(2);
    expect(ev[0]).toMatchObject({ ready: 1, blocked: 3, derived_edges: 4 });
    expect(typeof ev[0].timestamp).toBe('number');
  });

  it('user data dependencies (stores → consumes) and explicit blocked_by', async () => {
    const { wf } = await buildWorkflow(call, {
      user_data: { u: { data: {} } },
      jobs: { writer: { stores: ['u'] }, reader: { consumes: ['u'] }, after: { after: ['reader'] }, lone: {} },
    });
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect(await statuses(call, wf)).toEqual({ writer: 'ready', reader: 'blocked', after: 'blocked', lone: 'ready' });
  });

  it('a malformed stored memory or runtime is a 400 naming the job and the field, and nothing is written', async () => {
    const { wf } = await buildWorkflow(call, {
      files: { f: { path: 'f' } },
      resource_requirements: { bad: { memory: '1.5g' }, worse: { runtime: 'P1W' } },
      jobs: { a: { produces: ['f'] }, b: { needs: ['f'], rr: 'bad' }, c: { rr: 'worse' } },
    });
    const res = await call('POST', `/workflows/${wf}/initialize_jobs`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.message).toMatch(/job 'b'.*memory.*1\.5g/);
    expect(res.body.error.message).toMatch(/job 'c'.*runtime.*P1W/);
    expect(await statuses(call, wf)).toEqual({ a: 'uninitialized', b: 'uninitialized', c: 'uninitialized' });
    expect((await ok(call, 'GET', `/workflows/${wf}/edges/blocks`)).count).toBe(0);
    expect((await events(call, wf)).length).toBe(0);
  });

  it('only_uninitialized: done jobs keep done; reset jobs and their downstream are re-evaluated', async () => {
    const { wf } = await buildWorkflow(call, { jobs: { a: {}, b: { after: ['a'] }, c: { after: ['b'] } } });
    const node = await addNode(call, wf);
    await start(call, wf);
    expect(await drain(call, wf, node)).toEqual(['a', 'b', 'c']);
    const b = (await jobsByName(call, wf)).b;
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${b._key}`, { _rev: b._rev, status: 'uninitialized' });
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=true`);
    expect(await statuses(call, wf)).toEqual({ a: 'done', b: 'ready', c: 'blocked' });
    expect(await drain(call, wf, node)).toEqual(['b', 'c']);
  });

  it('disabled jobs stay disabled and keep their dependants blocked; a canceled blocker cancels its dependants (no job blocked forever)', async () => {
    const { wf, keys } = await buildWorkflow(call, {
      jobs: { off: {}, needsOff: { after: ['off'] }, gone: {}, below: { after: ['gone'] }, further: { after: ['below'] }, keepGoing: { after: ['gone'], cancel_on_blocking_job_failure: false } },
    });
    for (const [k, s] of [[keys.off, 'disabled'], [keys.gone, 'canceled']] as const) {
      const j = await ok(call, 'GET', `/workflows/${wf}/jobs/${k}`);
      await ok(call, 'PUT', `/workflows/${wf}/jobs/${k}`, { _rev: j._rev, status: s });
    }
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect(await statuses(call, wf)).toEqual({ off: 'disabled', needsOff: 'blocked', gone: 'canceled', below: 'canceled', further: 'canceled', keepGoing: 'ready' });
  });

  it('clears ephemeral user data unless clear_ephemeral_user_data=false', async () => {
    const { wf, keys } = await buildWorkflow(call, {
      user_data: { eph: { is_ephemeral: true, data: { x: 1 } }, keep: { data: { y: 2 } } },
      jobs: { j: { consumes: ['eph', 'keep'] } },
    });
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?clear_ephemeral_user_data=false`);
    expect((await ok(call, 'GET', `/workflows/${wf}/user_data/${keys['user_data:eph']}`)).data).toEqual({ x: 1 });
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect((await ok(call, 'GET', `/workflows/${wf}/user_data/${keys['user_data:eph']}`)).data).toEqual({});
    expect((await ok(call, 'GET', `/workflows/${wf}/user_data/${keys['user_data:keep']}`)).data).toEqual({ y: 2 });
  });

  it('unknown workflow → 404; bad query → 400 naming it', async () => {
    expect((await call('POST', '/workflows/nope/initialize_jobs')).status).toBe(404);
    const { wf } = await buildWorkflow(call, { jobs: { a: {} } });
    const res = await call('POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=maybe`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('only_uninitialized');
  });
});
