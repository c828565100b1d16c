/**
 * Restart after a changed input, driven through the HTTP API like a worker and the CLI do:
 * create the diamond from a spec, start (run_id 1, initialize), run every job through
 * prepare_next_jobs_for_submission / start_job / complete_job (a worker records its output files'
 * st_mtime before completing), then change inputs, call process_changed_job_inputs,
 * initialize_jobs(only_uninitialized) with a new run_id, and check that only the affected jobs run.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, diamondSpec, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);
let node: string;

let clock = 1_700_000_000;

async function files(wf: string): Promise<Map<string, any>> {
  return new Map((await ok(call, 'GET', `/workflows/${wf}/files`)).items.map((f: any) => [f._id, f]));
}

async function touch(wf: string, file: any): Promise<void> {
  const current = await ok(call, 'GET', `/workflows/${wf}/files/${file._key}`);
  await ok(call, 'PUT', `/workflows/${wf}/files/${file._key}`, { _rev: current._rev, st_mtime: ++clock });
}

async function runId(wf: string): Promise<number> {
  return (await ok(call, 'GET', `/workflows/${wf}/status`)).run_id;
}

async function bumpRun(wf: string): Promise<number> {
  const st = await ok(call, 'GET', `/workflows/${wf}/status`);
  return (await ok(call, 'PUT', `/workflows/${wf}/status`, { _rev: st._rev, run_id: st.run_id + 1 })).run_id;
}

/** Run every runnable job to completion like a worker; returns the names of the jobs run, in order. */
async function runAll(wf: string): Promise<string[]> {
  const run = await runId(wf);
  const byId = await files(wf);
  const ran: string[] = [];
  for (let round = 0; round < 20; round++) {
    const { jobs } = await ok(call, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=10`);
    if (jobs.length === 0) break;
    for (const job of jobs) {
      const started = await ok(call, 'PUT', `/workflows/${wf}/jobs/${job._key}/start_job/${encodeURIComponent(job._rev)}/${run}/${node}`);
      // the worker records its outputs' modification times before reporting completion
      for (const e of (await ok(call, 'GET', `/workflows/${wf}/edges/produces`)).items.filter((x: any) => x._from === job._id)) await touch(wf, byId.get(e._to));
      const result = { job_key: job._key, run_id: run, return_code: 0, exec_time_minutes: 0.1, completion_time: new Date().toISOString(), status: 'done' };
      await ok(call, 'POST', `/workflows/${wf}/jobs/${job._key}/complete_job/done/${encodeURIComponent(started._rev)}/${run}/${node}`, result);
      ran.push(job.name);
    }
  }
  return ran;
}

async function statuses(wf: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const j of (await ok(call, 'GET', `/workflows/${wf}/jobs`)).items) out[j.name] = j.status;
  return out;
}

/** A completed diamond: created from the spec, started (run 1), every job run. */
async function completedDiamond(): Promise<{ wf: string; file: (name: string) => Promise<any> }> {
  const wf = (await ok(call, 'POST', '/workflow_specifications', diamondSpec()))._key;
  node = (await ok(call, 'POST', `/workflows/${wf}/compute_nodes`, {
    hostname: 'test-host', pid: process.pid, start_time: new Date().toISOString(), resources: { num_cpus: 8, memory_gb: 16 },
  }))._key;
  for (const f of (await files(wf)).values()) await touch(wf, f); // start records every existing file's mtime
  await bumpRun(wf);
  await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
  expect(await runAll(wf)).toEqual(['preprocess', 'work1', 'work2', 'postprocess']);
  expect(Object.values(await statuses(wf))).toEqual(['done', 'done', 'done', 'done']);
  const file = async (name: string) => [...(await files(wf)).values()].find((f) => f.name === name);
  return { wf, file };
}

/** The restart sequence of the CLI, server side: new run, changed inputs processed, initialize the reset jobs. */
async function restart(wf: string, dryRun = false): Promise<string[]> {
  const reset = (await ok(call, 'POST', `/workflows/${wf}/process_changed_job_inputs${dryRun ? '?dry_run=true' : ''}`)).reinitialized_jobs;
  if (!dryRun) {
    await bumpRun(wf);
    await ok(call, 'POST', `/workflows/${wf}/initialize_jobs?only_uninitialized=true`);
  }
  return reset;
}

async function names(wf: string, keys: string[]): Promise<string[]> {
  const byKey = new Map<string, string>((await ok(call, 'GET', `/workflows/${wf}/jobs`)).items.map((j: any) => [j._key, j.name]));
  return keys.map((k) => byKey.get(k) ?? k);
}

describe('restart after changed inputs (diamond)', () => {
  it('nothing changed: nothing reruns', async () => {
    const { wf } = await completedDiamond();
    expect(await restart(wf)).toEqual([]);
    expect(Object.values(await statuses(wf))).toEqual(['done', 'done', 'done', 'done']);
    expect(await runAll(wf)).toEqual([]);
  });

  it('file2 changed: the dry run reports work2 and postprocess and changes nothing; the restart reruns only those', async () => {
    const { wf, file } = await completedDiamond();
    await touch(wf, await file('file2'));
    const before = await statuses(wf);
    expect(await names(wf, await restart(wf, true))).toEqual(['work2', 'postprocess']);
    expect(await statuses(wf)).toEqual(before);
    expect(await names(wf, await restart(wf))).toEqual(['work2', 'postprocess']);
    expect(await statuses(wf)).toEqual({ preprocess: 'done', work1: 'done', work2: 'ready', postprocess: 'blocked' });
    expect(await runAll(wf)).toEqual(['work2', 'postprocess']);
    expect(Object.values(await statuses(wf))).toEqual(['done', 'done', 'done', 'done']);
    // and after that rerun, a restart with nothing changed reruns nothing
    expect(await restart(wf)).toEqual([]);
  });

  it('inputs.json touched: all four rerun', async () => {
    const { wf, file } = await completedDiamond();
    await touch(wf, await file('inputs'));
    expect(await names(wf, await restart(wf))).toEqual(['preprocess', 'work1', 'work2', 'postprocess']);
    expect(await statuses(wf)).toEqual({ preprocess: 'ready', work1: 'blocked', work2: 'blocked', postprocess: 'blocked' });
    expect(await runAll(wf)).toEqual(['preprocess', 'work1', 'work2', 'postprocess']);
  });

  it('user data consumed by work1 edited: work1 and postprocess rerun', async () => {
    const { wf } = await completedDiamond();
    const ud = (await ok(call, 'GET', `/workflows/${wf}/user_data?name=my_val`)).items[0];
    await ok(call, 'PUT', `/workflows/${wf}/user_data/${ud._key}`, { _rev: ud._rev, data: { key1: 'val2' } });
    expect(await names(wf, await restart(wf))).toEqual(['work1', 'postprocess']);
    expect(await statuses(wf)).toEqual({ preprocess: 'done', work1: 'ready', work2: 'done', postprocess: 'blocked' });
    expect(await runAll(wf)).toEqual(['work1', 'postprocess']);
  });

  it("a job's name and flags edited: nothing reruns; its command edited: it and its downstream jobs rerun", async () => {
    const { wf } = await completedDiamond();
    const work2 = (await ok(call, 'GET', `/workflows/${wf}/jobs?name=work2`)).items[0];
    const edited = await ok(call, 'PUT', `/workflows/${wf}/jobs/${work2._key}`, { _rev: work2._rev, supports_termination: true, cancel_on_blocking_job_failure: false });
    expect(await restart(wf)).toEqual([]);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${work2._key}`, { _rev: edited._rev, command: `${work2.command} --fast` });
    expect(await names(wf, await restart(wf))).toEqual(['work2', 'postprocess']);
    expect(await runAll(wf)).toEqual(['work2', 'postprocess']);
  });
});
