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
