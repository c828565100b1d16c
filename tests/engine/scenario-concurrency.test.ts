/**
 * Concurrent reports through the HTTP API: completions of 40 blockers of one job arrive at once
 * (the job becomes ready exactly once, with a count that ends at zero), and a report sent twice at
 * the same moment is recorded once.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { addNode, bind, buildWorkflow, claim, completePath, events, jobsByName, ok, result, start, startPath } from './lifecycle-helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

describe('concurrent completions', () => {
  it('40 blockers completing at once ready their join exactly once', async () => {
    const jobs: Record<string, any> = {};
    for (let i = 0; i < 40; i++) jobs[`b${i}`] = {};
    jobs.join = { after: Object.keys(jobs) };
    const { wf, keys } = await buildWorkflow(call, { jobs });
    const node = await addNode(call, wf);
    await start(call, wf);
    const started: any[] = [];
    for (let i = 0; i < 40; i++) {
      const c = await claim(call, wf, keys[`b${i}`]!, node);
      started.push(await ok(call, 'PUT', startPath(wf, c._key, c._rev, 1, node)));
    }
    const answers = await Promise.all(started.map((j) => call('POST', completePath(wf, j._key, 'done', j._rev, 1, node), result(j._key, 1))));
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    const join = (await jobsByName(call, wf)).join;
    expect(join.status).toBe('ready');
    expect(join.internal.num_unfinished_blockers).toBe(0);
    const readied = (await events(call, wf, 'job')).filter((e) => e.type === 'complete' && e.ready_job_keys);
    expect(readied).toHaveLength(1);
    expect(readied[0].ready_job_keys).toEqual([keys.join]);
  });

  it('the same report sent twice at once is recorded once; both are answered 200', async () => {
    const { wf, keys } = await buildWorkflow(call, { jobs: { a: {}, b: { after: ['a'] } } });
    const node = await addNode(call, wf);
    await start(call, wf);
    const c = await claim(call, wf, keys.a!, node);
    const s = await ok(call, 'PUT', startPath(wf, keys.a!, c._rev, 1, node));
    const [x, y] = await Promise.all([0, 1].map(() => call('POST', completePath(wf, keys.a!, 'done', s._rev, 1, node), result(keys.a!, 1))));
    expect([x!.status, y!.status]).toEqual([200, 200]);
    expect((await ok(call, 'GET', `/workflows/${wf}/results`)).count).toBe(1);
    expect((await events(call, wf, 'job')).filter((e) => e.type === 'complete')).toHaveLength(1);
    expect((await jobsByName(call, wf)).b.status).toBe('ready');
  });
});
