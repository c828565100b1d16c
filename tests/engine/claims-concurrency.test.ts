/**
 * Concurrency: 64 concurrent claimers drain 20,000 ready jobs over HTTP; every job is handed out
 * exactly once. The claimers mix resource-packing claims (every sort method, different sizes,
 * with and without a compute node) and next-N claims, so both paths race each other.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { api, testServerForSuite } from '../helpers/server.js';
import { createInitialized, jobs, type Json } from './claims-helpers.js';

const JOBS = 20_000;
const CLAIMERS = 64;

// The server as it runs, lease loop included, with a lease longer than the test: half the
// claims name no compute node and are never started, and giving those back after the lease
// (which would hand them out again, legitimately) is the lease suite's subject.
const srv = testServerForSuite({ flags: { leaseTimeoutSeconds: 3600 } });
let b: string;

beforeAll(() => {
  b = srv.baseUrl;
});

describe('64 concurrent claimers', () => {
  it('drain 20,000 ready jobs, each job handed out exactly once', { timeout: 300_000 }, async () => {
    const wf = await createInitialized(b, {
      name: 'race',
      resource_requirements: [
        { name: 'small', num_cpus: 1, memory: '1g', runtime: 'PT10M' },
        { name: 'big', num_cpus: 4, memory: '8g', runtime: 'PT1H' },
      ],
      jobs: [...jobs('s', JOBS / 2, { resource_requirements: 'small' }), ...jobs('b', JOBS / 2, { resource_requirements: 'big' })],
    });
    const nodes: string[] = [];
    for (let i = 0; i < 8; i++) {
      nodes.push((await api(b, 'POST', `/workflows/${wf}/compute_nodes`, { hostname: `n${i}`, pid: i, start_time: 't', resources: { num_cpus: 16, memory_gb: 64 } })).body._key);
    }
    const sorts = ['gpus_runtime_memory', 'gpus_memory_runtime', 'none'];
    const handedOut: Json[] = [];
    let calls = 0;

    async function claimer(i: number): Promise<void> {
      let empty = 0;
      // Stop after a few empty answers in a row: the jobs are gone.
      while (empty < 3) {
        let got: Json[];
        if (i % 4 === 3) {
          const res = await api(b, 'POST', `/workflows/${wf}/prepare_next_jobs_for_submission?limit=${1 + (i % 7)}`);
          expect(res.status).toBe(200);
          got = res.body.jobs;
        } else {
          const node = i % 2 === 0 ? `&compute_node_key=${nodes[i % nodes.length]}` : '';
          const body = { num_cpus: 4 + (i % 13), memory_gb: 16 + (i % 5) * 8, num_gpus: 0, num_nodes: 1, time_limit: i % 3 === 0 ? 'PT2H' : null };
          const res = await api(b, 'POST', `/workflows/${wf}/prepare_jobs_for_submission?sort_method=${sorts[i % 3]}${node}`, body);
          expect(res.status).toBe(200);
          got = res.body.jobs;
        }
        calls++;
        empty = got.length === 0 ? empty + 1 : 0;
        handedOut.push(...got);
      }
    }

    await Promise.all(Array.from({ length: CLAIMERS }, (_, i) => claimer(i)));

    const keys = handedOut.map((j) => j._key as string);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(JOBS);
    expect(calls).toBeGreaterThan(JOBS / 40);
    // The store agrees: every job is submitted_pending, none left ready.
    const pending = await api(b, 'GET', `/workflows/${wf}/jobs/find_by_status/submitted_pending?limit=100000`);
    expect(pending.body.total_count).toBe(JOBS);
    const ready = await api(b, 'GET', `/workflows/${wf}/jobs/find_by_status/ready`);
    expect(ready.body.total_count).toBe(0);
    // One claim event per non-empty claim, together naming every job once.
    const events = (await api(b, 'GET', `/workflows/${wf}/events?category=job&limit=100000`)).body.items as Json[];
    const inEvents = events.filter((e) => e.type === 'claim').flatMap((e) => e.job_keys as string[]);
    expect(inEvents.sort()).toEqual([...keys].sort());
  });
});
