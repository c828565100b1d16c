/**
 * The SQLite store keeps a find's statement by the query's shape (fields, operators and the kind
 * of each value: a parameter, NULL, an inlined job status, a list of n values), so a claim does
 * not build and hash its SQL again for every query. Queries that share fields and operators but
 * differ in the kind of a value must still get their own statement and their own answers, and a
 * field path that is not one is still refused after valid queries were cached.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Condition } from '../../graph/store/port.js';
import { SqliteGraphStore } from '../../graph/store/index.js';

let dir: string;
let store: SqliteGraphStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-shapes-'));
  store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
  await store.open();
  await store.insert('workflows', null, { _key: '1', name: 'w', user: 'u' });
  await store.insert('workflows', null, { _key: '2', name: 'v', user: 'u' });
  const jobs: [string, string, string, Record<string, unknown>][] = [
    ['1', 'a', 'ready', { num_cpus: 1 }],
    ['1', 'b', 'ready', { num_cpus: 4 }],
    ['1', 'c', 'blocked', { num_cpus: 2 }],
    ['1', 'd', 'done', {}],
    ['2', 'e', 'ready', { num_cpus: 1 }],
  ];
  for (const [wf, name, status, internal] of jobs) await store.insert('jobs', wf, { _key: name, name, status, internal });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function names(workflow: string, where: Condition[], limit?: number): Promise<string[]> {
  const r = await store.find('jobs', workflow, { where, sort: [{ field: 'name' }], ...(limit !== undefined ? { limit } : {}) });
  return r.items.map((d) => d.name as string);
}

describe('sqlite find statements by shape', () => {
  it('gives each kind of value its own statement and each call its own answer', async () => {
    // The same shape twice with other values, then the same fields with other kinds of value.
    expect(await names('1', [{ field: 'status', op: '==', value: 'ready' }])).toEqual(['a', 'b']);
    expect(await names('1', [{ field: 'status', op: '==', value: 'blocked' }])).toEqual(['c']);
    expect(await names('2', [{ field: 'status', op: '==', value: 'ready' }])).toEqual(['e']);
    // Not a job status: a bound parameter, not a literal.
    expect(await names('1', [{ field: 'status', op: '==', value: 'Ready' }])).toEqual([]);
    expect(await names('1', [{ field: 'status', op: '==', value: null }])).toEqual([]);
    expect(await names('1', [{ field: 'internal.num_cpus', op: '==', value: null }])).toEqual(['d']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: '!=', value: null }])).toEqual(['a', 'b', 'c']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: '!=', value: 1 }])).toEqual(['b', 'c', 'd']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: '<=', value: 2 }])).toEqual(['a', 'c']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: '<=', value: 4 }])).toEqual(['a', 'b', 'c']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: '>', value: 1 }])).toEqual(['b', 'c']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: 'in', value: [] }])).toEqual([]);
    expect(await names('1', [{ field: 'internal.num_cpus', op: 'in', value: [4] }])).toEqual(['b']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: 'in', value: [1, 2] }])).toEqual(['a', 'c']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: 'not_in', value: [] }])).toEqual(['a', 'b', 'c', 'd']);
    expect(await names('1', [{ field: 'internal.num_cpus', op: 'not_in', value: [1, 2] }])).toEqual(['b', 'd']);
    // Paging is part of the shape; the limit's value is not.
    expect(await names('1', [{ field: 'status', op: '==', value: 'ready' }], 1)).toEqual(['a']);
    expect(await names('1', [{ field: 'status', op: '==', value: 'ready' }], 2)).toEqual(['a', 'b']);
    const skipped = await store.find('jobs', '1', { where: [{ field: 'status', op: '==', value: 'ready' }], sort: [{ field: 'name' }], limit: 1, skip: 1 });
    expect(skipped.items.map((d) => d.name)).toEqual(['b']);
    // Two conditions, and a sort in the other direction.
    const both = await store.find('jobs', '1', {
      where: [
        { field: 'status', op: '==', value: 'ready' },
        { field: 'internal.num_cpus', op: '>=', value: 1 },
      ],
      sort: [{ field: 'name', direction: 'desc' }],
    });
    expect(both.items.map((d) => d.name)).toEqual(['b', 'a']);
    // The object form of `where` is the same query as the list.
    expect((await store.find('jobs', '1', { where: { status: 'ready' }, sort: [{ field: 'name' }] })).items.map((d) => d.name)).toEqual(['a', 'b']);
  });

  it('still refuses a field path that is not one, and an unknown operator, after valid queries', async () => {
    expect(await names('1', [{ field: 'internal.num_cpus', op: '<=', value: 2 }])).toEqual(['a', 'c']);
    await expect(names('1', [{ field: 'internal.num cpus', op: '<=', value: 2 }])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(names('1', [{ field: 'internal\u0000<=\u0000p', op: '<=', value: 2 }])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(store.find('jobs', '1', { where: [{ field: 'name', op: '==', value: 'a' }], sort: [{ field: 'x y' }] })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(names('1', [{ field: 'name', op: 'like' as Condition['op'], value: 'a' }])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
