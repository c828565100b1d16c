/**
 * Claiming ahead (Weft extension, worker.ts and reporter.ts), with a real server and real worker
 * processes: once the recent jobs are short, claims queue jobs without starting them, a freed slot
 * starts the next at once, and starts and completions reach the server batched in complete_jobs.
 * Each job runs exactly once with its start, completion, result and events recorded; a long job
 * that holds the slots does not keep queued jobs (they are given back and another worker runs
 * them); SIGTERM gives the queue back; SIGKILL leaves it to the lease pass.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Doc, WeftClient } from '../../client/index.js';
import { runWorker } from '../../worker/index.js';
import { testServerForSuite } from '../helpers/server.js';
import { jobsByName, killStrayWorkers, processesWith, resultsFor, startCliWorker, startedWorkflow, tempDirForSuite, waitFor } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite({ flags: { leaseTimeoutSeconds: 2 } });
afterAll(killStrayWorkers);

/** A relay in front of the server that counts complete_jobs requests and the starts they carry, and start_job calls. */
async function countingRelay(target: string): Promise<{ url: string; counts: { completeJobs: number; starts: number; completions: number; startJob: number }; close: () => Promise<void> }> {
  const t = new URL(target);
  const counts = { completeJobs: 0, starts: 0, completions: 0, startJob: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url?.includes('/start_job/')) counts.startJob++;
      if (req.url?.includes('/complete_jobs')) {
        const b = JSON.parse(body.toString()) as { starts?: unknown[]; completions: unknown[] };
        counts.completeJobs++;
        counts.starts += b.starts?.length ?? 0;
        counts.completions += b.completions.length;
      }
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${t.pathname}`, counts, close: () => new Promise((r) => server.close(() => r())) };
}

async function events(client: WeftClient, wf: string, jobKey: string): Promise<Doc[]> {
  return (await client.list(wf, 'events')).filter((e) => e['job_key'] === jobKey);
}

/** Short jobs first (they turn claiming ahead on), then `long` and `after*`, which wait for all of them. */
function shortThenLong(name: string, long: string, after: number): Record<string, unknown> {
  const shorts = Array.from({ length: 12 }, (_, i) => `s${i}`);
  return {
    name,
    resource_requirements: [
      { name: 'short', num_cpus: 1, memory: '10m', runtime: 'PT1M' },
      // Sorted first by the claim (longest runtime first), so it takes the slot and the others queue.
      { name: 'long', num_cpus: 1, memory: '10m', runtime: 'PT1H' },
    ],
    jobs: [
      ...shorts.map((n) => ({ name: n, command: 'true', resource_requirements: 'short' })),
      { name: 'long', command: long, resource_requirements: 'long', blocked_by: shorts },
      ...Array.from({ length: after }, (_, i) => ({ name: `after${i}`, command: 'true', resource_requirements: 'short', blocked_by: shorts })),
    ],
  };
}

function cliArgs(wf: string, out: string, cpus = 1): string[] {
  return ['--url', srv.baseUrl, '--workflow', wf, '--output-dir', join(dir, out), '--num-cpus', String(cpus), '--memory-gb', '1', '--poll-interval-seconds', '0.3', '--heartbeat-seconds', '0.5'];
}

describe('worker: claiming ahead', () => {
  it('short jobs: each runs exactly once; starts and completions go batched, with their results and events', async () => {
    const ran = join(dir, 'ran.txt');
    const n = 80;
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'ahead-short',
      jobs: [
        ...Array.from({ length: n }, (_, i) => ({ name: `j${i}`, command: `echo "$WEFT_JOB_NAME" >> ${ran}` })),
        { name: 'last', command: `echo last >> ${ran}`, blocked_by: ['j0', 'j1', 'j79'] },
      ],
    });
    const relay = await countingRelay(srv.baseUrl);
    let summary;
    try {
      summary = await runWorker({ url: relay.url, workflow: wf, outputDir: join(dir, 'short'), numCpus: 2, memoryGb: 1, pollIntervalSeconds: 0.2 });
    } finally {
      await relay.close();
    }
    expect(summary).toMatchObject({ reason: 'complete', started: n + 1, done: n + 1, failed: 0 });
    // Every job ran once: one line per job in the file they append to.
    const lines = readFileSync(ran, 'utf8').trim().split('\n').sort();
    expect(lines).toEqual([...Array.from({ length: n }, (_, i) => `j${i}`), 'last'].sort());
    // Claimed ahead: most starts went in complete_jobs, none by start_job; requests carried several jobs.
    expect(relay.counts.startJob).toBe(0);
    expect(relay.counts.starts).toBeGreaterThan(n / 2);
    expect(relay.counts.completions).toBe(n + 1);
    expect(relay.counts.completeJobs).toBeLessThan(n);
    for (const job of (await jobsByName(client, wf)).values()) {
      expect(job['status'], String(job['name'])).toBe('done');
      const results = await resultsFor(client, wf, job._key);
      expect(results, String(job['name'])).toHaveLength(1);
      expect(results[0]).toMatchObject({ run_id: 1, return_code: 0, status: 'done' });
      expect(typeof results[0]!['exec_time_minutes']).toBe('number');
      const ev = await events(client, wf, job._key);
      const starts = ev.filter((e) => e['type'] === 'start');
      const completes = ev.filter((e) => e['type'] === 'complete');
      expect(starts, String(job['name'])).toHaveLength(1);
      expect(completes, String(job['name'])).toHaveLength(1);
      expect(Number(starts[0]!['timestamp'])).toBeLessThanOrEqual(Number(completes[0]!['timestamp']));
    }
  });

  it('a workflow canceled while jobs are claimed ahead: the worker stops, nothing stays claimed or started, no job has two results', async () => {
    const { wf, client } = await startedWorkflow(srv.baseUrl, { name: 'ahead-cancel', jobs: Array.from({ length: 1500 }, (_, i) => ({ name: `c${i}`, command: 'true' })) });
    const w = startCliWorker(cliArgs(wf, 'cancel', 2));
    await waitFor('some jobs done', async () => (await client.list(wf, 'results')).length >= 40);
    await client.cancelWorkflow(wf);
    const exit = await w.exited;
    expect(exit.code, w.stderr()).toBe(0);
    const jobs = [...(await jobsByName(client, wf)).values()];
    const results = await client.list(wf, 'results');
    const perJob = new Map<string, number>();
    for (const r of results) perJob.set(String(r['job_key']), (perJob.get(String(r['job_key'])) ?? 0) + 1);
    expect([...perJob.values()].every((n) => n === 1)).toBe(true);
    for (const j of jobs) expect(['done', 'canceled'], `${String(j['name'])} ${String(j['status'])}`).toContain(j['status']);
    expect(jobs.filter((j) => j['status'] === 'done').length).toBeGreaterThanOrEqual(40);
    expect(jobs.some((j) => j['status'] === 'canceled')).toBe(true);
  });

  it('a job bigger than the node, claimed ahead, is given back; the worker runs the rest and leaves it ready', async () => {
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'ahead-big',
      resource_requirements: [
        { name: 'short', num_cpus: 1, memory: '10m', runtime: 'PT1M' },
        // Sorted first by every claim: more runtime than the others.
        { name: 'big', num_cpus: 3, memory: '10m', runtime: 'PT1H' },
      ],
      jobs: [
        ...Array.from({ length: 30 }, (_, i) => ({ name: `s${i}`, command: 'true', resource_requirements: 'short' })),
        { name: 'big', command: 'true', resource_requirements: 'big', blocked_by: ['s0', 's1', 's2', 's3', 's4', 's5'] },
      ],
    });
    const summary = await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'big'), numCpus: 2, memoryGb: 1, pollIntervalSeconds: 0.2 });
    expect(summary).toMatchObject({ reason: 'idle', started: 30, done: 30 });
    const jobs = await jobsByName(client, wf);
    expect(jobs.get('big')!['status']).toBe('ready');
    expect(await resultsFor(client, wf, jobs.get('big')!._key)).toHaveLength(0);
    // It was claimed ahead and given back by the worker (not left held).
    const back = (await events(client, wf, jobs.get('big')!._key)).filter((e) => e['type'] === 'status_change' && e['old_status'] === 'submitted_pending');
    expect(back.length).toBeGreaterThan(0);
    for (const [name, job] of jobs) if (name !== 'big') expect(await resultsFor(client, wf, job._key), name).toHaveLength(1);
  });

  it('a long job after short ones: the jobs queued behind it are given back and another worker runs them', async () => {
    // About 6 s, and a name no other test's process has.
    const secs = `6.${Date.now() % 100000}31`;
    const { wf, client } = await startedWorkflow(srv.baseUrl, shortThenLong('ahead-long', `sleep ${secs}`, 3));
    const a = startCliWorker(cliArgs(wf, 'long-a'));
    await waitFor('the long job running', async () => (await processesWith('sleep', secs)).length === 1, 60_000);
    const jobs = await jobsByName(client, wf);
    const longNode = (jobs.get('long')!['internal'] as { compute_node_key?: string }).compute_node_key;
    // Nothing stays claimed behind the long job: the queued ones are ready again within the wait limit.
    await waitFor('no job claimed ahead behind the long one', async () => {
      const st = [...(await jobsByName(client, wf)).values()].filter((j) => String(j['name']).startsWith('after'));
      return st.every((j) => j['status'] === 'ready');
    });
    const b = startCliWorker(cliArgs(wf, 'long-b'));
    await waitFor('the queued jobs done by the other worker', async () => {
      const st = [...(await jobsByName(client, wf)).values()].filter((j) => String(j['name']).startsWith('after'));
      return st.every((j) => j['status'] === 'done');
    });
    // ... while the long job still runs on the first.
    expect((await jobsByName(client, wf)).get('long')!['status']).toBe('submitted');
    const given = [];
    for (const [name, job] of await jobsByName(client, wf)) {
      if (!name.startsWith('after')) continue;
      const results = await resultsFor(client, wf, job._key);
      expect(results, name).toHaveLength(1);
      expect(results[0]!['compute_node_key'], name).not.toBe(longNode);
      given.push(...(await events(client, wf, job._key)).filter((e) => e['type'] === 'status_change' && e['old_status'] === 'submitted_pending' && e['status'] === 'ready'));
    }
    // At least the ones the first worker had queued were given back by it (not by the lease).
    expect(given.length).toBeGreaterThan(0);
    const [ea, eb] = await Promise.all([a.exited, b.exited]);
    expect(ea.code, a.stderr()).toBe(0);
    expect(eb.code, b.stderr()).toBe(0);
    expect([...(await jobsByName(client, wf)).values()].every((j) => j['status'] === 'done')).toBe(true);
  }, 90_000);

  it('SIGTERM gives the claimed-ahead jobs back (ready), and SIGKILL leaves them to the lease pass', async () => {
    for (const how of ['SIGTERM', 'SIGKILL'] as const) {
      const marker = `${Date.now() % 100000}.${how === 'SIGTERM' ? 41 : 43}`;
      const { wf, client } = await startedWorkflow(srv.baseUrl, shortThenLong(`ahead-${how}`, `sleep 6${marker}`, 2));
      // Queued jobs are never given back for waiting: only the stop (or the lease) can.
      const w = startCliWorker(cliArgs(wf, `stop-${how}`), { WEFT_WORKER_AHEAD_MAX_WAIT_MS: '600000' });
      const queued = await waitFor('the long job running and the others claimed', async () => {
        if ((await processesWith('sleep', `6${marker}`)).length !== 1) return false;
        const st = [...(await jobsByName(client, wf)).values()].filter((j) => String(j['name']).startsWith('after'));
        const pending = st.filter((j) => j['status'] === 'submitted_pending').map((j) => String(j['name']));
        return pending.length > 0 ? pending : false;
      }, 60_000);
      w.child.kill(how);
      const exit = await w.exited;
      if (how === 'SIGTERM') expect(exit.code, w.stderr()).toBe(0);
      // Ready again: at once after SIGTERM, once the lease lapses after SIGKILL.
      await waitFor('the claimed-ahead jobs ready again', async () => {
        const st = [...(await jobsByName(client, wf)).values()].filter((j) => String(j['name']).startsWith('after'));
        return st.every((j) => j['status'] === 'ready');
      });
      const after = [...(await jobsByName(client, wf)).entries()].filter(([n]) => n.startsWith('after'));
      for (const [name, job] of after) {
        expect(await resultsFor(client, wf, job._key), name).toHaveLength(0);
        const ev = await events(client, wf, job._key);
        expect(ev.filter((e) => e['type'] === 'start'), name).toHaveLength(0);
        // Given back by the worker (a status change) after SIGTERM, by the lease pass after SIGKILL.
        const back = ev.filter((e) => (how === 'SIGTERM' ? e['type'] === 'status_change' && e['old_status'] === 'submitted_pending' && e['status'] === 'ready' : e['type'] === 'lease_expired'));
        if (queued.includes(name)) expect(back.length, `${how} ${name}`).toBe(1);
      }
      if (how === 'SIGKILL') expect(await processesWith('sleep', `6${marker}`)).toEqual([]);
    }
  }, 120_000);
});
