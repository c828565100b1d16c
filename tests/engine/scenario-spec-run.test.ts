/**
 * The whole server-side path a worker takes, over HTTP: a workflow from a specification, start
 * (run_id 1 + initialize_jobs), claims with prepare_next_jobs_for_submission naming the compute
 * node, start_job, complete_job; a failing branch, reset of the failed jobs, and a second run.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { diamondSpec } from '../views/helpers.js';
import { addNode, bind, bumpRun, completePath, events, ok, result, runId, startPath, statuses } from './lifecycle-helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

/** Claim and run jobs like a worker until nothing is ready; returns the names run. */
async function work(wf: string, node: string, rcOf: (name: string) => number = () => 0): Promise<string[]> {
  const run = await runId(call, wf);
  const ran: string[] = [];
  for (;;) {
    const { jobs } = await ok(call, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=10&compute_node_key=${node}`);
    if (jobs.length === 0) return ran;
    for (const job of jobs) {
      expect(job.internal.compute_node_key).toBe(node);
      const started = await ok(call, 'PUT', startPath(wf, job._key, job._rev, run, node));
      const rc = rcOf(job.name);
      await ok(call, 'POST', completePath(wf, job._key, 'done', started._rev, run, node), result(job._key, run, rc));
      ran.push(job.name);
    }
  }
}

describe('a specification run through claims', () => {
  it('diamond: all four run in order; the run has 4 start and 4 complete events; is_complete', async () => {
    const wf = (await ok(call, 'POST', '/workflow_specifications', diamondSpec()))._key;
    const node = await addNode(call, wf, 'spec-host', true);
    await bumpRun(call, wf);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect(await statuses(call, wf)).toEqual({ preprocess: 'ready', work1: 'blocked', work2: 'blocked', postprocess: 'blocked' });
    expect(await work(wf, node)).toEqual(['preprocess', 'work1', 'work2', 'postprocess']);
    const jobEvents = (await events(call, wf, 'job')).map((e) => e.type);
    expect(jobEvents.filter((t) => t === 'start')).toHaveLength(4);
    expect(jobEvents.filter((t) => t === 'complete')).toHaveLength(4);
    expect(await ok(call, 'GET', `/workflows/${wf}/is_complete`)).toEqual({ is_canceled: false, is_complete: true, needs_to_run_completion_script: false });
  });

  it('work2 fails: postprocess is canceled, the workflow completes; reset failed only and a second run finish it', async () => {
    const wf = (await ok(call, 'POST', '/workflow_specifications', diamondSpec()))._key;
    const node = await addNode(call, wf, 'spec-host', true);
    await bumpRun(call, wf);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
    expect(await work(wf, node, (n) => (n === 'work2' ? 1 : 0))).toEqual(['preprocess', 'work1', 'work2']);
    expect(await statuses(call, wf)).toEqual({ preprocess: 'done', work1: 'done', work2: 'done', postprocess: 'canceled' });
    expect((await ok(call, 'GET', `/workflows/${wf}/is_complete`)).is_complete).toBe(true);
    await ok(call, 'POST', `/workflows/${wf}/reset_job_status?failed_only=true`);
    expect(await bumpRun(call, wf)).toBe(2);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=true`);
    expect(await work(wf, node)).toEqual(['work2', 'postprocess']);
    expect(Object.values(await statuses(call, wf))).toEqual(['done', 'done', 'done', 'done']);
    const results = (await ok(call, 'GET', `/workflows/${wf}/results`)).items;
    expect(results.map((r: any) => r.run_id)).toEqual([1, 1, 1, 2, 2]);
  });
});
