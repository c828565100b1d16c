/**
 * Helpers for the lifecycle and scenario tests: drive jobs through the HTTP API like a worker.
 * A claim is written with the generic job PUT (status submitted_pending, the holder in
 * internal.compute_node_key), so these tests do not depend on the claim endpoints.
 */
import { expect } from 'vitest';
import { api } from '../helpers/server.js';
import { bind, buildWorkflow, ok, type Api } from '../views/helpers.js';

export { bind, buildWorkflow, ok, type Api };

export interface Ctx {
  call: Api;
  wf: string;
  keys: Record<string, string>;
  ids: Record<string, string>;
}

/** Register a compute node (heartbeating when `heartbeat`); returns its key. */
export async function addNode(call: Api, wf: string, hostname = 'node-a', heartbeat = false): Promise<string> {
  const node = await ok(call, 'POST', `/workflows/${wf}/compute_nodes`, {
    hostname, pid: process.pid, start_time: new Date().toISOString(), resources: { num_cpus: 8, memory_gb: 16 },
  });
  if (heartbeat) await ok(call, 'POST', `/workflows/${wf}/compute_nodes/${node._key}/heartbeat`);
  return node._key;
}

export async function getJob(call: Api, wf: string, key: string): Promise<any> {
  return ok(call, 'GET', `/workflows/${wf}/jobs/${key}`);
}

/** Claim a ready job for `node` (as prepare_jobs_for_submission would). Returns the job. */
export async function claim(call: Api, wf: string, key: string, node: string): Promise<any> {
  const job = await getJob(call, wf, key);
  expect(job.status, `claim ${job.name}`).toBe('ready');
  return ok(call, 'PUT', `/workflows/${wf}/jobs/${key}`, {
    _rev: job._rev, status: 'submitted_pending', internal: { ...job.internal, compute_node_key: node, claimed_at: Date.now() },
  });
}

export async function runId(call: Api, wf: string): Promise<number> {
  return (await ok(call, 'GET', `/workflows/${wf}/status`)).run_id;
}

export async function bumpRun(call: Api, wf: string): Promise<number> {
  const st = await ok(call, 'GET', `/workflows/${wf}/status`);
  return (await ok(call, 'PUT', `/workflows/${wf}/status`, { _rev: st._rev, run_id: st.run_id + 1 })).run_id;
}

export function result(key: string, run: number, rc = 0, status = 'done'): Record<string, unknown> {
  return { job_key: key, run_id: run, return_code: rc, exec_time_minutes: 0.01, completion_time: new Date().toISOString(), status };
}

export function startPath(wf: string, key: string, rev: string, run: number, node: string): string {
  return `/workflows/${wf}/jobs/${key}/start_job/${encodeURIComponent(rev)}/${run}/${node}`;
}

export function completePath(wf: string, key: string, status: string, rev: string, run: number, node: string): string {
  return `/workflows/${wf}/jobs/${key}/complete_job/${status}/${encodeURIComponent(rev)}/${run}/${node}`;
}

/** Claim, start and complete one job; returns the completed job. */
export async function runJob(call: Api, wf: string, key: string, node: string, rc = 0, status = 'done'): Promise<any> {
  const run = await runId(call, wf);
  const claimed = await claim(call, wf, key, node);
  const started = await ok(call, 'PUT', startPath(wf, key, claimed._rev, run, node));
  expect(started.status).toBe('submitted');
  return ok(call, 'POST', completePath(wf, key, status, started._rev, run, node), result(key, run, rc, status));
}

/** Job name → status. */
export async function statuses(call: Api, wf: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const j of (await ok(call, 'GET', `/workflows/${wf}/jobs`)).items) out[j.name] = j.status;
  return out;
}

/** Job name → job document. */
export async function jobsByName(call: Api, wf: string): Promise<Record<string, any>> {
  const out: Record<string, any> = {};
  for (const j of (await ok(call, 'GET', `/workflows/${wf}/jobs`)).items) out[j.name] = j;
  return out;
}

export async function events(call: Api, wf: string, category?: string): Promise<any[]> {
  return (await ok(call, 'GET', `/workflows/${wf}/events${category ? `?category=${category}` : ''}`)).items;
}

/** A started workflow: run_id bumped to 1 and initialized. */
export async function start(call: Api, wf: string): Promise<void> {
  await bumpRun(call, wf);
  await ok(call, 'POST', `/workflows/${wf}/initialize_jobs`);
}

/** Run every ready job (in key order) until none is left; returns the names run, in order. */
export async function drain(call: Api, wf: string, node: string, rcOf: (name: string) => number = () => 0): Promise<string[]> {
  const ran: string[] = [];
  for (let round = 0; round < 1000; round++) {
    const ready = (await ok(call, 'GET', `/workflows/${wf}/jobs?status=ready`)).items;
    if (ready.length === 0) break;
    for (const j of ready) {
      await runJob(call, wf, j._key, node, rcOf(j.name));
      ran.push(j.name);
    }
  }
  return ran;
}

/** Poll until `check` returns a truthy value (or fail after `timeoutMs`). */
export async function waitFor<T>(check: () => Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export { api };
