/**
 * What the ArangoDB adapter sends, checked through the real arangojs client talking HTTP to a
 * recording listener on 127.0.0.1 (tests/arango/fake-arango.ts). These tests always run; the
 * behaviour against a real ArangoDB is the conformance suite in arango-conformance.test.ts.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ArangoGraphStore, type ArangoGraphStoreOptions } from '../../graph/store/arango-store.js';
import { collectionPlan, edgeDefinitions, indexPlan } from '../../graph/store/arango-schema.js';
import { EDGE_COLLECTION_NAMES, GLOBAL_COLLECTIONS, WORKFLOW_COLLECTION_NAMES } from '../../graph/model.js';
import { WeftError } from '../../graph/errors.js';
import { startFakeArango, type FakeArango, type FakeArangoOptions, type QueryCall } from './fake-arango.js';

let fake: FakeArango | undefined;
let store: ArangoGraphStore | undefined;

afterEach(async () => {
  await store?.close();
  await fake?.close();
  store = undefined;
  fake = undefined;
});

const ALL = [...GLOBAL_COLLECTIONS, ...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES];
const EXISTING = Object.fromEntries(ALL.map((n) => [n, (EDGE_COLLECTION_NAMES as readonly string[]).includes(n) ? 3 : 2])) as Record<string, 2 | 3>;

async function openStore(opts: FakeArangoOptions = {}, extra: Partial<ArangoGraphStoreOptions> = {}): Promise<{ fake: FakeArango; store: ArangoGraphStore }> {
  fake = await startFakeArango(opts);
  store = new ArangoGraphStore({
    url: fake.url,
    database: 'weft',
    username: 'weft',
    password: 's3cret',
    connectRetries: 0,
    retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...extra,
  });
  await store.open();
  return { fake, store };
}

/** A ready store whose schema exists already; `onQuery` answers its AQL. */
async function readyStore(onQuery: FakeArangoOptions['onQuery']): Promise<{ fake: FakeArango; store: ArangoGraphStore }> {
  const r = await openStore({ databases: ['weft'], collections: EXISTING, graph: edgeDefinitions() as never, onQuery });
  r.fake.queries.length = 0;
  return r;
}

/** Every bind variable is used by the query and every @name in it is bound. */
function expectBound(call: QueryCall): void {
  const used = new Set([...call.query.matchAll(/@(@?[A-Za-z0-9_]+)/g)].map((m) => m[1]!));
  expect([...used].sort()).toEqual(Object.keys(call.bindVars).sort());
}

function expectNotInText(call: QueryCall, values: string[]): void {
  for (const v of values) expect(call.query).not.toContain(v);
}

function collectionBinds(call: QueryCall): string[] {
  return Object.entries(call.bindVars)
    .filter(([k]) => k.startsWith('@'))
    .map(([, v]) => v as string);
}

async function expectCode(p: Promise<unknown>, code: string): Promise<WeftError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    expect((err as WeftError).code).toBe(code);
    return err as WeftError;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

describe('arango store: what open() creates', () => {
  it('creates the database, every collection, the indexes and workflow_graph on an empty single server', async () => {
    const { fake } = await openStore();
    const auth = fake.requests[0]!.headers.authorization;
    expect(auth).toBe(`Basic ${Buffer.from('weft:s3cret').toString('base64')}`);
    const dbCreate = fake.requests.find((r) => r.method === 'POST' && r.path === '/_db/_system/_api/database');
    expect(dbCreate?.body.name).toBe('weft');

    const created = fake.requests.filter((r) => r.method === 'POST' && r.path === '/_db/weft/_api/collection').map((r) => r.body);
    expect(created.map((b) => b.name).sort()).toEqual([...ALL].sort());
    for (const b of created) {
      expect(b.type ?? 2).toBe((EDGE_COLLECTION_NAMES as readonly string[]).includes(b.name) ? 3 : 2);
      expect(b).not.toHaveProperty('shardKeys');
    }

    const indexes = fake.requests.filter((r) => r.path === '/_db/weft/_api/index').map((r) => ({ c: r.search.get('collection'), ...r.body }));
    expect(indexes).toHaveLength(indexPlan().length);
    expect(indexes.every((i) => i.type === 'persistent')).toBe(true);
    const has = (c: string, fields: string[]) => indexes.some((i) => i.c === c && JSON.stringify(i.fields) === JSON.stringify(fields));
    expect(has('jobs', ['workflow', 'status'])).toBe(true);
    expect(has('jobs', ['workflow', 'name'])).toBe(true);
    expect(has('jobs', ['workflow', 'weft_seq'])).toBe(true);
    expect(has('jobs', ['workflow', 'status', 'internal.scheduler_config_id'])).toBe(true);
    expect(has('blocks', ['workflow', 'weft_seq'])).toBe(true);
    expect(has('results', ['workflow', 'job_key', 'run_id'])).toBe(true);
    expect(has('workflows', ['weft_seq'])).toBe(true);

    const graph = fake.requests.find((r) => r.method === 'POST' && r.path === '/_db/weft/_api/gharial');
    expect(graph?.body.name).toBe('workflow_graph');
    expect(graph?.body.edgeDefinitions).toEqual(edgeDefinitions());
    expect(graph?.body.edgeDefinitions.find((d: { collection: string }) => d.collection === 'scheduled_bys').to).toEqual(['local_schedulers', 'slurm_schedulers', 'aws_schedulers']);
  });

  it('shards per-workflow collections by workflow on a cluster, all laid out like jobs', async () => {
    const { fake } = await openStore({ role: 'COORDINATOR', databases: ['weft'] }, { cluster: { numberOfShards: 6, replicationFactor: 2 } });
    const created = new Map(fake.requests.filter((r) => r.method === 'POST' && r.path === '/_db/weft/_api/collection').map((r) => [r.body.name as string, r.body]));
    const order = [...created.keys()];
    expect(created.get('jobs')).toMatchObject({ shardKeys: ['workflow'], numberOfShards: 6, replicationFactor: 2 });
    for (const name of [...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES].filter((n) => n !== 'jobs')) {
      expect(created.get(name)).toMatchObject({ shardKeys: ['workflow'], distributeShardsLike: 'jobs' });
      expect(order.indexOf(name)).toBeGreaterThan(order.indexOf('jobs'));
    }
    for (const name of GLOBAL_COLLECTIONS) {
      expect(created.get(name)).not.toHaveProperty('shardKeys');
      expect(created.get(name)).toMatchObject({ replicationFactor: 2 });
    }
    expect(fake.requests.some((r) => r.path === '/_db/_system/_api/database')).toBe(false);
  });

  it('leaves what exists, widens an old graph, and sends a JWT as a bearer token', async () => {
    const partial = edgeDefinitions().filter((d) => d.collection !== 'process_used') as { collection: string; from: string[]; to: string[] }[];
    const scheduled = partial.find((d) => d.collection === 'scheduled_bys')!;
    scheduled.to = ['local_schedulers', 'custom_schedulers'];
    const { fake } = await openStore({ databases: ['weft'], collections: EXISTING, graph: partial, auth: { bearer: 'tok.en' } }, { username: undefined, password: undefined, token: 'tok.en' });
    expect(fake.requests.every((r) => r.headers.authorization === 'Bearer tok.en')).toBe(true);
    expect(fake.requests.some((r) => r.method === 'POST' && (r.path.endsWith('/_api/collection') || r.path.endsWith('/_api/database') || r.path.endsWith('/_api/gharial')))).toBe(false);
    const added = fake.requests.filter((r) => r.method === 'POST' && r.path === '/_db/weft/_api/gharial/workflow_graph/edge');
    expect(added.map((r) => r.body.collection)).toEqual(['process_used']);
    const replaced = fake.requests.filter((r) => r.method === 'PUT' && r.path.startsWith('/_db/weft/_api/gharial/workflow_graph/edge/'));
    expect(replaced).toHaveLength(1);
    expect(replaced[0]!.body.to.sort()).toEqual(['aws_schedulers', 'custom_schedulers', 'local_schedulers', 'slurm_schedulers']);
  });

  it('the README cluster script creates exactly the collections of the model, with the right types', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const script = /```js\n(\/\/ arangosh[\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const names = (line: RegExp) => [...script.matchAll(line)].flatMap((m) => [...m[1]!.matchAll(/'([a-z_]+)'/g)].map((x) => x[1]!));
    const docs = [...names(/for \(const n of \[([^\]]*)\]\)\s*db\._create\(n, opts\)/g), 'jobs'];
    const edges = names(/for \(const n of \[([^\]]*)\]\)\s*db\._createEdgeCollection/g);
    const globals = names(/for \(const n of \[([^\]]*)\]\) db\._create\(n, \{ replicationFactor/g);
    expect(docs.sort()).toEqual([...WORKFLOW_COLLECTION_NAMES].sort());
    expect(edges.sort()).toEqual([...EDGE_COLLECTION_NAMES].sort());
    expect(globals.sort()).toEqual([...GLOBAL_COLLECTIONS].sort());
  });

  it('the collection plan covers the model exactly once', () => {
    const names = collectionPlan().map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual([...ALL].sort());
  });
});

describe('arango store: clear errors at open', () => {
  it('names the URL and the cause when nothing listens', async () => {
    const probe = await startFakeArango();
    const url = probe.url;
    await probe.close();
    const s = new ArangoGraphStore({ url, database: 'weft', connectRetries: 0 });
    const err = await expectCode(s.open(), 'STORE_UNAVAILABLE');
    expect(err.message).toContain(url);
    expect(err.message).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('says the credentials were refused, without the password, and hides credentials in the URL', async () => {
    fake = await startFakeArango({ databases: ['weft'], auth: { basic: 'weft:right' } });
    const withCreds = fake.url.replace('http://', 'http://weft:leaked@');
    const s = new ArangoGraphStore({ url: withCreds, database: 'weft', username: 'weft', password: 'Pa55-bad', connectRetries: 0 });
    const err = await expectCode(s.open(), 'STORE_UNAVAILABLE');
    // Credentials in the URL are used when no user is given.
    const fromUrl = new ArangoGraphStore({ url: fake.url.replace('http://', 'http://weft:right@'), database: 'weft', connectRetries: 0 });
    await fromUrl.open();
    await fromUrl.close();
    expect(err.message).toContain('refused the credentials of user "weft"');
    expect(err.message).toContain(fake.url);
    expect(err.message).not.toContain('Pa55-bad');
    expect(err.message).not.toContain('leaked');
  });

  it('reports a missing database when creating it is off or forbidden', async () => {
    fake = await startFakeArango({ createDatabaseStatus: 403 });
    const off = new ArangoGraphStore({ url: fake.url, database: 'nope', createDatabase: false, connectRetries: 0 });
    expect((await expectCode(off.open(), 'STORE_UNAVAILABLE')).message).toContain('has no database "nope"');
    const forbidden = new ArangoGraphStore({ url: fake.url, database: 'nope', connectRetries: 0 });
    const err = await expectCode(forbidden.open(), 'STORE_UNAVAILABLE');
    expect(err.message).toContain('could not be created');
    expect(err.message).toContain(fake.url);
  });
});

describe('arango store: the AQL and bind variables of each operation', () => {
  it('insert binds the whole document, adds workflow and weft_seq, and strips them on the way out', async () => {
    const { fake, store } = await readyStore((c) => [{ ...(Object.values(c.bindVars).find((v) => typeof v === 'object') as object), _key: '7', _id: 'jobs/7', _rev: 'r1' }]);
    const doc = await store.insert('jobs', 'wf1', { name: 'evil" RETURN 1 //', command: 'rm -rf /', _rev: 'ignored', _id: 'x/y' });
    const call = fake.queries[0]!;
    expectBound(call);
    expectNotInText(call, ['evil', 'rm -rf', 'wf1']);
    expect(call.query).toMatch(/^INSERT @value\d INTO @@value\d RETURN NEW$/);
    expect(collectionBinds(call)).toEqual(['jobs']);
    const body = Object.values(call.bindVars).find((v) => typeof v === 'object') as Record<string, unknown>;
    expect(body).toMatchObject({ name: 'evil" RETURN 1 //', command: 'rm -rf /', workflow: 'wf1' });
    expect(typeof body.weft_seq).toBe('number');
    expect(body).not.toHaveProperty('_rev');
    expect(body).not.toHaveProperty('_id');
    expect(doc).toEqual({ _key: '7', _id: 'jobs/7', _rev: 'r1', name: 'evil" RETURN 1 //', command: 'rm -rf /' });
  });

  it('insertMany keeps input order in weft_seq and sends chunks of 1000 inside one stream transaction', async () => {
    const { fake, store } = await readyStore((c) => (c.bindVars.value0 as object[]).map((d, i) => ({ ...d, _key: `${i}`, _id: `files/${i}`, _rev: 'r' })));
    const docs = await store.insertMany('files', 'wf1', Array.from({ length: 2500 }, (_, i) => ({ path: `p${i}` })));
    expect(docs).toHaveLength(2500);
    expect(fake.queries).toHaveLength(3);
    const trx = new Set(fake.queries.map((q) => q.trxId));
    expect(trx.size).toBe(1);
    expect([...trx][0]).toMatch(/^trx/);
    const seqs = fake.queries.flatMap((q) => (q.bindVars.value0 as { weft_seq: number }[]).map((d) => d.weft_seq));
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
    expect(fake.requests.some((r) => r.method === 'PUT' && r.path.startsWith('/_db/weft/_api/transaction/'))).toBe(true);
  });

  it('find translates dotted paths to bind parameters, sorts with weft_seq last, pages and asks for fullCount', async () => {
    const { fake, store } = await readyStore(() => ({ rows: [{ _key: '1', _id: 'jobs/1', _rev: 'r', name: 'a', workflow: 'wf1', weft_seq: 3 }], fullCount: 42 }));
    const res = await store.find('jobs', 'wf1', {
      where: [
        { field: 'internal.num_gpus', op: '>=', value: 1 },
        { field: 'status', op: 'in', value: ['ready', 'blocked'] },
        { field: 'name', op: '!=', value: "x' || true" },
        { field: 'scheduler', op: '==', value: null },
      ],
      sort: [{ field: 'internal.runtime_seconds', direction: 'desc' }, { field: 'name' }],
      skip: 10,
      limit: 5,
      withTotal: true,
    });
    expect(res.totalCount).toBe(42);
    expect(res.items).toEqual([{ _key: '1', _id: 'jobs/1', _rev: 'r', name: 'a' }]);
    const call = fake.queries[0]!;
    expectBound(call);
    expectNotInText(call, ['num_gpus', 'runtime_seconds', 'internal', 'status', 'ready', 'wf1', "x' || true", 'scheduler']);
    expect(call.query).toMatch(/d\[@value\d+\]\[@value\d+\] != null AND d\[@value\d+\]\[@value\d+\] >= @value\d+/);
    expect(call.query).toMatch(/SORT d\[@value\d+\]\[@value\d+\] DESC, d\[@value\d+\] ASC, d\.weft_seq ASC LIMIT @value\d+, @value\d+ RETURN d$/);
    const values = Object.values(call.bindVars);
    for (const v of ['internal', 'num_gpus', 'runtime_seconds', 'status', 'name', 'scheduler', 'wf1', 1, 10, 5, "x' || true"]) expect(values).toContainEqual(v);
    expect(values).toContainEqual(['ready', 'blocked']);
    expect(call.options.fullCount).toBe(true);
  });

  it('rejects a field path that could inject AQL before sending anything', async () => {
    const { fake, store } = await readyStore(() => []);
    await expectCode(store.find('jobs', 'wf1', { where: { 'name RETURN 1': 'x' } }), 'VALIDATION_FAILED');
    await expectCode(store.find('jobs', 'wf1', { sort: [{ field: 'a.b]' }] }), 'VALIDATION_FAILED');
    await expectCode(store.count('jobs', 'wf1', [{ field: '', op: '==', value: 1 }]), 'VALIDATION_FAILED');
    expect(fake.queries).toHaveLength(0);
  });

  it('empty in / not_in lists short-circuit; count and global collections bind a null workflow', async () => {
    const { fake, store } = await readyStore(() => [3]);
    expect(await store.count('workflows', null, [{ field: 'user', op: 'in', value: [] }, { field: 'name', op: 'not_in', value: [] }])).toBe(3);
    const call = fake.queries[0]!;
    expectBound(call);
    expect(call.query).toContain('FILTER false FILTER true');
    expect(Object.values(call.bindVars)).toContain(null);
    expect(collectionBinds(call)).toEqual(['workflows']);
  });

  it('update checks the given _rev in the same query and maps the outcome', async () => {
    let answer: unknown = { found: true, rev: 'r2', doc: { _key: '5', _id: 'jobs/5', _rev: 'r3', status: 'ready', workflow: 'wf1', weft_seq: 1 } };
    const { fake, store } = await readyStore(() => [answer]);
    const u = await store.update('jobs', 'wf1', '5', { status: 'ready', internal: { a: 1 }, gone: undefined, _key: 'other', workflow: 'hijack' }, { rev: 'r2' });
    expect(u).toEqual({ _key: '5', _id: 'jobs/5', _rev: 'r3', status: 'ready' });
    const call = fake.queries[0]!;
    expectBound(call);
    expectNotInText(call, ['r2', 'ready', 'gone', 'hijack', 'wf1']);
    expect(call.query).toContain('REPLACE x WITH MERGE(UNSET(x, @value');
    const values = Object.values(call.bindVars);
    expect(values).toContainEqual({ status: 'ready', internal: { a: 1 } });
    expect(values).toContainEqual(['gone']);
    expect(values).toContain('r2');
    expect(values).toContain('5');
    answer = { found: true, rev: 'r9', doc: null };
    const stale = await expectCode(store.update('jobs', 'wf1', '5', { status: 'done' }, { rev: 'r2' }), 'REVISION_CONFLICT');
    expect(stale.message).toContain('r9');
    answer = { found: false, rev: null, doc: null };
    await expectCode(store.update('jobs', 'wf1', '5', { status: 'done' }), 'DOCUMENT_NOT_FOUND');
    await expectCode(store.replace('jobs', 'wf1', '5', { command: 'x' }), 'DOCUMENT_NOT_FOUND');
    const replaceCall = fake.queries.at(-1)!;
    expect(replaceCall.query).toContain('REPLACE x WITH MERGE(@value');
    expect(Object.values(replaceCall.bindVars)).toContainEqual(['_from', '_to', 'workflow', 'weft_seq']);
  });

  it('updateMany sends one query per round so a key patched twice is applied in order', async () => {
    const { fake, store } = await readyStore((c) => [(c.bindVars.value0 as unknown[]).length]);
    const n = await store.updateMany('jobs', 'wf1', [
      { key: 'a', patch: { n: 1 } },
      { key: 'b', patch: { n: 1 } },
      { key: 'a', patch: { n: 2 } },
    ]);
    expect(n).toBe(3);
    expect(fake.queries).toHaveLength(2);
    expect(new Set(fake.queries.map((q) => q.trxId)).size).toBe(1);
    expect(fake.queries[0]!.bindVars.value0).toEqual([
      { key: 'a', patch: { n: 1 }, unset: [] },
      { key: 'b', patch: { n: 1 }, unset: [] },
    ]);
    expect(fake.queries[1]!.bindVars.value0).toEqual([{ key: 'a', patch: { n: 2 }, unset: [] }]);
  });

  it('removing a vertex removes its edges in every edge collection in the same query; an edge removes only itself', async () => {
    let answer: unknown = { found: true, rev: 'r', removed: 1 };
    const { fake, store } = await readyStore(() => [answer]);
    expect(await store.remove('jobs', 'wf1', '12', { rev: 'r' })).toBe(true);
    const call = fake.queries[0]!;
    expectBound(call);
    expect(collectionBinds(call).sort()).toEqual(['jobs', ...EDGE_COLLECTION_NAMES].sort());
    expect(call.query.match(/REMOVE e IN/g)).toHaveLength(EDGE_COLLECTION_NAMES.length);
    expect(await store.remove('blocks', 'wf1', '3')).toBe(true);
    expect(collectionBinds(fake.queries[1]!)).toEqual(['blocks']);
    answer = { found: true, rev: 'r2', removed: 0 };
    await expectCode(store.remove('files', 'wf1', '4', { rev: 'r' }), 'REVISION_CONFLICT');
    answer = { found: false, rev: null, removed: 0 };
    expect(await store.remove('files', 'wf1', '4')).toBe(false);
  });

  it('removeWhere cascades by id list, or by id prefix when the whole collection of a workflow goes', async () => {
    const { fake, store } = await readyStore(() => [2]);
    expect(await store.removeWhere('jobs', 'wf1', { name: 'a' })).toBe(2);
    expect(await store.removeWhere('files', 'wf1')).toBe(2);
    const [byList, byPrefix] = fake.queries;
    expectBound(byList!);
    expectBound(byPrefix!);
    expect(byList!.query).toContain('FILTER e._from IN removed OR e._to IN removed');
    expect(byPrefix!.query).toContain('STARTS_WITH(e._from, @');
    expect(Object.values(byPrefix!.bindVars)).toContain('files/');
    expectNotInText(byPrefix!, ['files/']);
  });

  it('edges and neighbors are edge-index lookups scoped to the workflow, vertices of other workflows hidden', async () => {
    const { fake, store } = await readyStore((c) =>
      c.query.includes('DOCUMENT(')
        ? [
            { edge: { _key: 'e1', _id: 'blocks/e1', _rev: 'r', _from: 'jobs/1', _to: 'jobs/2', workflow: 'wf1', weft_seq: 1 }, vertex: { _key: '2', _id: 'jobs/2', _rev: 'r', workflow: 'wf1' } },
            { edge: { _key: 'e2', _id: 'blocks/e2', _rev: 'r', _from: 'jobs/1', _to: 'jobs/9', workflow: 'wf1', weft_seq: 2 }, vertex: null },
          ]
        : [],
    );
    expect(await store.edges('blocks', 'wf1', { from: [] })).toEqual([]);
    expect(fake.queries).toHaveLength(0);
    await store.edges('needs', 'wf1', { from: 'jobs/1', to: ['files/2', 'files/3'] });
    const e = fake.queries[0]!;
    expectBound(e);
    expect(e.query).toMatch(/FILTER d\._from IN @value\d FILTER d\._to IN @value\d FILTER d\.workflow == @value\d SORT d\.weft_seq ASC/);
    expect(Object.values(e.bindVars)).toContainEqual(['jobs/1']);
    expect(Object.values(e.bindVars)).toContainEqual(['files/2', 'files/3']);
    const nb = await store.neighbors('blocks', 'wf1', ['jobs/1'], 'outbound');
    expect(nb).toEqual([
      { edge: { _key: 'e1', _id: 'blocks/e1', _rev: 'r', _from: 'jobs/1', _to: 'jobs/2' }, vertex: { _key: '2', _id: 'jobs/2', _rev: 'r' } },
      { edge: { _key: 'e2', _id: 'blocks/e2', _rev: 'r', _from: 'jobs/1', _to: 'jobs/9' }, vertex: null },
    ]);
    const n = fake.queries[1]!;
    expectBound(n);
    expect(n.query).toContain('FILTER d._from IN @');
    expect(n.query).toContain('DOCUMENT(d._to)');
    await store.neighbors('needs', 'wf1', ['files/2'], 'inbound');
    expect(fake.queries[2]!.query).toContain('FILTER d._to IN @');
    expect(fake.queries[2]!.query).toContain('DOCUMENT(d._from)');
  });

  it('getMany returns documents in the order of the keys asked', async () => {
    const { fake, store } = await readyStore(() => [
      { _key: 'a', _id: 'files/a', _rev: 'r' },
      { _key: 'c', _id: 'files/c', _rev: 'r' },
    ]);
    const got = await store.getMany('files', 'wf1', ['c', 'missing', 'a', 'c']);
    expect(got.map((d) => d._key)).toEqual(['c', 'a', 'c']);
    expect(Object.values(fake.queries[0]!.bindVars)).toContainEqual(['c', 'missing', 'a']);
  });

  it('has asks for the key in the workflow and sends nothing of the document back', async () => {
    const { fake, store } = await readyStore((call) => (Object.values(call.bindVars).includes('there') ? [1] : []));
    expect(await store.has('compute_nodes', 'wf1', 'there')).toBe(true);
    expect(await store.has('compute_nodes', 'wf1', 'gone')).toBe(false);
    expect(await store.has('workflows', null, 'there')).toBe(true);
    const [first, , global] = fake.queries;
    expect(first!.query).toMatch(/LIMIT 1 RETURN 1$/);
    expect(Object.values(first!.bindVars)).toEqual(expect.arrayContaining(['compute_nodes', 'there', 'wf1']));
    expect(Object.values(global!.bindVars)).toContain(null);
  });

  it('removeWorkflow removes from every collection in one query, globals by key', async () => {
    const { fake, store } = await readyStore(() => [true]);
    await store.removeWorkflow('wf 1"; DROP');
    const call = fake.queries[0]!;
    expectBound(call);
    expectNotInText(call, ['DROP']);
    expect(collectionBinds(call).sort()).toEqual([...ALL].sort());
    expect(call.query.match(/FILTER d\._key == @/g)).toHaveLength(GLOBAL_COLLECTIONS.length);
  });
});

describe('arango store: transactions and retries', () => {
  it('runs fn as a stream transaction over every collection, steps one at a time, then commits', async () => {
    const { fake, store } = await readyStore(async (c) => {
      await new Promise((r) => setTimeout(r, 5));
      return c.query.startsWith('INSERT') ? [{ _key: 'k', _id: 'jobs/k', _rev: 'r' }] : [null];
    });
    await store.transaction(async (tx) => {
      await Promise.all([tx.insert('jobs', 'wf1', { command: 'a' }), tx.insert('jobs', 'wf1', { command: 'b' }), tx.get('jobs', 'wf1', 'k')]);
    });
    const begin = fake.requests.find((r) => r.path === '/_db/weft/_api/transaction/begin')!;
    expect([...begin.body.collections.write].sort()).toEqual([...ALL].sort());
    expect(fake.queries).toHaveLength(3);
    expect(fake.queries.every((q) => q.trxId === 'trx1')).toBe(true);
    expect(fake.maxTrxConcurrency).toBe(1);
    const ends = fake.requests.filter((r) => r.path === '/_db/weft/_api/transaction/trx1').map((r) => r.method);
    expect(ends).toEqual(['PUT']);
  });

  it('aborts when fn throws and refuses the handle afterwards', async () => {
    const { fake, store } = await readyStore(() => [{ _key: 'k', _id: 'jobs/k', _rev: 'r' }]);
    let leaked: import('../../graph/store/port.js').GraphStore | undefined;
    await expect(
      store.transaction(async (tx) => {
        leaked = tx;
        await tx.insert('jobs', 'wf1', { command: 'a' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(fake.requests.filter((r) => r.path === '/_db/weft/_api/transaction/trx1').map((r) => r.method)).toEqual(['DELETE']);
    await expectCode(leaked!.get('jobs', 'wf1', 'k'), 'INTERNAL');
  });

  it('reruns a transaction whose step met a write-write conflict from another process', async () => {
    let conflicts = 1;
    const { fake, store } = await readyStore(() => {
      if (conflicts-- > 0) return { status: 409, body: { error: true, code: 409, errorNum: 1200, errorMessage: 'write-write conflict' } };
      return [{ _key: 'k', _id: 'jobs/k', _rev: 'r' }];
    });
    let runs = 0;
    await store.transaction(async (tx) => {
      runs++;
      await tx.insert('jobs', 'wf1', { command: 'a' });
    });
    expect(runs).toBe(2);
    const ends = fake.requests.filter((r) => /\/_api\/transaction\/trx\d$/.test(r.path)).map((r) => `${r.method} ${r.path.split('/').at(-1)}`);
    expect(ends).toEqual(['DELETE trx1', 'PUT trx2']);
  });

  it('retries transient failures with backoff: reads after 503, writes only when the server refused them', async () => {
    let failures = 2;
    const { fake, store } = await readyStore(() => {
      if (failures-- > 0) return { status: 503, body: { error: true, code: 503, errorNum: 1495, errorMessage: 'leadership challenge is ongoing' } };
      return [{ _key: '1', _id: 'files/1', _rev: 'r', path: 'p' }];
    });
    expect((await store.get('files', 'wf1', '1'))?.path).toBe('p');
    expect(fake.queries).toHaveLength(3);
    failures = 1;
    expect((await store.insert('files', 'wf1', { path: 'p' }))._key).toBe('1');
    expect(fake.queries).toHaveLength(5);
    failures = 100;
    const err = await expectCode(store.count('files', 'wf1'), 'STORE_UNAVAILABLE');
    expect(err.message).toContain(fake.url);
    expect(fake.queries).toHaveLength(5 + 4);
  });

  it('maps ArangoDB refusals to the catalogue: duplicate key, bad key, key in a sharded collection', async () => {
    let answer: { status: number; body: unknown } = { status: 409, body: { error: true, code: 409, errorNum: 1210, errorMessage: 'unique constraint violated' } };
    const { store } = await readyStore(() => answer);
    await expectCode(store.insert('jobs', 'wf1', { _key: 'x', command: 'a' }), 'DUPLICATE_KEY');
    answer = { status: 400, body: { error: true, code: 400, errorNum: 1221, errorMessage: 'illegal document key' } };
    await expectCode(store.insert('jobs', 'wf1', { _key: 'bad key', command: 'a' }), 'VALIDATION_FAILED');
    answer = { status: 400, body: { error: true, code: 400, errorNum: 1466, errorMessage: 'must not specify _key for this collection' } };
    const err = await expectCode(store.insert('jobs', 'wf1', { _key: 'x', command: 'a' }), 'VALIDATION_FAILED');
    expect(err.message).toContain('shards the collection by workflow');
    await expectCode(store.insert('blocks', 'wf1', { _from: 'jobs/1' }), 'VALIDATION_FAILED');
  });
});
