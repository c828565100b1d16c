/**
 * The store conformance suite: every GraphStore adapter runs it (SQLite always, ArangoDB when
 * WEFT_ARANGO_URL is set). It covers every port operation and the rules in graph/store/port.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GraphStore } from '../../graph/store/index.js';
import { WeftError } from '../../graph/errors.js';

export type StoreFactory = () => Promise<{ store: GraphStore; cleanup: () => Promise<void> }>;

let wfCounter = 0;
function wfKey(): string {
  wfCounter += 1;
  return `cf${process.pid}x${Date.now().toString(36)}x${wfCounter}`;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    expect((err as WeftError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

export function runStoreConformance(name: string, makeStore: StoreFactory): void {
  describe(`store conformance: ${name}`, () => {
    let store: GraphStore;
    let cleanup: () => Promise<void>;
    let wf: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      wf = wfKey();
      await store.insert('workflows', null, { _key: wf, name: 'conformance', user: 'u', is_archived: false });
    });

    afterEach(async () => {
      await store.removeWorkflow(wf);
      await cleanup();
    });

    it('insert generates _key, _id and _rev, and get returns the document', async () => {
      const d = await store.insert('files', wf, { name: 'f1', path: 'a/b.txt', st_mtime: 12.5 });
      expect(d._key).toMatch(/.+/);
      expect(d._id).toBe(`files/${d._key}`);
      expect(typeof d._rev).toBe('string');
      const got = await store.get('files', wf, d._key);
      expect(got).toEqual(d);
      expect(got).not.toHaveProperty('workflow');
    });

    it('insert keeps a given _key and refuses a duplicate', async () => {
      const key = `k${wfKey()}`;
      const d = await store.insert('jobs', wf, { _key: key, name: 'j', command: 'true' });
      expect(d._key).toBe(key);
      await expectCode(store.insert('jobs', wf, { _key: key, name: 'j2', command: 'true' }), 'DUPLICATE_KEY');
    });

    it('documents of another workflow are not found', async () => {
      const other = wfKey();
      await store.insert('workflows', null, { _key: other, name: 'other', user: 'u' });
      const d = await store.insert('files', other, { name: 'x', path: 'x' });
      expect(await store.get('files', wf, d._key)).toBeNull();
      expect(await store.get('files', other, d._key)).not.toBeNull();
      await store.removeWorkflow(other);
      expect(await store.get('files', other, d._key)).toBeNull();
    });

    it('update merges the top level, changes _rev, and checks a given _rev', async () => {
      const d = await store.insert('jobs', wf, { name: 'j', command: 'true', internal: { a: 1, b: 2 } });
      const u = await store.update('jobs', wf, d._key, { status: 'ready', internal: { a: 3 } }, { rev: d._rev });
      expect(u._rev).not.toBe(d._rev);
      expect(u.status).toBe('ready');
      expect(u.command).toBe('true');
      expect(u.internal).toEqual({ a: 3 });
      await expectCode(store.update('jobs', wf, d._key, { status: 'done' }, { rev: d._rev }), 'REVISION_CONFLICT');
      expect((await store.get('jobs', wf, d._key))?.status).toBe('ready');
      await expectCode(store.update('jobs', wf, 'nope-not-here', { status: 'x' }), 'DOCUMENT_NOT_FOUND');
    });

    it('update cannot change metadata', async () => {
      const d = await store.insert('files', wf, { name: 'f', path: 'p' });
      const u = await store.update('files', wf, d._key, { _key: 'other', _id: 'files/other', path: 'q' });
      expect(u._key).toBe(d._key);
      expect(u._id).toBe(d._id);
      expect((await store.get('files', wf, d._key))?.path).toBe('q');
    });

    it('replace writes the whole document and checks _rev', async () => {
      const d = await store.insert('files', wf, { name: 'f', path: 'p', st_mtime: 1 });
      const r = await store.replace('files', wf, d._key, { path: 'q' }, { rev: d._rev });
      expect(r).not.toHaveProperty('st_mtime');
      expect(r.path).toBe('q');
      await expectCode(store.replace('files', wf, d._key, { path: 'z' }, { rev: d._rev }), 'REVISION_CONFLICT');
      await expectCode(store.replace('files', wf, 'missing-key', { path: 'z' }), 'DOCUMENT_NOT_FOUND');
    });

    it('updateMany patches every listed document and skips missing ones', async () => {
      const docs = await store.insertMany('jobs', wf, [1, 2, 3].map((i) => ({ name: `j${i}`, command: 'true', status: 'uninitialized' })));
      const n = await store.updateMany('jobs', wf, [
        ...docs.map((d) => ({ key: d._key, patch: { status: 'ready' } })),
        { key: 'missing-key', patch: { status: 'ready' } },
      ]);
      expect(n).toBe(3);
      expect(await store.count('jobs', wf, { status: 'ready' })).toBe(3);
    });

    it('has says whether a document exists in that workflow, as get does', async () => {
      const doc = await store.insert('files', wf, { path: 'here' });
      expect(await store.has('files', wf, doc._key)).toBe(true);
      expect(await store.has('files', wf, 'missing-key')).toBe(false);
      expect(await store.has('files', `${wf}-other`, doc._key)).toBe(false);
      expect(await store.has('workflows', null, wf)).toBe((await store.get('workflows', null, wf)) !== null);
      await store.remove('files', wf, doc._key);
      expect(await store.has('files', wf, doc._key)).toBe(false);
      // Inside a transaction, a document written there is seen by has at once.
      await store.transaction(async (tx) => {
        const inTx = await tx.insert('files', wf, { path: 'tx' });
        expect(await tx.has('files', wf, inTx._key)).toBe(true);
      });
    });

    it('getMany returns existing documents in the order asked', async () => {
      const docs = await store.insertMany('files', wf, [{ path: 'a' }, { path: 'b' }, { path: 'c' }]);
      const got = await store.getMany('files', wf, [docs[2]!._key, 'missing-key', docs[0]!._key]);
      expect(got.map((d) => d.path)).toEqual(['c', 'a']);
    });

    it('find filters, sorts over the whole result before paging, and counts', async () => {
      const names = ['delta', 'alpha', 'charlie', 'bravo', 'echo'];
      await store.insertMany('jobs', wf, names.map((n, i) => ({ name: n, command: 'true', status: i % 2 ? 'ready' : 'blocked', internal: { num_gpus: i % 3 } })));
      const page = await store.find('jobs', wf, { sort: [{ field: 'name' }], skip: 1, limit: 2, withTotal: true });
      expect(page.items.map((d) => d.name)).toEqual(['bravo', 'charlie']);
      expect(page.totalCount).toBe(5);
      const rev = await store.find('jobs', wf, { sort: [{ field: 'name', direction: 'desc' }], limit: 1 });
      expect(rev.items[0]?.name).toBe('echo');
      expect((await store.find('jobs', wf, { where: { status: 'ready' } })).items.map((d) => d.name)).toEqual(['alpha', 'bravo']);
      const cond = await store.find('jobs', wf, { where: [{ field: 'internal.num_gpus', op: '>=', value: 1 }], sort: [{ field: 'internal.num_gpus', direction: 'desc' }, { field: 'name' }] });
      expect(cond.items.map((d) => d.name)).toEqual(['charlie', 'alpha', 'echo']);
      const inq = await store.find('jobs', wf, { where: [{ field: 'name', op: 'in', value: ['alpha', 'echo', 'zulu'] }] });
      expect(inq.items.map((d) => d.name)).toEqual(['alpha', 'echo']);
      const notIn = await store.find('jobs', wf, { where: [{ field: 'status', op: 'not_in', value: ['ready'] }] });
      expect(notIn.items).toHaveLength(3);
      const ne = await store.find('jobs', wf, { where: [{ field: 'name', op: '!=', value: 'alpha' }] });
      expect(ne.items).toHaveLength(4);
      expect(await store.count('jobs', wf, [{ field: 'internal.num_gpus', op: '<', value: 1 }])).toBe(2);
      expect((await store.find('jobs', wf, { where: [{ field: 'status', op: 'in', value: [] }] })).items).toHaveLength(0);
    });

    it('find keeps insertion order for ties and filters booleans and nulls', async () => {
      await store.insertMany('user_data', wf, [
        { name: 'u1', is_ephemeral: true, data: { a: 1 } },
        { name: 'u2', is_ephemeral: false },
        { name: 'u3', is_ephemeral: true, data: null },
      ]);
      expect((await store.find('user_data', wf, { where: { is_ephemeral: true } })).items.map((d) => d.name)).toEqual(['u1', 'u3']);
      expect((await store.find('user_data', wf, { sort: [{ field: 'is_ephemeral' }] })).items.map((d) => d.name)).toEqual(['u2', 'u1', 'u3']);
      expect((await store.find('user_data', wf, { where: { data: null } })).items.map((d) => d.name)).toEqual(['u2', 'u3']);
    });

    it('_seq is the insertion order: sortable, comparable in ranges, never shown', async () => {
      const docs = await store.insertMany('local_schedulers', wf, [{ name: 's1' }, { name: 's2' }, { name: 's3' }]);
      expect(docs.every((d) => !('_seq' in d))).toBe(true);
      expect((await store.find('local_schedulers', wf, { sort: [{ field: '_seq', direction: 'desc' }] })).items.map((d) => d.name)).toEqual(['s3', 's2', 's1']);
      expect(await store.count('local_schedulers', wf, [{ field: '_seq', op: '>', value: 0 }])).toBe(3);
      expect(await store.count('local_schedulers', wf, [{ field: '_seq', op: '<=', value: 0 }])).toBe(0);
    });

    it('edges and neighbors follow both directions', async () => {
      const [a, b, c] = await store.insertMany('jobs', wf, [{ name: 'a', command: 'x' }, { name: 'b', command: 'x' }, { name: 'c', command: 'x' }]);
      const f = await store.insert('files', wf, { name: 'f', path: 'f' });
      await store.insert('blocks', wf, { _from: a!._id, _to: b!._id });
      await store.insert('blocks', wf, { _from: a!._id, _to: c!._id });
      await store.insert('needs', wf, { _from: b!._id, _to: f._id, data: { note: 1 } });
      const out = await store.edges('blocks', wf, { from: a!._id });
      expect(out.map((e) => e._to).sort()).toEqual([b!._id, c!._id].sort());
      const into = await store.edges('blocks', wf, { to: [b!._id, c!._id] });
      expect(into).toHaveLength(2);
      expect(await store.edges('blocks', wf, { from: a!._id, to: c!._id })).toHaveLength(1);
      const nb = await store.neighbors('blocks', wf, [a!._id], 'outbound');
      expect(nb.map((n) => n.vertex?.name).sort()).toEqual(['b', 'c']);
      const back = await store.neighbors('needs', wf, [f._id], 'inbound');
      expect(back).toHaveLength(1);
      expect(back[0]?.vertex?.name).toBe('b');
      expect(back[0]?.edge.data).toEqual({ note: 1 });
      expect(await store.count('blocks', wf)).toBe(2);
      expect(await store.count('blocks', wf, { _from: a!._id })).toBe(2);
    });

    it('removing a vertex removes its edges; removeWhere cascades too', async () => {
      const [a, b, c] = await store.insertMany('jobs', wf, [{ name: 'a', command: 'x' }, { name: 'b', command: 'x' }, { name: 'c', command: 'x' }]);
      const f = await store.insert('files', wf, { name: 'f', path: 'f' });
      await store.insert('blocks', wf, { _from: a!._id, _to: b!._id });
      await store.insert('blocks', wf, { _from: b!._id, _to: c!._id });
      await store.insert('needs', wf, { _from: c!._id, _to: f._id });
      expect(await store.remove('jobs', wf, b!._key)).toBe(true);
      expect(await store.remove('jobs', wf, b!._key)).toBe(false);
      expect(await store.count('blocks', wf)).toBe(0);
      expect(await store.count('needs', wf)).toBe(1);
      expect(await store.removeWhere('files', wf)).toBe(1);
      expect(await store.count('needs', wf)).toBe(0);
      await store.insert('blocks', wf, { _from: a!._id, _to: c!._id });
      expect(await store.removeWhere('jobs', wf, { name: 'a' })).toBe(1);
      expect(await store.count('blocks', wf)).toBe(0);
      expect(await store.count('jobs', wf)).toBe(1);
    });

    it('remove checks a given _rev', async () => {
      const d = await store.insert('files', wf, { path: 'p' });
      await store.update('files', wf, d._key, { path: 'q' });
      await expectCode(store.remove('files', wf, d._key, { rev: d._rev }), 'REVISION_CONFLICT');
      expect(await store.get('files', wf, d._key)).not.toBeNull();
    });

    it('removing an edge leaves its vertices', async () => {
      const [a, b] = await store.insertMany('jobs', wf, [{ name: 'a', command: 'x' }, { name: 'b', command: 'x' }]);
      const e = await store.insert('blocks', wf, { _from: a!._id, _to: b!._id });
      expect(await store.remove('blocks', wf, e._key)).toBe(true);
      expect(await store.count('jobs', wf)).toBe(2);
    });

    it('removeWorkflow removes every document and edge of the workflow, and its globals', async () => {
      await store.insert('workflow_configs', null, { _key: wf, compute_node_wait_for_new_jobs_seconds: 0 });
      await store.insert('workflow_statuses', null, { _key: wf, run_id: 0, is_canceled: false });
      const [a, b] = await store.insertMany('jobs', wf, [{ name: 'a', command: 'x' }, { name: 'b', command: 'x' }]);
      await store.insert('blocks', wf, { _from: a!._id, _to: b!._id });
      await store.insert('events', wf, { category: 'job', timestamp: 1 });
      await store.removeWorkflow(wf);
      expect(await store.count('jobs', wf)).toBe(0);
      expect(await store.count('blocks', wf)).toBe(0);
      expect(await store.count('events', wf)).toBe(0);
      expect(await store.get('workflows', null, wf)).toBeNull();
      expect(await store.get('workflow_configs', null, wf)).toBeNull();
      expect(await store.get('workflow_statuses', null, wf)).toBeNull();
    });

    it('a transaction commits all its writes', async () => {
      const res = await store.transaction(async (tx) => {
        const a = await tx.insert('jobs', wf, { name: 'a', command: 'x' });
        const b = await tx.insert('jobs', wf, { name: 'b', command: 'x' });
        await tx.insert('blocks', wf, { _from: a._id, _to: b._id });
        await tx.update('jobs', wf, a._key, { status: 'ready' });
        return a._key;
      });
      expect((await store.get('jobs', wf, res))?.status).toBe('ready');
      expect(await store.count('blocks', wf)).toBe(1);
    });

    it('a transaction that throws writes nothing', async () => {
      const before = await store.insert('jobs', wf, { name: 'keep', command: 'x', status: 'ready' });
      await expect(
        store.transaction(async (tx) => {
          await tx.insert('jobs', wf, { name: 'gone', command: 'x' });
          await tx.update('jobs', wf, before._key, { status: 'done' });
          await tx.insert('blocks', wf, { _from: before._id, _to: before._id });
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await store.count('jobs', wf)).toBe(1);
      expect((await store.get('jobs', wf, before._key))?.status).toBe('ready');
      expect(await store.count('blocks', wf)).toBe(0);
    });

    it('a stale _rev inside a transaction rolls the whole transaction back', async () => {
      const d = await store.insert('jobs', wf, { name: 'a', command: 'x', status: 'ready' });
      await store.update('jobs', wf, d._key, { status: 'blocked' });
      await expectCode(
        store.transaction(async (tx) => {
          await tx.insert('files', wf, { path: 'new' });
          await tx.update('jobs', wf, d._key, { status: 'done' }, { rev: d._rev });
        }),
        'REVISION_CONFLICT',
      );
      expect(await store.count('files', wf)).toBe(0);
    });

    it('concurrent transactions do not interleave (no lost updates)', async () => {
      const d = await store.insert('jobs', wf, { name: 'counter', command: 'x', n: 0 });
      await Promise.all(
        Array.from({ length: 20 }, () =>
          store.transaction(async (tx) => {
            const cur = await tx.get('jobs', wf, d._key);
            await new Promise((r) => setTimeout(r, 1));
            await tx.update('jobs', wf, d._key, { n: (cur!.n as number) + 1 });
          }),
        ),
      );
      expect((await store.get('jobs', wf, d._key))?.n).toBe(20);
    });

    it('global collections take a null workflow', async () => {
      const list = await store.find('workflows', null, { where: { _key: wf } });
      expect(list.items).toHaveLength(1);
      const u = await store.update('workflows', null, wf, { description: 'd' });
      expect(u.description).toBe('d');
      expect(await store.count('workflows', null, { _key: wf })).toBe(1);
    });

    it('insertMany inserts in order inside one transaction', async () => {
      const docs = await store.insertMany('files', wf, Array.from({ length: 1200 }, (_, i) => ({ path: `p${i}` })));
      expect(docs).toHaveLength(1200);
      const first = await store.find('files', wf, { limit: 3 });
      expect(first.items.map((d) => d.path)).toEqual(['p0', 'p1', 'p2']);
      const edges = await store.insertMany('produces', wf, docs.slice(0, 600).map((d) => ({ _from: 'jobs/none', _to: d._id })));
      expect(edges).toHaveLength(600);
      expect(await store.edges('produces', wf, { to: docs.slice(0, 600).map((d) => d._id) })).toHaveLength(600);
    });
  });
}
