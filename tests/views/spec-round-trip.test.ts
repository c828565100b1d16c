/**
 * Round trip of specifications: POST → GET → POST gives an equal workflow; the example and the
 * template are accepted by POST.
 */
import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, diamondSpec, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

/** A spec with the parts whose order carries no meaning sorted, for comparisons. */
function normalise(spec: any): any {
  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const s = structuredClone(spec);
  for (const k of ['files', 'user_data', 'resource_requirements', 'jobs']) s[k] = [...(s[k] ?? [])].sort(byName);
  for (const k of Object.keys(s.schedulers ?? {})) s.schedulers[k] = [...s.schedulers[k]].sort(byName);
  for (const j of s.jobs) for (const f of ['input_files', 'output_files', 'input_user_data', 'output_user_data', 'blocked_by']) j[f] = [...(j[f] ?? [])].sort();
  return s;
}

/** The round trip needs POST /workflow_specifications (the lifecycle half of the engine). */
describe('round trip through POST /workflow_specifications', () => {
  async function post(spec: unknown): Promise<string> {
    return (await ok(call, 'POST', '/workflow_specifications', spec))._key;
  }

  it('POST → GET → POST gives an equal workflow (diamond with schedulers and user data)', async () => {
    const spec = diamondSpec();
    (spec as any).schedulers = { slurm_schedulers: [{ name: 'debug', account: 'acct', nodes: 1, walltime: '01:00:00' }], local_schedulers: [], aws_schedulers: [] };
    (spec as any).jobs[3].scheduler = 'slurm_schedulers/debug';
    (spec as any).jobs[3].invocation_script = 'bash -c';
    (spec as any).jobs[2].supports_termination = true;
    (spec as any).jobs[1].blocked_by = ['work2'];
    const w1 = await post(spec);
    const s1 = await ok(call, 'GET', `/workflow_specifications/${w1}`);
    const w2 = await post(s1);
    const s2 = await ok(call, 'GET', `/workflow_specifications/${w2}`);
    expect(normalise(s2)).toEqual(normalise(s1));
    const j1 = s1.jobs.find((j: { name: string }) => j.name === 'postprocess');
    expect(j1).toMatchObject({ scheduler: 'slurm_schedulers/debug', invocation_script: 'bash -c', resource_requirements: 'small' });
    expect(s1.jobs.find((j: { name: string }) => j.name === 'work1').blocked_by).toEqual(['work2']);
    // the same graph: initialize both and compare the derived blocks edges by names
    for (const w of [w1, w2]) await ok(call, 'POST', `/workflows/${w}/initialize_jobs`);
    const blocks = async (w: string) => {
      const names = new Map<string, string>((await ok(call, 'GET', `/workflows/${w}/jobs`)).items.map((j: any) => [j._id, j.name]));
      return (await ok(call, 'GET', `/workflows/${w}/edges/blocks`)).items.map((e: any) => `${names.get(e._from)}->${names.get(e._to)}`).sort();
    };
    expect(await blocks(w2)).toEqual(await blocks(w1));
    expect((await ok(call, 'GET', `/workflow_specifications/${w1}`)).jobs).toEqual(s1.jobs);
  });

  it('the example and the template are accepted by POST', async () => {
    const ex = await post(await ok(call, 'GET', '/workflow_specifications/example'));
    expect((await ok(call, 'GET', `/workflows/${ex}/jobs`)).total_count).toBe(2);
    const t = await ok(call, 'GET', '/workflow_specifications/template');
    await post({ ...t, name: 'from template' });
  });
});
