import { describe, expect, it } from 'vitest';
import { durationToSeconds, memoryToBytes } from '../../graph/engine/views-units.js';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

describe('unit parsing used by the views', () => {
  it('parses memory strings strictly', () => {
    expect(memoryToBytes('1024')).toBe(1024);
    expect(memoryToBytes('10g')).toBe(10 * 1024 ** 3);
    expect(memoryToBytes('512 M')).toBe(512 * 1024 ** 2);
    expect(memoryToBytes('2t')).toBe(2 * 1024 ** 4);
    for (const bad of ['1.5g', '10gb', 'g', '', '-1g', '10 x']) expect(() => memoryToBytes(bad), bad).toThrow(/invalid memory/);
  });
  it('parses ISO-8601 durations strictly', () => {
    expect(durationToSeconds('P0DT1H')).toBe(3600);
    expect(durationToSeconds('PT30M')).toBe(1800);
    expect(durationToSeconds('P1DT1S')).toBe(86401);
    expect(durationToSeconds('P0DT0H1M')).toBe(60);
    for (const bad of ['P', 'PT', 'P1Y', 'P1W', 'PT1.5H', '1h', 'P1DT']) expect(() => durationToSeconds(bad), bad).toThrow(/invalid duration/);
  });
});

const srv = testServerForSuite();
const call = bind(srv);

describe('ready_job_requirements', () => {
  it('sums the ready jobs (through the graph), takes maxima of nodes and runtime, filters by scheduler', async () => {
    const { wf, keys, ids } = await buildWorkflow(call, {
      resource_requirements: {
        small: { num_cpus: 1, memory: '1g', runtime: 'PT30M' },
        gpu: { num_cpus: 4, num_gpus: 2, num_nodes: 2, memory: '8g', runtime: 'P0DT2H' },
      },
      slurm_schedulers: { bigmem: { account: 'a', nodes: 1 }, other: { account: 'a', nodes: 1 } },
      jobs: {
        s1: { rr: 'small' },
        s2: { rr: 'small', sched: 'slurm_schedulers:other' },
        g1: { rr: 'gpu', sched: 'slurm_schedulers:bigmem' },
        plain: {},
        notReady: { rr: 'gpu' },
      },
    });
    expect(await ok(call, 'GET', `/workflows/${wf}/ready_job_requirements`)).toEqual({
      num_jobs: 0, num_cpus: 0, num_gpus: 0, memory_gb: 0, max_num_nodes: 0, max_runtime: '',
    });
    for (const n of ['s1', 's2', 'g1', 'plain']) {
      const j = await ok(call, 'GET', `/workflows/${wf}/jobs/${keys[n]}`);
      await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys[n]}`, { _rev: j._rev, status: 'ready' });
    }
    const all = await ok(call, 'GET', `/workflows/${wf}/ready_job_requirements`);
    expect(all).toEqual({ num_jobs: 4, num_cpus: 7, num_gpus: 2, memory_gb: 10 + 1 / 1024, max_num_nodes: 2, max_runtime: 'P0DT2H' });
    const bigmem = await ok(call, 'GET', `/workflows/${wf}/ready_job_requirements?scheduler_config_id=${encodeURIComponent(ids['slurm_schedulers:bigmem']!)}`);
    expect(bigmem).toMatchObject({ num_jobs: 3, num_cpus: 6, num_gpus: 2, max_runtime: 'P0DT2H' });
    const other = await ok(call, 'GET', `/workflows/${wf}/ready_job_requirements?scheduler_config_id=${keys['slurm_schedulers:other']}`);
    expect(other).toMatchObject({ num_jobs: 3, num_cpus: 3, num_gpus: 0, max_num_nodes: 1, max_runtime: 'PT30M' });
    // a requirement changed after initialization counts at once
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.plain}/resource_requirements/${keys['resource_requirements:gpu']}`);
    expect((await ok(call, 'GET', `/workflows/${wf}/ready_job_requirements`)).num_gpus).toBe(4);
  });

  it('a stored malformed memory string is a 400 naming the resource requirements, not a 500', async () => {
    const { wf, keys } = await buildWorkflow(call, { resource_requirements: { weird: { memory: '1.5g' } }, jobs: { j: { rr: 'weird' } } });
    const j = await ok(call, 'GET', `/workflows/${wf}/jobs/${keys.j}`);
    await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys.j}`, { _rev: j._rev, status: 'ready' });
    const res = await call('GET', `/workflows/${wf}/ready_job_requirements`);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/"weird"/);
  });
});
