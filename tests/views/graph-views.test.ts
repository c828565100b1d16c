import { instance } from '@viz-js/viz';
import { beforeAll, describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

const viz = await instance();
const srv = testServerForSuite();
const call = bind(srv);
let wf: string;
let ids: Record<string, string>;
let keys: Record<string, string>;

beforeAll(async () => {
  ({ wf, ids, keys } = await buildWorkflow(call, {
    files: { 'input file.csv': { path: 'in.csv' }, 'say "hi".txt': { path: 'hi.txt' }, unused: { path: 'unused' } },
    user_data: { 'my data': { data: { a: 1 } }, lonely: {} },
    jobs: {
      'first job': { needs: ['input file.csv'], produces: ['say "hi".txt'], stores: ['my data'] },
      'second "quoted" job': { needs: ['say "hi".txt'], consumes: ['my data'], after: ['first job'] },
      'back\\slash {x}': { after: ['first job'] },
    },
  }));
});

interface VizJson {
  objects?: { name: string; label?: string }[];
  edges?: { tail: number; head: number; label?: string }[];
}

async function graph(name: string): Promise<VizJson> {
  const body = await ok(call, 'GET', `/workflows/${wf}/dot_graph/${name}`);
  expect(typeof body.graph).toBe('string');
  const r = viz.render(body.graph, { format: 'json' });
  expect(r.status, `${body.graph}\n${JSON.stringify(r.errors)}`).toBe('success');
  return JSON.parse(r.output ?? '{}') as VizJson;
}

const edgeList = (g: VizJson) =>
  (g.edges ?? []).map((e) => `${g.objects?.[e.tail]?.name} -> ${g.objects?.[e.head]?.name} ${e.label}`).sort();

describe('dot_graph', () => {
  it('job_job_dependencies: every job, the blocks edges, valid DOT with awkward names', async () => {
    const g = await graph('job_job_dependencies');
    expect(g.objects?.map((o) => o.label)).toEqual(['first job', 'second "quoted" job', 'back\\\\slash {x}']);
    expect(edgeList(g)).toEqual(
      [`${ids['jobs:first job']} -> ${ids['jobs:second "quoted" job']} blocks`, `${ids['jobs:first job']} -> ${ids['jobs:back\\slash {x}']} blocks`].sort(),
    );
  });

  it('job_file_dependencies: the jobs plus only the files an edge touches', async () => {
    const g = await graph('job_file_dependencies');
    const labels = g.objects?.map((o) => o.label) ?? [];
    expect(labels).toContain('input file.csv');
    expect(labels).toContain('say "hi".txt');
    expect(labels).not.toContain('unused');
    expect(g.objects).toHaveLength(5);
    expect(edgeList(g)).toEqual(
      [
        `${ids['jobs:first job']} -> ${ids['files:say "hi".txt']} produces`,
        `${ids['jobs:first job']} -> ${ids['files:input file.csv']} needs`,
        `${ids['jobs:second "quoted" job']} -> ${ids['files:say "hi".txt']} needs`,
      ].sort(),
    );
  });

  it('job_user_data_dependencies: stores and consumes edges and the user data they touch', async () => {
    const g = await graph('job_user_data_dependencies');
    expect(g.objects?.map((o) => o.label)).toContain('my data');
    expect(g.objects?.map((o) => o.label)).not.toContain('lonely');
    expect(edgeList(g)).toEqual(
      [`${ids['jobs:first job']} -> ${ids['user_data:my data']} stores`, `${ids['jobs:second "quoted" job']} -> ${ids['user_data:my data']} consumes`].sort(),
    );
  });

  it('an unknown graph name is 400 naming the supported ones; an unknown workflow is 404', async () => {
    const res = await call('GET', `/workflows/${wf}/dot_graph/jobs`);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/job_job_dependencies/);
    expect(res.body.error.details[0].path).toEqual(['name']);
    expect((await call('GET', `/workflows/987654321/dot_graph/job_job_dependencies`)).status).toBe(404);
  });
});

describe('joins', () => {
  it('outbound: {from: base, to: neighbour, edge} per edge; bases without edges give no row', async () => {
    const res = await ok(call, 'POST', `/workflows/${wf}/join_by_outbound_edge/jobs/needs`, {});
    const rows = res.items.map((r: any) => `${r.from.name} -> ${r.to.name} (${r.edge._from === r.from._id && r.edge._to === r.to._id})`);
    expect(rows).toEqual(['first job -> input file.csv (true)', 'second "quoted" job -> say "hi".txt (true)']);
    expect(res).toMatchObject({ count: 2, total_count: 3, skip: 0, has_more: false });
  });

  it('inbound: {from: neighbour, to: base}; the body filters the base documents', async () => {
    const res = await ok(call, 'POST', `/workflows/${wf}/join_by_inbound_edge/files/needs`, { name: 'say "hi".txt' });
    expect(res.items.map((r: any) => `${r.from.name} -> ${r.to.name}`)).toEqual(['second "quoted" job -> say "hi".txt']);
    expect(res.total_count).toBe(1);
    const all = await ok(call, 'POST', `/workflows/${wf}/join_by_inbound_edge/jobs/blocks`);
    expect(all.items.map((r: any) => `${r.from.name} -> ${r.to.name}`)).toEqual(['first job -> second "quoted" job', 'first job -> back\\slash {x}']);
  });

  it('skip and limit page over the base documents, several edges of one base stay together', async () => {
    const p0 = await ok(call, 'POST', `/workflows/${wf}/join_by_outbound_edge/jobs/blocks?limit=1`, {});
    expect(p0.items.map((r: any) => r.to.name)).toEqual(['second "quoted" job', 'back\\slash {x}']);
    expect(p0).toMatchObject({ skip: 0, count: 2, total_count: 3, has_more: true });
    const p1 = await ok(call, 'POST', `/workflows/${wf}/join_by_outbound_edge/jobs/blocks?skip=1&limit=1`, {});
    expect(p1.items).toEqual([]);
    expect(p1).toMatchObject({ skip: 1, has_more: true });
    const p2 = await ok(call, 'POST', `/workflows/${wf}/join_by_outbound_edge/jobs/blocks?skip=2&limit=1`, {});
    expect(p2.has_more).toBe(false);
    const byKey = await ok(call, 'POST', `/workflows/${wf}/join_by_outbound_edge/jobs/produces?collection_key=${keys['first job']}`);
    expect(byKey.items.map((r: any) => r.to.name)).toEqual(['say "hi".txt']);
    const byName = await ok(call, 'POST', `/workflows/${wf}/join_by_outbound_edge/jobs/consumes?collection_name=${encodeURIComponent('second "quoted" job')}`);
    expect(byName.items.map((r: any) => r.to.name)).toEqual(['my data']);
  });

  it('rejects an unknown collection or edge (404) and an edge that does not touch the collection (400)', async () => {
    const c = await call('POST', `/workflows/${wf}/join_by_outbound_edge/nope/needs`, {});
    expect(c.status).toBe(404);
    expect(c.body.error.code).toBe('UNKNOWN_COLLECTION');
    const e = await call('POST', `/workflows/${wf}/join_by_outbound_edge/jobs/nope`, {});
    expect(e.status).toBe(404);
    const wrong = await call('POST', `/workflows/${wf}/join_by_outbound_edge/files/needs`, {});
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.details[0].path).toEqual(['collection']);
    const badField = await call('POST', `/workflows/${wf}/join_by_outbound_edge/jobs/needs`, { 'a b': 1 });
    expect(badField.status).toBe(400);
    expect(badField.body.error.details[0].path).toEqual(['a b']);
  });
});
