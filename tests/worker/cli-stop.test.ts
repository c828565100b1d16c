/**
 * Stopping, with the real `weft worker` binary and a real server: a canceled workflow stops its
 * running jobs; SIGTERM stops the worker cleanly (jobs terminated, no orphans, nothing left
 * submitted); a worker killed with SIGKILL takes its jobs with it, and once its lease lapses the
 * job runs on another worker, with one result for the run.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WeftClient } from '../../client/index.js';
import { testServerForSuite } from '../helpers/server.js';
import { killStrayWorkers, jobsByName, processesWith, resultsFor, startCliWorker, startedWorkflow, tempDirForSuite, waitFor } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite({ flags: { leaseTimeoutSeconds: 2 } });
afterAll(killStrayWorkers);

async function statuses(client: WeftClient, wf: string): Promise<Record<string, string>> {
  return Object.fromEntries([...(await jobsByName(client, wf)).entries()].map(([n, j]) => [n, String(j['status'])]));
}

function workerArgs(wf: string, out: string, extra: string[] = []): string[] {
  return ['--url', srv.baseUrl, '--workflow', wf, '--output-dir', join(dir, out), '--num-cpus', '4', '--memory-gb', '4', '--poll-interval-seconds', '0.3', '--heartbeat-seconds', '0.5', ...extra];
}

describe('weft worker: stopping', () => {
  it('a canceled workflow: running jobs are killed and recorded canceled, the worker exits 0', async () => {
    const marker = `${Date.now() % 100000}.11`;
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'cancel',
      jobs: [
        { name: 'a', command: `sleep 3${marker}` },
        { name: 'b', command: `sleep 3${marker}` },
        { name: 'after', command: 'true', blocked_by: ['a'] },
      ],
    });
    const w = startCliWorker(workerArgs(wf, 'out-cancel'));
    await waitFor('both jobs running', async () => {
      const s = await statuses(client, wf);
      return s['a'] === 'submitted' && s['b'] === 'submitted' && (await processesWith('sleep', `3${marker}`)).length === 2;
    });
    await client.cancelWorkflow(wf);
    const exit = await w.exited;
    expect(exit.code, w.stderr()).toBe(0);
    expect(await processesWith('sleep', `3${marker}`)).toEqual([]);
    const jobs = await jobsByName(client, wf);
    for (const name of ['a', 'b']) {
      expect(jobs.get(name)!['status']).toBe('canceled');
      const results = await resultsFor(client, wf, jobs.get(name)!._key);
      expect(results).toHaveLength(1);
      expect(results[0]!['status']).toBe('canceled');
      expect(results[0]!['return_code']).not.toBe(0);
    }
    expect(jobs.get('after')!['status']).not.toBe('submitted');
    expect((await client.list(wf, 'compute_nodes'))[0]!['is_active']).toBe(false);
  });

  it('SIGTERM: jobs are stopped and recorded terminated, no process is left, no job is left submitted', async () => {
    const marker = `${Date.now() % 100000}.22`;
    const d = join(dir, 'term');
    mkdirSync(d);
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'sigterm',
      jobs: [
        // supports termination: it cleans up on SIGTERM and exits 0
        { name: 'graceful', command: `trap 'echo cleaned > ${d}/graceful; exit 0' TERM; sleep 3${marker} & wait`, supports_termination: true },
        // a job with children of its own
        { name: 'plain', command: `sleep 3${marker} & sleep 3${marker}; wait` },
        { name: 'later', command: 'true', blocked_by: ['plain'] },
      ],
    });
    const w = startCliWorker(workerArgs(wf, 'out-term'));
    await waitFor('jobs running', async () => {
      const s = await statuses(client, wf);
      return s['graceful'] === 'submitted' && s['plain'] === 'submitted' && (await processesWith('sleep', `3${marker}`)).length === 3;
    });
    w.child.kill('SIGTERM');
    const exit = await w.exited;
    expect(exit.code, w.stderr()).toBe(0);
    expect(await processesWith('sleep', `3${marker}`)).toEqual([]);
    expect(readFileSync(join(d, 'graceful'), 'utf8')).toBe('cleaned\n');
    const jobs = await jobsByName(client, wf);
    expect(jobs.get('graceful')!['status']).toBe('terminated');
    expect(jobs.get('plain')!['status']).toBe('terminated');
    expect((await resultsFor(client, wf, jobs.get('graceful')!._key))[0]).toMatchObject({ status: 'terminated', return_code: 0 });
    expect((await resultsFor(client, wf, jobs.get('plain')!._key))[0]).toMatchObject({ status: 'terminated', return_code: -15 });
    for (const j of jobs.values()) expect(['submitted', 'submitted_pending']).not.toContain(j['status']);
    expect((await client.list(wf, 'compute_nodes'))[0]!['is_active']).toBe(false);
  });

  it('SIGKILL mid-job: the job dies with the worker, its lease lapses, a second worker runs it; one result for the run', async () => {
    const marker = `${Date.now() % 100000}.33`;
    const d = join(dir, 'kill');
    mkdirSync(d);
    // First attempt: mark, then sleep "forever". Second attempt: record and finish.
    const command = `echo "$WEFT_JOB_KEY" >> ${d}/attempts; if [ -e ${d}/first ]; then echo finished > ${d}/done; else touch ${d}/first; sleep 3${marker}; echo should-not-happen > ${d}/late; fi`;
    const { wf, client } = await startedWorkflow(srv.baseUrl, { name: 'sigkill', jobs: [{ name: 'victim', command }, { name: 'next', command: 'true', blocked_by: ['victim'] }] });
    const first = startCliWorker(workerArgs(wf, 'out-kill1'));
    await waitFor('the job running', async () => (await processesWith('sleep', `3${marker}`)).length === 1);
    first.child.kill('SIGKILL');
    await first.exited;
    // pdeathsig and the reaper: the job's processes do not outlive the worker
    await waitFor('the job processes to die', async () => (await processesWith('sleep', `3${marker}`)).length === 0, 10_000);
    const victim = (await jobsByName(client, wf)).get('victim')!;
    expect(victim['status']).toBe('submitted');
    const second = startCliWorker(workerArgs(wf, 'out-kill2', ['--wait-for-new-jobs-seconds', '30']));
    const exit = await second.exited;
    expect(exit.code, second.stderr()).toBe(0);
    expect(readFileSync(join(d, 'done'), 'utf8')).toBe('finished\n');
    expect(existsSync(join(d, 'late'))).toBe(false);
    expect(readFileSync(join(d, 'attempts'), 'utf8').trim().split('\n')).toHaveLength(2);
    const jobs = await jobsByName(client, wf);
    expect(jobs.get('victim')!['status']).toBe('done');
    expect(jobs.get('next')!['status']).toBe('done');
    const results = await resultsFor(client, wf, victim._key);
    expect(results).toHaveLength(1);
    const nodes = await client.list(wf, 'compute_nodes');
    const secondNode = nodes.find((n) => n['is_active'] === false && n['duration_seconds'] !== undefined && n['duration_seconds'] !== null)!;
    expect(results[0]).toMatchObject({ run_id: 1, return_code: 0, compute_node_key: secondNode._key });
    const events = (await client.list(wf, 'events')).filter((e) => e['type'] === 'lease_expired');
    expect(events.length).toBeGreaterThan(0);
  });
});
