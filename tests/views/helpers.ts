/**
 * Helpers for the view tests: build workflows through the generic document API (no engine
 * endpoints needed) and check responses.
 */
import { expect } from 'vitest';
import { api } from '../helpers/server.js';

export type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/**
 * An API caller bound to a base URL, or to a test server's (read at each call, so it can be bound
 * before testServerForSuite's server has started).
 */
export function bind(base: string | { readonly baseUrl: string }): Api {
  return (method, path, body) => api(typeof base === 'string' ? base : base.baseUrl, method, path, body);
}

/** Call and expect 200; returns the body. */
export async function ok(call: Api, method: string, path: string, body?: unknown): Promise<any> {
  const res = await call(method, path, body);
  expect(res.status, `${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`).toBe(200);
  return res.body;
}

/** A small workflow built with the document API. Returns the workflow key and the documents by name. */
export async function buildWorkflow(
  call: Api,
  spec: {
    files?: Record<string, Record<string, unknown>>;
    user_data?: Record<string, Record<string, unknown>>;
    resource_requirements?: Record<string, Record<string, unknown>>;
    local_schedulers?: Record<string, Record<string, unknown>>;
    slurm_schedulers?: Record<string, Record<string, unknown>>;
    jobs: Record<string, Record<string, unknown> & { needs?: string[]; produces?: string[]; consumes?: string[]; stores?: string[]; after?: string[]; rr?: string; sched?: string }>;
  },
  name = 'views',
): Promise<{ wf: string; ids: Record<string, string>; keys: Record<string, string> }> {
  const wf = (await ok(call, 'POST', '/workflows', { name, user: 'tester' }))._key as string;
  const ids: Record<string, string> = {};
  const keys: Record<string, string> = {};
  for (const coll of ['files', 'user_data', 'resource_requirements', 'local_schedulers', 'slurm_schedulers'] as const) {
    for (const [n, body] of Object.entries(spec[coll] ?? {})) {
      const doc = await ok(call, 'POST', `/workflows/${wf}/${coll}`, { name: n, ...body });
      ids[`${coll}:${n}`] = doc._id;
      keys[`${coll}:${n}`] = doc._key;
    }
  }
  for (const [n, j] of Object.entries(spec.jobs)) {
    const { needs, produces, consumes, stores, after, rr, sched, ...rest } = j;
    const body: Record<string, unknown> = { name: n, command: `run ${n}`, ...rest };
    if (needs) body.input_files = needs.map((f) => ids[`files:${f}`]);
    if (produces) body.output_files = produces.map((f) => ids[`files:${f}`]);
    if (consumes) body.input_user_data = consumes.map((u) => ids[`user_data:${u}`]);
    if (stores) body.output_user_data = stores.map((u) => ids[`user_data:${u}`]);
    if (after) body.blocked_by = after.map((b) => ids[`jobs:${b}`]);
    if (rr) body.resource_requirements = ids[`resource_requirements:${rr}`];
    if (sched) body.scheduler = ids[sched];
    const doc = await ok(call, 'POST', `/workflows/${wf}/jobs`, body);
    ids[`jobs:${n}`] = doc._id;
    keys[n] = doc._key;
  }
  return { wf, ids, keys };
}

/** The diamond of the reference (section 11.4, corrected: file names and file5 declared). */
export function diamondSpec(): Record<string, unknown> {
  return {
    name: 'diamond_workflow',
    description: 'Demonstrate a workflow with job-file dependencies.',
    user: 'tester',
    files: [
      { name: 'preprocess', path: 'tests/scripts/preprocess.py' },
      { name: 'work', path: 'tests/scripts/work.py' },
      { name: 'postprocess', path: 'tests/scripts/postprocess.py' },
      { name: 'inputs', path: 'output/inputs.json' },
      { name: 'file1', path: 'output/f1.json' },
      { name: 'file2', path: 'output/f2.json' },
      { name: 'file3', path: 'output/f3.json' },
      { name: 'file4', path: 'output/f4.json' },
      { name: 'file5', path: 'output/f5.json' },
    ],
    resource_requirements: [
      { name: 'small', num_cpus: 1, num_gpus: 0, num_nodes: 1, memory: '1g', runtime: 'P0DT5M' },
      { name: 'medium', num_cpus: 4, num_gpus: 0, num_nodes: 1, memory: '8g', runtime: 'P0DT10M' },
      { name: 'large', num_cpus: 8, num_gpus: 0, num_nodes: 1, memory: '16g', runtime: 'P0DT20M' },
    ],
    user_data: [{ name: 'my_val', is_ephemeral: false, data: { key1: 'val1' } }],
    jobs: [
      {
        name: 'preprocess',
        command: 'python tests/scripts/preprocess.py -i output/inputs.json -o output/f1.json -o output/f2.json',
        resource_requirements: 'small',
        input_files: ['preprocess', 'inputs'],
        output_files: ['file1', 'file2'],
      },
      {
        name: 'work1',
        command: 'python tests/scripts/work.py -i output/f1.json -o output/f3.json',
        resource_requirements: 'medium',
        input_user_data: ['my_val'],
        input_files: ['work', 'file1'],
        output_files: ['file3'],
      },
      {
        name: 'work2',
        command: 'python tests/scripts/work.py -i output/f2.json -o output/f4.json',
        resource_requirements: 'large',
        input_files: ['work', 'file2'],
        output_files: ['file4'],
      },
      {
        name: 'postprocess',
        command: 'python tests/scripts/postprocess.py -i output/f3.json -i output/f4.json -o output/f5.json',
        resource_requirements: 'small',
        input_files: ['postprocess', 'file3', 'file4'],
        output_files: ['file5'],
      },
    ],
    config: {
      compute_node_resource_stats: {
        cpu: true, disk: false, memory: true, network: false, process: true,
        include_child_processes: true, recurse_child_processes: false, monitor_type: 'aggregation', make_plots: true, interval: 10,
      },
    },
  };
}
