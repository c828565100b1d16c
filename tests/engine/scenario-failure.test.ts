/**
 * Scenarios of dependencies and failures through the HTTP API: fan-out/fan-in, failure
 * cancellation cascading over several levels (with and without cancel_on_blocking_job_failure),
 * what counts as a failure (return code, canceled, terminated with 0), and no job left blocked.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { addNode, bind, buildWorkflow, drain, events, jobsByName, ok, runJob, start, statuses } from './lifecycle-helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

async function isComplete(wf: string): Promise<boolean> {
  return (await ok(call, 'GET', `/workflows/${wf}/is_complete`)).is_complete;
}

describe('dependency scenarios', () => {
  it('fan-out / fan-in: the sink becomes ready exactly when the last of 20 branches completes', async () => {
    const jobs: Record<string, any> = { src: {} };
    for (let i = 0; i < 20; i++) jobs[`w${i}`] = { after: ['src'] };
    jobs.sink = { after: Object.keys(jobs).filter((n) => n !== 'src') };
    const { wf, keys } = await buildWorkflow(call, { jobs });
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.src!, node);
    const after = await jobsByName(call, wf);
    expect(after.sink.status).toBe('blocked');
    expect(after.sink.internal.num_unfinished_blockers).toBe(20);
    for (let i = 0; i < 20; i++) expect(after[`w${i}`].status).toBe('ready');
    for (let i = 0; i < 19; i++) await runJob(call, wf, keys[`w${i}`]!, node);
    const mid = await jobsByName(call, wf);
    expect(mid.sink).toMatchObject({ status: 'blocked', internal: expect.objectContaining({ num_unfinished_blockers: 1 }) });
    await runJob(call, wf, keys.w19!, node);
    expect((await jobsByName(call, wf)).sink.status).toBe('ready');
    expect(await drain(call, wf, node)).toEqual(['sink']);
    expect(await isComplete(wf)).toBe(true);
  });

  it('a failure cancels every downstream job that asks for it, over several levels, at once; a job that does not ask runs', async () => {
    // a → b → c → d ; b → tolerant (cancel_on_blocking_job_failure=false) → e ; x → d (still running when a fails)
    const { wf, keys } = await buildWorkflow(call, {
      jobs: {
        a: {}, x: {},
        b: { after: ['a'] }, c: { after: ['b'] }, d: { after: ['c', 'x'] },
        tolerant: { after: ['b'], cancel_on_blocking_job_failure: false }, e: { after: ['tolerant'] },
      },
    });
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.a!, node, 1);
    expect(await statuses(call, wf)).toEqual({ a: 'done', x: 'ready', b: 'canceled', c: 'canceled', d: 'canceled', tolerant: 'ready', e: 'blocked' });
    const complete = (await events(call, wf, 'job')).find((e) => e.type === 'complete');
    expect(complete).toMatchObject({ return_code: 1, ready_job_keys: [keys.tolerant] });
    expect([...complete.canceled_job_keys].sort()).toEqual([keys.b, keys.c, keys.d].sort());
    expect(await isComplete(wf)).toBe(false);
    expect((await drain(call, wf, node)).sort()).toEqual(['e', 'tolerant', 'x']);
    expect(await isComplete(wf)).toBe(true);
  });

  it('without cancel_on_blocking_job_failure the dependants of a failed job run', async () => {
    const { wf, keys, node } = await (async () => {
      const b = await buildWorkflow(call, { jobs: { a: {}, b: { after: ['a'], cancel_on_blocking_job_failure: false }, c: { after: ['b'], cancel_on_blocking_job_failure: false } } });
      return { ...b, node: await addNode(call, b.wf) };
    })();
    await start(call, wf);
    await runJob(call, wf, keys.a!, node, 2);
    expect(await statuses(call, wf)).toEqual({ a: 'done', b: 'ready', c: 'blocked' });
    expect(await drain(call, wf, node, (n) => (n === 'b' ? 3 : 0))).toEqual(['b', 'c']);
    expect(await statuses(call, wf)).toEqual({ a: 'done', b: 'done', c: 'done' });
  });

  it('terminated with return code 0 is a success; terminated with -15 and canceled are failures', async () => {
    const { wf, keys } = await buildWorkflow(call, {
      jobs: { t0: {}, t15: {}, can: {}, after0: { after: ['t0'] }, after15: { after: ['t15'] }, afterCan: { after: ['can'] } },
    });
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.t0!, node, 0, 'terminated');
    await runJob(call, wf, keys.t15!, node, -15, 'terminated');
    await runJob(call, wf, keys.can!, node, -9, 'canceled');
    expect(await statuses(call, wf)).toMatchObject({ after0: 'ready', after15: 'canceled', afterCan: 'canceled' });
  });

  it('failure of one branch of a diamond: the join is canceled, the other branch still runs, the workflow completes', async () => {
    const { wf, keys } = await buildWorkflow(call, {
      files: { f1: { path: 'f1' }, f2: { path: 'f2' }, f3: { path: 'f3' }, f4: { path: 'f4' } },
      jobs: { pre: { produces: ['f1', 'f2'] }, w1: { needs: ['f1'], produces: ['f3'] }, w2: { needs: ['f2'], produces: ['f4'] }, post: { needs: ['f3', 'f4'] } },
    });
    const node = await addNode(call, wf);
    await start(call, wf);
    await runJob(call, wf, keys.pre!, node);
    await runJob(call, wf, keys.w1!, node, 1);
    expect(await statuses(call, wf)).toEqual({ pre: 'done', w1: 'done', w2: 'ready', post: 'canceled' });
    await runJob(call, wf, keys.w2!, node);
    expect(await statuses(call, wf)).toEqual({ pre: 'done', w1: 'done', w2: 'done', post: 'canceled' });
    expect(await isComplete(wf)).toBe(true);
  });
});
