/**
 * Specifications out of stored workflows: GET /workflow_specifications/{key} (names, not ids;
 * round-trippable through POST /workflow_specifications, see spec-round-trip.test.ts), the
 * example and the template.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

describe('GET /workflow_specifications/{key}', () => {
  it('gives names instead of ids, schedulers as collection/name, keeps invocation_script and supports_termination, no made-up default', async () => {
    const { wf } = await buildWorkflow(call, {
      files: { in: { path: 'in.txt', st_mtime: 12.5 }, out: { path: 'out.txt' } },
      user_data: { cfg: { data: { a: 1 } } },
      resource_requirements: { small: { num_cpus: 2, memory: '2g', runtime: 'PT30M' } },
      local_schedulers: { here: { num_cpus: 4 } },
      slurm_schedulers: { debug: { account: 'acct', nodes: 1, walltime: '01:00:00' } },
      jobs: {
        first: { needs: ['in'], produces: ['out'], rr: 'small', sched: 'slurm_schedulers:debug', invocation_script: 'bash -l', supports_termination: true },
        second: { needs: ['out'], consumes: ['cfg'], cancel_on_blocking_job_failure: false, sched: 'local_schedulers:here' },
        third: { after: ['second'] },
      },
    });
    const spec = await ok(call, 'GET', `/workflow_specifications/${wf}`);
    expect(spec).toMatchObject({ name: 'views', user: 'tester', is_archived: false });
    expect(spec.files).toEqual([{ name: 'in', path: 'in.txt', st_mtime: 12.5 }, { name: 'out', path: 'out.txt' }]);
    expect(spec.user_data).toEqual([{ name: 'cfg', is_ephemeral: false, data: { a: 1 } }]);
    expect(spec.resource_requirements).toEqual([{ name: 'small', num_cpus: 2, num_gpus: 0, num_nodes: 1, memory: '2g', runtime: 'PT30M' }]);
    expect(spec.schedulers.slurm_schedulers).toEqual([expect.objectContaining({ name: 'debug', account: 'acct', nodes: 1 })]);
    expect(spec.schedulers.local_schedulers).toEqual([expect.objectContaining({ name: 'here', num_cpus: 4 })]);
    expect(spec.schedulers.aws_schedulers).toEqual([]);
    expect(spec.jobs).toEqual([
      {
        name: 'first', command: 'run first', invocation_script: 'bash -l', cancel_on_blocking_job_failure: true, supports_termination: true,
        scheduler: 'slurm_schedulers/debug', resource_requirements: 'small',
        input_files: ['in'], output_files: ['out'], input_user_data: [], output_user_data: [], blocked_by: [],
      },
      {
        name: 'second', command: 'run second', cancel_on_blocking_job_failure: false, supports_termination: false, scheduler: 'local_schedulers/here',
        input_files: ['out'], output_files: [], input_user_data: ['cfg'], output_user_data: [], blocked_by: [],
      },
      {
        name: 'third', command: 'run third', cancel_on_blocking_job_failure: true, supports_termination: false,
        input_files: [], output_files: [], input_user_data: [], output_user_data: [], blocked_by: ['second'],
      },
    ]);
    expect(spec.config.compute_node_resource_stats).toMatchObject({ cpu: true, process: false });
    expect(JSON.stringify(spec)).not.toMatch(/"_(key|id|rev)"/);
  });

  it('404s an unknown workflow; a bad key is 400', async () => {
    expect((await call('GET', '/workflow_specifications/123123123')).status).toBe(404);
    expect((await call('GET', '/workflow_specifications/files%2F1')).status).toBe(400);
  });
});

describe('example and template', () => {
  it('the literal paths win over /{key} even when a workflow has that key', async () => {
    await ok(call, 'POST', '/workflows', { _key: 'example', name: 'named like the example' });
    const ex = await ok(call, 'GET', '/workflow_specifications/example');
    expect(ex.name).toBe('example');
    expect(ex.jobs.map((j: { name: string }) => j.name)).toEqual(['work', 'postprocess']);
    const t = await ok(call, 'GET', '/workflow_specifications/template');
    expect(t).toMatchObject({ name: '', user: '', description: '', jobs: [], files: [], user_data: [], resource_requirements: [] });
    expect(t.schedulers).toEqual({ aws_schedulers: [], local_schedulers: [], slurm_schedulers: [] });
    expect(t.config).toMatchObject({ prepare_jobs_sort_method: 'gpus_runtime_memory', compute_node_expiration_buffer_seconds: 120 });
  });

  it('the example references only what it declares', async () => {
    const ex = await ok(call, 'GET', '/workflow_specifications/example');
    const files = new Set(ex.files.map((f: { name: string }) => f.name));
    const rrs = new Set(ex.resource_requirements.map((r: { name: string }) => r.name));
    for (const j of ex.jobs) {
      for (const f of [...j.input_files, ...j.output_files]) expect(files.has(f), f).toBe(true);
      expect(rrs.has(j.resource_requirements)).toBe(true);
    }
  });
});
