/**
 * Concurrency of the batched lifecycle: 32 workers drain 2,000 jobs in chains of 4 with
 * claim-and-start and complete_jobs (whose claim takes the jobs the completions unblocked),
 * racing each other and a few per-transition workers. Every job is started exactly once, every
 * completion answers 200, and the workflow ends complete.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { WeftClient, type Doc } from '../../client/index.js';
import { api, testServerForSuite } from '../helpers/server.js';
import { createInitialized, type Json } from './claims-helpers.js';

const JOBS = 2_000;
const CHAIN = 4;
const WORKERS = 32;

const srv = testServerForSuite({ flags: { leaseTimeoutSeconds: 3600 } });
let b: string;

beforeAll(() => {
  b = srv.baseUrl;
});

describe('batched lifecycles, concurrently', () => {
  it(`${WORKERS} workers run ${JOBS} chained jobs, each started and completed exactly once`, { timeout: 300_000 }, async () => {
    const jobs: Json[] = [];
    for (let i = 0; i < JOBS; i++) {
      const name = `c${Math.floor(i / CHAIN)}_${i % CHAIN}`;
      jobs.push(i % CHAIN === 0 ? { name, command: 'true' } : { name, command: 'true', blocked_by: [`c${Math.floor(i / CHAIN)}_${(i % CHAIN) - 1}`] });
    }
    const wf = await createInitialized(b, { name: 'batched-race', jobs });
    const run = (await api(b, 'GET', `/workflows/${wf}/status`)).body.run_id as number;
    const client = new WeftClient(b, { retryMinutes: 0 });
    const started: string[] = [];
    let completed = 0;
    const resources = { num_cpus: 4, memory_gb: 64, num_gpus: 0, num_nodes: 1, time_limit: null };
    const result = (key: string) => ({ job_key: key, run_id: run, return_code: 0, exec_time_minutes: 0, completion_time: new Date().toISOString(), status: 'done' });

    async function worker(i: number): Promise<void> {
      const node = (await client.add(wf, 'compute_nodes', { hostname: `w${i}`, pid: i, start_time: 't', resources: { num_cpus: 4, memory_gb: 64 } }))._key;
      let held: Doc[] = [];
      let idle = 0;
      while (idle < 20) {
        if (held.length === 0) {
          if (completed >= JOBS) return;
          held = i % 8 === 7
            ? (await client.prepareNextJobsForSubmission(wf, 3, { compute_node_key: node, start_run_id: run })).jobs
            : (await client.prepareJobsForSubmission(wf, resources, { compute_node_key: node, start_run_id: run, limit: 4 })).jobs;
          if (held.length === 0) {
            idle++;
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
        }
        idle = 0;
        for (const j of held) {
          expect(j.status).toBe('submitted');
          started.push(j._key);
        }
        if (i % 8 === 6) {
          // A per-transition worker in the same race: complete_job one by one, then claim again.
          for (const j of held) await client.completeJob(wf, j._key, 'done', j._rev, run, node, result(j._key));
          completed += held.length;
          held = [];
          continue;
        }
        const res = await client.completeJobs(
          wf,
          held.map((j) => ({ job_key: j._key, status: 'done', rev: j._rev, run_id: run, compute_node_key: node, result: result(j._key) })),
          { compute_node_key: node, resources, limit: 4, start_run_id: run },
        );
        expect(res.items.map((it) => it.status)).toEqual(held.map(() => 200));
        completed += held.length;
        held = res.claimed!.jobs;
      }
    }

    await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));
    expect(completed).toBe(JOBS);
    expect(started).toHaveLength(JOBS);
    expect(new Set(started).size).toBe(JOBS);
    expect((await api(b, 'GET', `/workflows/${wf}/is_complete`)).body.is_complete).toBe(true);
    expect((await api(b, 'GET', `/workflows/${wf}/edges/executed?limit=100000`)).body.items).toHaveLength(JOBS);
    expect((await api(b, 'GET', `/workflows/${wf}/results?limit=100000`)).body.items).toHaveLength(JOBS);
  });
});
