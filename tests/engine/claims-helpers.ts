/**
 * Helpers of the claims suites: build a workflow from a spec over HTTP, initialize it, claim.
 * Everything goes through the real server (startTestServer) and its SQLite file.
 */
import { expect } from 'vitest';
import { api } from '../helpers/server.js';

export type Json = Record<string, any>;

/** POST a spec, then initialize_jobs; returns the workflow key. */
export async function createInitialized(base: string, spec: Json): Promise<string> {
  const created = await api(base, 'POST', '/workflow_specifications', spec);
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const key = created.body._key as string;
  const init = await api(base, 'POST', `/workflows/${key}/initialize_jobs`);
  expect(init.status, JSON.stringify(init.body)).toBe(200);
  return key;
}

/** The resources of the node createWithNode adds, as a claim body (8 CPUs, 16 GB, no GPU, one node). */
export const NODE_RESOURCES = { num_cpus: 8, memory_gb: 16, num_gpus: 0, num_nodes: 1, time_limit: null };

/**
 * createInitialized, then a compute node (host-a, with NODE_RESOURCES) to claim and start with:
 * the workflow key, the node's key and id, and the workflow's run id.
 */
export async function createWithNode(base: string, spec: Json): Promise<{ wf: string; node: string; nodeId: string; run: number }> {
  const wf = await createInitialized(base, spec);
  const node = await api(base, 'POST', `/workflows/${wf}/compute_nodes`, { hostname: 'host-a', pid: 1, start_time: 't', resources: { num_cpus: 8, memory_gb: 16 } });
  expect(node.status, JSON.stringify(node.body)).toBe(200);
  const status = await api(base, 'GET', `/workflows/${wf}/status`);
  expect(status.status, JSON.stringify(status.body)).toBe(200);
  return { wf, node: node.body._key, nodeId: node.body._id, run: status.body.run_id as number };
}

/** `count` jobs named `${prefix}${i}` sharing one resource requirements name. */
export function jobs(prefix: string, count: number, extra: Json = {}): Json[] {
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}${i}`, command: 'true', ...extra }));
}

/** POST prepare_jobs_for_submission and expect 200. */
export async function claim(base: string, wf: string, resources: Json, query = ''): Promise<{ jobs: Json[]; reason: string }> {
  const res = await api(base, 'POST', `/workflows/${wf}/prepare_jobs_for_submission${query ? `?${query}` : ''}`, resources);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** Statuses of every job of the workflow, by name. */
export async function statusesByName(base: string, wf: string): Promise<Map<string, string>> {
  const res = await api(base, 'GET', `/workflows/${wf}/jobs`);
  expect(res.status).toBe(200);
  return new Map((res.body.items as Json[]).map((j) => [j.name as string, j.status as string]));
}
