/**
 * process_changed_job_inputs over HTTP with the hash recorded the way start_job records it
 * (computeJobInputHash over the server's store), so this runs without the lifecycle endpoints.
 * The full scenario through start/complete is in restart-diamond.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { computeJobInputHash } from '../../graph/engine/input-hash.js';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

async function diamond() {
  const built = await buildWorkflow(call, {
    files: {
      inputs: { path: 'output/inputs.json', st_mtime: 1000 },
      f1: { path: 'output/f1.json', st_mtime: 1001 },
      f2: { path: 'output/f2.json', st_mtime: 1002 },
      f3: { path: 'output/f3.json', st_mtime: 1003 },
      f4: { path: 'output/f4.json', st_mtime: 1004 },
      f5: { path: 'output/f5.json', st_mtime: 1005 },
    },
    user_data: { my_val: { data: { key1: 'val1' } }, scratch: { is_ephemeral: true, data: { tmp: 1 } } },
    jobs: {
      preprocess: { needs: ['inputs'], produces: ['f1', 'f2'] },
      work1: { needs: ['f1'], consumes: ['my_val'], produces: ['f3'], after: ['preprocess'] },
      work2: { needs: ['f2'], produces: ['f4'], after: ['preprocess'] },
      postprocess: { needs: ['f3', 'f4'], produces: ['f5'], after: ['work1', 'work2'] },
    },
  });
  await finishAll(built.wf);
  return built;
}

/** Mark every job done with the input hash recorded now (what start_job + complete_job leave). */
async function finishAll(wf: string) {
  for (const job of (await srv.store.find('jobs', wf)).items) {
    const hash = await computeJobInputHash(srv.store, wf, job);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${job._key}`, { _rev: job._rev, status: 'done', internal: { ...(job.internal as object), hash } });
  }
}

async function statuses(wf: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const j of (await ok(call, 'GET', `/workflows/${wf}/jobs`)).items) out[j.name] = j.status;
  return out;
}

async function putDoc(wf: string, coll: string, key: string, patch: Record<string, unknown>) {
  const doc = await ok(call, 'GET', `/workflows/${wf}/${coll}/${key}`);
  return ok(call, 'PUT', `/workflows/${wf}/${coll}/${key}`, { _rev: doc._rev, ...patch });
}

const changed = async (wf: string, dryRun = false): Promise<string[]> =>
  (await ok(call, 'POST', `/workflows/${wf}/process_changed_job_inputs${dryRun ? '?dry_run=true' : ''}`)).reinitialized_jobs;

describe('process_changed_job_inputs', () => {
  it('resets nothing when nothing changed, even after documents are rewritten with the same content', async () => {
    const { wf, keys } = await diamond();
    await putDoc(wf, 'files', keys['files:f2']!, { st_mtime: 1002 });
    await putDoc(wf, 'user_data', keys['user_data:my_val']!, { data: { key1: 'val1' } });
    await putDoc(wf, 'jobs', keys.work1!, { name: 'renamed', supports_termination: true, cancel_on_blocking_job_failure: false });
    expect(await changed(wf, true)).toEqual([]);
    expect(await changed(wf)).toEqual([]);
    expect(Object.values(await statuses(wf))).toEqual(['done', 'done', 'done', 'done']);
  });

  it('a changed input file: the dry run lists the job and its downstream jobs and changes nothing; the real run resets exactly those', async () => {
    const { wf, keys } = await diamond();
    await putDoc(wf, 'files', keys['files:f2']!, { st_mtime: 2002 });
    const before = await ok(call, 'GET', `/workflows/${wf}/jobs`);
    expect(await changed(wf, true)).toEqual([keys.work2, keys.postprocess]);
    expect((await ok(call, 'GET', `/workflows/${wf}/jobs`)).items).toEqual(before.items);
    expect(await changed(wf)).toEqual([keys.work2, keys.postprocess]);
    expect(await statuses(wf)).toEqual({ preprocess: 'done', work1: 'done', work2: 'uninitialized', postprocess: 'uninitialized' });
    const events = (await ok(call, 'GET', `/workflows/${wf}/events?category=workflow`)).items;
    expect(events.at(-1)).toMatchObject({ type: 'process_changed_job_inputs', reinitialized_jobs: [keys.work2, keys.postprocess], changed_jobs: [keys.work2] });
    // a second call finds nothing more to do
    expect(await changed(wf)).toEqual([]);
  });

  it('changed user data contents reset the consumer; jobs already uninitialized are not listed again', async () => {
    const { wf, keys } = await diamond();
    await putDoc(wf, 'files', keys['files:f4']!, { st_mtime: 5 });
    expect(await changed(wf)).toEqual([keys.postprocess]);
    await putDoc(wf, 'user_data', keys['user_data:my_val']!, { data: { key1: 'val2' } });
    expect(await changed(wf)).toEqual([keys.work1]);
    expect(await statuses(wf)).toEqual({ preprocess: 'done', work1: 'uninitialized', work2: 'done', postprocess: 'uninitialized' });
  });

  it('a changed command or a touched first input reruns everything downstream', async () => {
    const { wf, keys } = await diamond();
    await putDoc(wf, 'jobs', keys.preprocess!, { command: 'run preprocess --again' });
    expect(await changed(wf, true)).toEqual([keys.preprocess, keys.work1, keys.work2, keys.postprocess]);
    const other = await diamond();
    await putDoc(other.wf, 'files', other.keys['files:inputs']!, { st_mtime: 999999 });
    expect(await changed(other.wf)).toEqual([other.keys.preprocess, other.keys.work1, other.keys.work2, other.keys.postprocess]);
    expect(Object.values(await statuses(other.wf))).toEqual(['uninitialized', 'uninitialized', 'uninitialized', 'uninitialized']);
  });

  it('ephemeral user data: cleared by a real run (its writers and readers rerun); a dry run reports the same and clears nothing', async () => {
    const built = await buildWorkflow(call, {
      user_data: { scratch: { is_ephemeral: true, data: { tmp: 1 } } },
      jobs: { writer: { stores: ['scratch'] }, reader: { consumes: ['scratch'], after: ['writer'] }, other: {} },
    });
    await finishAll(built.wf);
    expect(await changed(built.wf, true)).toEqual([built.keys.writer, built.keys.reader]);
    expect((await ok(call, 'GET', `/workflows/${built.wf}/user_data/${built.keys['user_data:scratch']}`)).data).toEqual({ tmp: 1 });
    expect(await changed(built.wf)).toEqual([built.keys.writer, built.keys.reader]);
    expect((await ok(call, 'GET', `/workflows/${built.wf}/user_data/${built.keys['user_data:scratch']}`)).data).toEqual({});
  });

  it('a done job without a recorded hash counts as changed; other statuses are not examined', async () => {
    const built = await buildWorkflow(call, { jobs: { nohash: {}, blocked: {}, canceled: {} } });
    for (const [name, status] of [['nohash', 'done'], ['blocked', 'blocked'], ['canceled', 'canceled']] as const) {
      await putDoc(built.wf, 'jobs', built.keys[name]!, { status });
    }
    expect(await changed(built.wf)).toEqual([built.keys.nohash]);
  });

  it('rejects a bad dry_run value and an unknown workflow', async () => {
    const { wf } = await buildWorkflow(call, { jobs: {} });
    const bad = await call('POST', `/workflows/${wf}/process_changed_job_inputs?dry_run=maybe`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toEqual(['dry_run']);
    expect((await call('POST', `/workflows/31337000/process_changed_job_inputs`)).status).toBe(404);
  });
});
