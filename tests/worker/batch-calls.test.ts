/**
 * The worker's batched calls against a real server, seen through a small HTTP relay in front of
 * it that counts the requests: claims start the jobs (start_run_id), completions go in
 * complete_jobs requests that carry the next claim, so there is no start_job and no complete_job.
 * The same relay can play an older server (Torc, an older Weft): no complete_jobs route (404
 * ROUTE_NOT_FOUND) and start_run_id refused (400 VALIDATION_FAILED naming it); the worker then
 * falls back to claim, start_job and complete_job per job, and the run ends the same.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WeftClient } from '../../client/index.js';
import { runWorker } from '../../worker/index.js';
import { testServerForSuite } from '../helpers/server.js';
import { resultsFor, startedWorkflow, tempDirForSuite } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite();

interface Relay {
  url: string;
  /** Requests seen, by the last path segment that names the call. */
  counts: Map<string, number>;
  close: () => Promise<void>;
}

function callName(path: string): string {
  for (const n of ['complete_jobs', 'complete_job', 'start_job', 'prepare_jobs_for_submission', 'prepare_next_jobs_for_submission']) if (path.includes(`/${n}`)) return n;
  return 'other';
}

/**
 * Relay to the real server; `old` answers as a server without the batch extensions would,
 * `no-starts` as one whose complete_jobs does not take starts (400 naming the field).
 */
async function startRelay(target: string, old: boolean | 'no-starts'): Promise<Relay> {
  const t = new URL(target);
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const name = callName(url.pathname);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const answer = (status: number, body: unknown): void => {
      req.resume();
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (old === true && name === 'complete_jobs') return answer(404, { error: { code: 'ROUTE_NOT_FOUND', message: `No route for POST ${url.pathname}`, details: [], retryable: false } });
    if (old === true && url.searchParams.has('start_run_id')) {
      return answer(400, { error: { code: 'VALIDATION_FAILED', message: 'Invalid request: query: unrecognized key "start_run_id"', details: [{ path: ['start_run_id'], message: 'unrecognized key' }], retryable: false } });
    }
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (old === 'no-starts' && name === 'complete_jobs' && 'starts' in (JSON.parse(body.toString()) as object)) {
        counts.set('starts_refused', (counts.get('starts_refused') ?? 0) + 1);
        return answer(400, { error: { code: 'VALIDATION_FAILED', message: 'Invalid request: body: unrecognized key "starts"', details: [{ path: ['starts'], message: 'unrecognized key' }], retryable: false } });
      }
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => answer(502, { error: { code: 'BAD_GATEWAY', message: 'relay' } }));
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${t.pathname}`,
    counts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const spec = (name: string): Record<string, unknown> => ({
  name,
  jobs: [
    ...Array.from({ length: 12 }, (_, i) => ({ name: `a${i}`, command: i % 3 === 0 ? 'exit 2' : 'true' })),
    // Blocked by the jobs that succeed (a failed blocker would cancel it).
    { name: 'last', command: 'echo last', blocked_by: Array.from({ length: 12 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `a${i}`) },
  ],
});

async function runThrough(old: boolean | 'no-starts'): Promise<{ relay: Relay; client: WeftClient; wf: string; summary: Awaited<ReturnType<typeof runWorker>> }> {
  const { wf, client } = await startedWorkflow(srv.baseUrl, spec(old === true ? 'old-server' : old ? 'no-starts' : 'batched'));
  const relay = await startRelay(srv.baseUrl, old);
  try {
    const summary = await runWorker({ url: relay.url, workflow: wf, outputDir: join(dir, old === true ? 'old' : old ? 'no-starts' : 'new'), numCpus: 3, memoryGb: 1, pollIntervalSeconds: 0.2 });
    return { relay, client, wf, summary };
  } finally {
    await relay.close();
  }
}

async function expectRunDone(client: WeftClient, wf: string): Promise<void> {
  const jobs = await client.list(wf, 'jobs');
  expect(jobs).toHaveLength(13);
  for (const j of jobs) {
    const results = await resultsFor(client, wf, j._key);
    expect(results, String(j['name'])).toHaveLength(1);
    const failing = /^a\d+$/.test(String(j['name'])) && Number(String(j['name']).slice(1)) % 3 === 0;
    expect(results[0]).toMatchObject({ run_id: 1, return_code: failing ? 2 : 0, status: 'done' });
    expect(j['status']).toBe('done'); // a non-zero return code is in the result; the job is done
  }
}

describe('worker: batched calls', () => {
  it('claims start the jobs and completions carry the next claim: no start_job, no complete_job', async () => {
    const { relay, client, wf, summary } = await runThrough(false);
    expect(summary).toMatchObject({ reason: 'complete', started: 13, done: 9, failed: 4 });
    await expectRunDone(client, wf);
    expect(relay.counts.get('start_job') ?? 0).toBe(0);
    expect(relay.counts.get('complete_job') ?? 0).toBe(0);
    const batches = relay.counts.get('complete_jobs') ?? 0;
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThanOrEqual(13);
    // Claims of their own only when no completion was on its way (the start, the job `last` unblocked).
    expect(relay.counts.get('prepare_jobs_for_submission') ?? 0).toBeLessThan(13);
  });

  it('a server whose complete_jobs takes no starts: asked once, then no starts and no claiming ahead', async () => {
    const { relay, client, wf, summary } = await runThrough('no-starts');
    expect(summary).toMatchObject({ reason: 'complete', started: 13, done: 9, failed: 4 });
    await expectRunDone(client, wf);
    expect(relay.counts.get('starts_refused')).toBe(1);
    expect(relay.counts.get('start_job') ?? 0).toBe(0);
    expect(relay.counts.get('complete_job') ?? 0).toBe(0);
  });

  it('an older server (no complete_jobs, start_run_id refused): claim, start_job and complete_job per job', async () => {
    const { relay, client, wf, summary } = await runThrough(true);
    expect(summary).toMatchObject({ reason: 'complete', started: 13, done: 9, failed: 4 });
    await expectRunDone(client, wf);
    expect(relay.counts.get('start_job')).toBe(13);
    expect(relay.counts.get('complete_job')).toBe(13);
    // Each tried once, then never again.
    expect(relay.counts.get('complete_jobs')).toBe(1);
  });
});
