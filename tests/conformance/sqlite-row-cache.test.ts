/**
 * Two things of the SQLite store that the lifecycle's speed rests on and that must not change
 * what callers see. (1) The job name is a plain column the store writes (STORED_FIELDS), not
 * an indexed generated one: queries by name see the same values, files made before get it at
 * open. (2) The store keeps the rows a logical transaction has read or written, so an update of a
 * document the transaction just read does not read it again. These check that what a transaction
 * sees is exactly what the table holds: after its own updates, removals and removals of many,
 * after a rolled-back transaction, across workflows, and that a stale revision is still refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteGraphStore } from '../../graph/store/index.js';

let dir: string;
let store: SqliteGraphStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-rows-'));
  store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
  await store.open();
  await store.insert('workflows', null, { _key: '1', name: 'w', user: 'u' });
  await store.insert('workflows', null, { _key: '2', name: 'v', user: 'u' });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The stored row as SQL sees it (no cache in between). */
function raw(key: string): { rev: string; body: Record<string, unknown> } | undefined {
  const row = store.database.prepare('SELECT rev, body FROM files WHERE key = ?').get(key) as { rev: string; body: string } | undefined;
  return row ? { rev: row.rev, body: JSON.parse(row.body) as Record<string, unknown> } : undefined;
}

describe('sqlite row cache of a transaction', () => {
  it('reads, updates and reads again what the table holds; a stale revision is refused', async () => {
    const f = await store.insert('files', '1', { name: 'a', path: '/a', nested: { x: 1 } });
    await store.transaction(async (tx) => {
      const read = (await tx.get('files', '1', f._key))!;
      expect(read._rev).toBe(f._rev);
      // A caller changing a document it read changes nothing stored.
      (read.nested as Record<string, unknown>).x = 99;
      const u1 = await tx.update('files', '1', f._key, { path: '/b' }, { rev: f._rev });
      expect(u1).toEqual({ _key: f._key, _id: `files/${f._key}`, _rev: u1._rev, name: 'a', path: '/b', nested: { x: 1 } });
      expect(raw(f._key)).toEqual({ rev: u1._rev, body: { name: 'a', path: '/b', nested: { x: 1 } } });
      await expect(tx.update('files', '1', f._key, { path: '/c' }, { rev: f._rev })).rejects.toMatchObject({ code: 'REVISION_CONFLICT' });
      const u2 = await tx.update('files', '1', f._key, { path: undefined, size: 3 }, { rev: u1._rev });
      expect(await tx.get('files', '1', f._key)).toEqual(u2);
      expect(u2).toEqual({ _key: f._key, _id: `files/${f._key}`, _rev: u2._rev, name: 'a', nested: { x: 1 }, size: 3 });
      // Another workflow does not see it, through the cache or not.
      expect(await tx.get('files', '2', f._key)).toBeNull();
      await expect(tx.update('files', '2', f._key, { path: '/x' })).rejects.toMatchObject({ code: 'DOCUMENT_NOT_FOUND' });
      const r = await tx.replace('files', '1', f._key, { name: 'z' });
      expect(await tx.get('files', '1', f._key)).toEqual({ _key: f._key, _id: `files/${f._key}`, _rev: r._rev, name: 'z' });
    });
    expect(raw(f._key)!.body).toEqual({ name: 'z' });
  });

  it('forgets what a failed transaction wrote', async () => {
    const f = await store.insert('files', '1', { name: 'a', path: '/a' });
    await expect(
      store.transaction(async (tx) => {
        await tx.get('files', '1', f._key);
        await tx.update('files', '1', f._key, { path: '/b' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await store.transaction(async (tx) => {
      expect(await tx.get('files', '1', f._key)).toEqual(f);
      const u = await tx.update('files', '1', f._key, { path: '/c' }, { rev: f._rev });
      expect(u.path).toBe('/c');
    });
    expect(raw(f._key)!.body).toEqual({ name: 'a', path: '/c' });
  });

  it("transactions of one group commit see each other's writes, and not those of one that failed", async () => {
    const f = await store.insert('files', '1', { name: 'a', path: '/a' });
    // Started in the same turn: one group commit, one transaction after the other.
    const t1 = store.transaction(async (tx) => {
      await tx.get('files', '1', f._key);
      return tx.update('files', '1', f._key, { path: '/1' });
    });
    const t2 = store.transaction(async (tx) => {
      expect((await tx.get('files', '1', f._key))!.path).toBe('/1');
      await tx.update('files', '1', f._key, { path: '/2' });
      throw new Error('boom');
    });
    const t3 = store.transaction(async (tx) => tx.get('files', '1', f._key));
    const outside = store.get('files', '1', f._key);
    const [r1, r2, r3] = await Promise.allSettled([t1, t2, t3]);
    expect(r2.status).toBe('rejected');
    const u1 = (r1 as PromiseFulfilledResult<Awaited<typeof t1>>).value;
    expect((r3 as PromiseFulfilledResult<Awaited<typeof t3>>).value).toEqual(u1);
    expect((await outside)!._rev).toBe(f._rev);
    expect(raw(f._key)).toEqual({ rev: u1._rev, body: { name: 'a', path: '/1' } });
    expect(await store.get('files', '1', f._key)).toEqual(u1);
  });

  it('sees removals, one or many, and documents found by find and getMany', async () => {
    const a = await store.insert('files', '1', { name: 'a', path: '/a' });
    const b = await store.insert('files', '1', { name: 'b', path: '/b' });
    const c = await store.insert('files', '1', { name: 'c', path: '/c' });
    await store.transaction(async (tx) => {
      const found = (await tx.find('files', '1', { where: { name: 'a' } })).items;
      expect(found).toEqual([a]);
      await tx.update('files', '1', a._key, { path: '/a2' }, { rev: a._rev });
      expect((await tx.getMany('files', '1', [b._key, c._key])).map((d) => d._key)).toEqual([b._key, c._key]);
      expect(await tx.remove('files', '1', b._key)).toBe(true);
      expect(await tx.get('files', '1', b._key)).toBeNull();
      await expect(tx.update('files', '1', b._key, { path: '/x' })).rejects.toMatchObject({ code: 'DOCUMENT_NOT_FOUND' });
      expect(await tx.removeWhere('files', '1', { name: 'c' })).toBe(1);
      expect(await tx.get('files', '1', c._key)).toBeNull();
      expect((await tx.get('files', '1', a._key))!.path).toBe('/a2');
    });
    expect(raw(b._key)).toBeUndefined();
    expect(raw(c._key)).toBeUndefined();
    expect(raw(a._key)!.body).toEqual({ name: 'a', path: '/a2' });
  });

  it("updateMany after reads writes on top of the transaction's own changes", async () => {
    const a = await store.insert('files', '1', { name: 'a', path: '/a' });
    await store.transaction(async (tx) => {
      await tx.update('files', '1', a._key, { path: '/a2' });
      expect(await tx.updateMany('files', '1', [{ key: a._key, patch: { size: 1 } }, { key: 'nope', patch: { size: 2 } }])).toBe(1);
      expect(await tx.get('files', '1', a._key)).toMatchObject({ name: 'a', path: '/a2', size: 1 });
    });
    expect(raw(a._key)!.body).toEqual({ name: 'a', path: '/a2', size: 1 });
  });
});

describe('sqlite stored job name column', () => {
  it('finds and sorts jobs by name through the column, kept up to date by insert, update and replace', async () => {
    const a = await store.insert('jobs', '1', { name: 'b', status: 'ready' });
    const b = await store.insert('jobs', '1', { name: 'a', status: 'ready' });
    const c = await store.insert('jobs', '1', { status: 'ready' });
    const names = () => (store.database.prepare(`SELECT key, s_name FROM jobs ORDER BY rid`).all() as { key: string; s_name: unknown }[]).map((r) => [r.key, r.s_name]);
    expect(names()).toEqual([[a._key, 'b'], [b._key, 'a'], [c._key, null]]);
    await store.update('jobs', '1', a._key, { status: 'done' });
    await store.update('jobs', '1', b._key, { name: 'z' });
    await store.replace('jobs', '1', c._key, { name: 'c', status: 'ready' });
    expect(names()).toEqual([[a._key, 'b'], [b._key, 'z'], [c._key, 'c']]);
    await store.update('jobs', '1', a._key, { name: undefined });
    expect(names()[0]).toEqual([a._key, null]);
    expect((await store.find('jobs', '1', { where: { name: 'z' } })).items.map((d) => d._key)).toEqual([b._key]);
    expect((await store.find('jobs', '1', { where: [{ field: 'name', op: 'in', value: ['c', 'z'] }], sort: [{ field: 'name', direction: 'desc' }] })).items.map((d) => d._key)).toEqual([b._key, c._key]);
    const plan = (store.database.prepare(`EXPLAIN QUERY PLAN SELECT key FROM jobs WHERE workflow = ? AND s_name = ?`).all('1', 'z') as { detail: string }[]).map((r) => r.detail).join(' ');
    expect(plan).toMatch(/USING INDEX ix_jobs_s_name/);
  });

  it("a file made before the column gets it, with every job's name, and loses the old index at open", async () => {
    const path = join(dir, 'old.db');
    const s1 = new SqliteGraphStore({ path });
    await s1.open();
    await s1.insert('workflows', null, { _key: '7', name: 'w', user: 'u' });
    const j1 = await s1.insert('jobs', '7', { name: 'one', status: 'ready' });
    await s1.close();
    // The layout before: no s_name column, an index over the generated f_name; a job written by that version.
    const raw = new Database(path);
    raw.exec(`DROP INDEX ix_jobs_s_name; ALTER TABLE jobs DROP COLUMN s_name;
      ALTER TABLE jobs ADD COLUMN f_name GENERATED ALWAYS AS (json_extract(body, '$."name"')) VIRTUAL; CREATE INDEX ix_jobs_f_name ON jobs (workflow, f_name);
      INSERT INTO jobs (key, workflow, rev, body) VALUES ('900', '7', 'r', '{"name":"two","status":"ready"}')`);
    // A file of a version before the layout mark (PRAGMA user_version, see STORE_LAYOUT_VERSION).
    raw.pragma('user_version = 0');
    raw.close();
    const s2 = new SqliteGraphStore({ path });
    await s2.open();
    try {
      const idx = (s2.database.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND name LIKE '%name%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
      expect(idx).toEqual(['ix_jobs_s_name']);
      expect((await s2.find('jobs', '7', { where: { name: 'two' } })).items.map((d) => d._key)).toEqual(['900']);
      expect((await s2.find('jobs', '7', { where: { name: 'one' } })).items.map((d) => d._key)).toEqual([j1._key]);
      // Marked as filled: later opens skip the scan (an older version can no longer write to the file).
      expect(s2.database.pragma('user_version', { simple: true })).toBeGreaterThan(0);
    } finally {
      await s2.close();
    }
    const s3 = new SqliteGraphStore({ path });
    await s3.open();
    try {
      expect((await s3.find('jobs', '7', { where: { name: 'two' } })).items.map((d) => d._key)).toEqual(['900']);
    } finally {
      await s3.close();
    }
  });
});
