/**
 * Auto-tune over HTTP: enable (one job per resource requirements group runs, the rest are
 * disabled), record what the tuned jobs used (results and process statistics, as a worker
 * does), then process the results into the resource requirements.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

const GiB = 1024 ** 3;

async function groups(opts: { process?: boolean; withDefault?: boolean } = {}) {
  const jobs: Record<string, { rr?: string }> = {};
  for (const g of ['small', 'medium', 'large']) for (const i of [1, 2, 3]) jobs[`job_${g}${i}`] = { rr: g };
  if (opts.withDefault) for (const i of [1, 2]) jobs[`job_default${i}`] = {};
  const built = await buildWorkflow(call, {
    resource_requirements: {
      small: { num_cpus: 1, memory: '1g', runtime: 'P0DT1H' },
      medium: { num_cpus: 4, memory: '8g', runtime: 'P0DT2H' },
      large: { num_cpus: 8, memory: '16g', runtime: 'P0DT4H' },
    },
    jobs,
  });
  if (opts.process !== false) {
    const config = await ok(call, 'GET', `/workflows/${built.wf}/config`);
    await ok(call, 'PUT', `/workflows/${built.wf}/config`, {
      _rev: config._rev,
      compute_node_resource_stats: { ...config.compute_node_resource_stats, process: true, interval: 0.1 },
    });
  }
  return built;
}

async function statusesByName(wf: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const j of (await ok(call, 'GET', `/workflows/${wf}/jobs`)).items) out[j.name] = j.status;
  return out;
}

/** What a worker leaves after running a job in run 1: done, a result and process statistics. */
async function ran(wf: string, key: string, id: string, use: { maxRss: number; maxCpu: number; minutes: number }) {
  const job = await ok(call, 'GET', `/workflows/${wf}/jobs/${key}`);
  await ok(call, 'PUT', `/workflows/${wf}/jobs/${key}`, { _rev: job._rev, status: 'done' });
  const result = await ok(call, 'POST', `/workflows/${wf}/results`, {
    job_key: key, run_id: 1, return_code: 0, exec_time_minutes: use.minutes, completion_time: '2026-01-01T00:00:00', status: 'done',
  });
  await ok(call, 'POST', `/workflows/${wf}/edges/returned`, { _from: id, _to: result._id });
  for (const [run, factor] of [[0, 9], [1, 1]] as const) {
    // an older run measured much more; the last run (by run_id) is the one that counts
    const stats = await ok(call, 'POST', `/workflows/${wf}/job_process_stats`, {
      job_key: key, run_id: run, avg_cpu_percent: use.maxCpu / 2, max_cpu_percent: use.maxCpu * factor,
      avg_rss: use.maxRss / 2, max_rss: use.maxRss * factor, num_samples: 5, timestamp: 't',
    });
    await ok(call, 'POST', `/workflows/${wf}/edges/process_used`, { _from: id, _to: stats._id });
  }
}

async function setRun(wf: string, run: number) {
  const st = await ok(call, 'GET', `/workflows/${wf}/status`);
  await ok(call, 'PUT', `/workflows/${wf}/status`, { _rev: st._rev, run_id: run });
}

describe('auto-tune resource requirements', () => {
  it('runs one job per group, then writes the measured needs and gives the other jobs back', async () => {
    const { wf, keys, ids } = await groups();
    const setup = await ok(call, 'POST', `/workflows/${wf}/auto_tune_resource_requirements`);
    expect(setup.job_keys).toEqual([keys.job_small1, keys.job_medium1, keys.job_large1]);
    const st = await statusesByName(wf);
    expect(Object.entries(st).filter(([, s]) => s === 'disabled').map(([n]) => n).sort()).toEqual(
      ['job_small2', 'job_small3', 'job_medium2', 'job_medium3', 'job_large2', 'job_large3'].sort(),
    );
    expect((await ok(call, 'GET', `/workflows/${wf}/status`)).auto_tune_status).toEqual({ enabled: true, job_keys: setup.job_keys });

    await setRun(wf, 1);
    await ran(wf, keys.job_small1!, ids['jobs:job_small1']!, { maxRss: 200 * 1024 ** 2, maxCpu: 95, minutes: 0.2 });
    await ran(wf, keys.job_medium1!, ids['jobs:job_medium1']!, { maxRss: 2.5 * GiB, maxCpu: 250, minutes: 3.01 });
    await ran(wf, keys.job_large1!, ids['jobs:job_large1']!, { maxRss: 0, maxCpu: 0, minutes: 0 });

    const res = await ok(call, 'POST', `/workflows/${wf}/process_auto_tune_resource_requirements_results`);
    expect(res.updated).toEqual(['small', 'medium', 'large']);
    const rr = async (name: string) => (await ok(call, 'GET', `/workflows/${wf}/resource_requirements?name=${name}`)).items[0];
    expect(await rr('small')).toMatchObject({ memory: '1g', num_cpus: 1, runtime: 'P0DT0H1M' });
    expect(await rr('medium')).toMatchObject({ memory: '3g', num_cpus: 3, runtime: 'P0DT0H4M' });
    expect(await rr('large')).toMatchObject({ memory: '1g', num_cpus: 1, runtime: 'P0DT0H1M' });

    const after = await statusesByName(wf);
    expect(after.job_small1).toBe('done');
    expect(after.job_small2).toBe('uninitialized');
    expect(Object.values(after).filter((s) => s === 'disabled')).toEqual([]);
    const status = await ok(call, 'GET', `/workflows/${wf}/status`);
    expect(status.auto_tune_status.enabled).toBe(false);
    expect(status.auto_tune_status.disabled).toBeUndefined();

    const events = (await ok(call, 'GET', `/workflows/${wf}/events?category=resource_requirements`)).items;
    expect(events.map((e: { name: string }) => e.name)).toEqual(['small', 'medium', 'large']);
    expect(events[1]).toMatchObject({ type: 'update', old: { memory: '8g', num_cpus: 4 }, new: { memory: '3g', num_cpus: 3 } });
    expect(events[1].message).toBe('Updated resource requirements for name = medium');

    // processing twice is a conflict: auto-tune is no longer enabled
    const again = await call('POST', `/workflows/${wf}/process_auto_tune_resource_requirements_results`);
    expect(again.status).toBe(409);
  });

  it('jobs without resource requirements form the "default" group, which gets a real document', async () => {
    const { wf, keys, ids } = await groups({ withDefault: true });
    const setup = await ok(call, 'POST', `/workflows/${wf}/auto_tune_resource_requirements`);
    expect(setup.job_keys).toContain(keys.job_default1);
    expect((await statusesByName(wf)).job_default2).toBe('disabled');
    await setRun(wf, 1);
    for (const n of ['job_small1', 'job_medium1', 'job_large1', 'job_default1']) await ran(wf, keys[n]!, ids[`jobs:${n}`]!, { maxRss: GiB + 1, maxCpu: 100, minutes: 2 });
    await ok(call, 'POST', `/workflows/${wf}/process_auto_tune_resource_requirements_results`);
    for (const n of ['job_default1', 'job_default2']) {
      expect(await ok(call, 'GET', `/workflows/${wf}/jobs/${keys[n]}/resource_requirements`)).toMatchObject({ name: 'default', memory: '2g', num_cpus: 1, runtime: 'P0DT0H2M' });
    }
  });

  it('refuses to start without process statistics in the config (400 naming the field), changing nothing', async () => {
    const { wf } = await groups({ process: false });
    const res = await call('POST', `/workflows/${wf}/auto_tune_resource_requirements`);
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toEqual(['config', 'compute_node_resource_stats', 'process']);
    expect(Object.values(await statusesByName(wf)).every((s) => s === 'uninitialized')).toBe(true);
    expect((await ok(call, 'GET', `/workflows/${wf}/status`)).auto_tune_status.enabled).toBe(false);
  });

  it('refuses a workflow with a disabled job (409 naming it) and skips blocked jobs', async () => {
    const { wf, keys } = await groups();
    const j = await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.job_small1}`);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.job_small1}`, { _rev: j._rev, status: 'blocked' });
    const setup = await ok(call, 'POST', `/workflows/${wf}/auto_tune_resource_requirements`);
    expect(setup.job_keys[0]).toBe(keys.job_small2);
    const res = await call('POST', `/workflows/${wf}/auto_tune_resource_requirements`);
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/job_small3/);
  });

  it('processing fails whole (400 naming the job) when a tuned job has no statistics or no current-run result', async () => {
    const { wf, keys, ids } = await groups();
    await ok(call, 'POST', `/workflows/${wf}/auto_tune_resource_requirements`);
    await setRun(wf, 1);
    await ran(wf, keys.job_small1!, ids['jobs:job_small1']!, { maxRss: GiB, maxCpu: 100, minutes: 1 });
    const res = await call('POST', `/workflows/${wf}/process_auto_tune_resource_requirements_results`);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(new RegExp(`job_medium1 \\(${keys.job_medium1}\\)`));
    // nothing changed: small keeps its values, the other jobs stay disabled
    expect((await ok(call, 'GET', `/workflows/${wf}/resource_requirements?name=small`)).items[0]).toMatchObject({ memory: '1g', runtime: 'P0DT1H' });
    expect((await statusesByName(wf)).job_small2).toBe('disabled');
    await ran(wf, keys.job_medium1!, ids['jobs:job_medium1']!, { maxRss: GiB, maxCpu: 100, minutes: 1 });
    await ran(wf, keys.job_large1!, ids['jobs:job_large1']!, { maxRss: GiB, maxCpu: 100, minutes: 1 });
    await setRun(wf, 2);
    const noResult = await call('POST', `/workflows/${wf}/process_auto_tune_resource_requirements_results`);
    expect(noResult.status).toBe(400);
    expect(noResult.body.error.message).toMatch(/no result for the current run/);
  });
});
