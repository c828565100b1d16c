/**
 * The job fields the SQLite store keeps in plain columns it writes itself (STORED_FIELDS: name,
 * status, the resources the claim indexes sort and filter by), bound from the document in JS
 * (storedValue) instead of extracted from the JSON by SQLite. Queries read these columns in place
 * of `json_extract(body, path)`, so each must hold exactly that, for every JSON type, after every
 * write path; and a file made before the columns gets them, with their values, at open.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareJobsForSubmission } from '../../graph/engine/claims.js';
import { SqliteGraphStore } from '../../graph/store/index.js';
import { STORE_LAYOUT_VERSION } from '../../graph/store/sqlite-store.js';
import { STORED_FIELDS, jsonPath, storedValue } from '../../graph/store/sqlite-schema.js';

const JOB_COLUMNS = Object.entries(STORED_FIELDS.jobs!);

/** JSON values of every kind, and values JSON.stringify writes otherwise (NaN: null, a Date: its string). */
const VALUES: unknown[] = [
  'ready',
  '',
  '5',
  'é\n"\\\u2028\u0000😀',
  '\ud800 lone \udc00',
  0,
  -0,
  7,
  -12,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 62,
  -(2 ** 62),
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  1e21,
  -1e300,
  0.1,
  1 / 3,
  -2.5e-7,
  5e-324,
  Number.MAX_VALUE,
  NaN,
  Infinity,
  true,
  false,
  null,
  undefined,
  [],
  {},
  [1, 'a', null, true, 1.5, { b: [2] }],
  { k: 'é\n', n: 1e21, s: '\ud800', e: '\u0001' },
  new Date(0),
];

/** The same value with typeof and bytes, so 1 (integer) and 1.0 (real) or two encodings of a string differ. */
const SAME = 'SELECT (? IS json_extract(?, ?)) AND typeof(?) = typeof(json_extract(?, ?)) AND hex(?) IS hex(json_extract(?, ?)) AS same';

describe('storedValue', () => {
  it('is what json_extract gives from the JSON text, for every JSON type and at every depth', () => {
    const db = new Database(':memory:');
    const same = db.prepare(SAME);
    const docs: Record<string, unknown>[] = [];
    for (const v of VALUES) {
      docs.push({ status: v }, { internal: { num_gpus: v } }, { internal: v }, { internal: { num_gpus: { deeper: v } } });
    }
    docs.push({}, { internal: null }, { internal: [1, 2] }, { internal: { toJSON: () => ({ num_gpus: 3 }) } });
    let checked = 0;
    for (const doc of docs) {
      const json = JSON.stringify(doc);
      for (const field of ['status', 'internal.num_gpus', 'internal', 'internal.num_gpus.deeper']) {
        const v = storedValue(doc, field.split('.'));
        const path = jsonPath(field);
        const r = same.get(v, json, path, v, json, path, v, json, path) as { same: number };
        expect(r.same, `${field} of ${json}: ${String(v)}`).toBe(1);
        checked++;
      }
    }
    expect(checked).toBe(docs.length * 4);
    db.close();
  });
});

describe('sqlite stored job columns', () => {
  let dir: string;
  let store: SqliteGraphStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-stored-'));
    store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
    await store.open();
    await store.insert('workflows', null, { _key: '1', name: 'w', user: 'u' });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The jobs whose stored columns are not exactly json_extract of their body (value, type, bytes). */
  function mismatches(db: Database.Database): unknown[] {
    const conds = JOB_COLUMNS.map(([field, col]) => {
      const e = `json_extract(body, '${jsonPath(field)}')`;
      return `${col} IS NOT ${e} OR typeof(${col}) != typeof(${e}) OR hex(${col}) IS NOT hex(${e})`;
    });
    return db.prepare(`SELECT key, body, ${JOB_COLUMNS.map(([, c]) => c).join(', ')} FROM jobs WHERE ${conds.join(' OR ')}`).all();
  }

  /**
   * Mark the file at `path` as made by layout `version` (PRAGMA user_version, see
   * STORE_LAYOUT_VERSION) and open it with the store, whose open migrates it: every stored column
   * then holds its field.
   */
  async function reopenFromLayout(raw: Database.Database, path: string, version: number): Promise<SqliteGraphStore> {
    raw.pragma(`user_version = ${version}`);
    raw.close();
    const store = new SqliteGraphStore({ path });
    await store.open();
    expect(mismatches(store.database)).toEqual([]);
    return store;
  }

  const jobOf = (v: unknown, i: number): Record<string, unknown> => ({
    name: i % 3 === 0 ? v : `j${i}`,
    status: v,
    internal: { num_gpus: v, runtime_seconds: i, memory_bytes: v, num_cpus: v },
  });

  it('hold json_extract of the body after insert, insertMany, update (setting the field or not), replace and updateMany', async () => {
    const db = store.database;
    const one = await Promise.all(VALUES.map((v, i) => store.insert('jobs', '1', jobOf(v, i))));
    const many = await store.insertMany('jobs', '1', VALUES.map((v, i) => jobOf(v, i + 1)));
    expect(mismatches(db)).toEqual([]);
    const n = VALUES.length;
    for (let i = 0; i < n; i++) {
      const v = VALUES[i];
      const w = VALUES[(i + 7) % n];
      // Sets a stored field; sets the parent of some; sets none (the columns keep their values); removes one.
      await store.update('jobs', '1', one[i]!._key, { status: w });
      await store.update('jobs', '1', many[i]!._key, { internal: { num_gpus: w, memory_bytes: v } });
      await store.update('jobs', '1', one[(i + 1) % n]!._key, { other: v });
      await store.update('jobs', '1', many[(i + 2) % n]!._key, { name: undefined, internal: undefined });
      await store.replace('jobs', '1', one[(i + 3) % n]!._key, { status: v, internal: { num_cpus: w } });
    }
    expect(mismatches(db)).toEqual([]);
    expect(await store.updateMany('jobs', '1', one.map((d, i) => ({ key: d._key, patch: { status: VALUES[(i + 3) % n], internal: { runtime_seconds: VALUES[i] } } })))).toBe(n);
    await store.transaction(async (tx) => {
      for (let i = 0; i < n; i++) await tx.update('jobs', '1', many[i]!._key, { status: VALUES[(i + 5) % n], internal: { num_cpus: VALUES[i] } });
      await tx.updateMany('jobs', '1', many.map((d) => ({ key: d._key, patch: { name: 'same' } })));
    });
    expect(mismatches(db)).toEqual([]);
    // Queries read the columns and see the body's values.
    const ready = (await store.find('jobs', '1', { where: { status: 'ready' } })).items.map((d) => d._key);
    const byBody = (db.prepare(`SELECT key FROM jobs WHERE workflow = '1' AND json_extract(body, '$.status') = 'ready' ORDER BY rid`).all() as { key: string }[]).map((r) => r.key);
    expect(ready).toEqual(byBody);
    expect(ready.length).toBeGreaterThan(0);
  });

  it('an update that sets no stored field assigns no stored column (their indexes are left alone)', async () => {
    const j = await store.insert('jobs', '1', { name: 'a', status: 'ready', internal: { num_gpus: 1, num_cpus: 2 } });
    // A column changed behind the store's back stays changed: the update did not assign it.
    store.database.exec(`UPDATE jobs SET s_gpus = 99, s_name = 'x' WHERE key = '${j._key}'`);
    await store.update('jobs', '1', j._key, { status: 'running' });
    const row = store.database.prepare(`SELECT s_name, s_status, s_gpus, s_cpus FROM jobs WHERE key = ?`).get(j._key);
    expect(row).toEqual({ s_name: 'x', s_status: 'running', s_gpus: 99, s_cpus: 2 });
    await store.update('jobs', '1', j._key, { internal: { num_gpus: 1 } });
    expect(store.database.prepare(`SELECT s_name, s_gpus, s_cpus FROM jobs WHERE key = ?`).get(j._key)).toEqual({ s_name: 'x', s_gpus: 1, s_cpus: null });
  });

  it('a file of layout 1 (before s_nodes, s_sched and s_holder) gets them and their values at the next open, and claims filter by them', async () => {
    const path = join(dir, 'layout1.db');
    const s1 = new SqliteGraphStore({ path });
    await s1.open();
    await s1.insert('workflows', null, { _key: '8', name: 'w', user: 'u' });
    const internal = (nodes: number, sched: string) => ({ num_cpus: 1, memory_bytes: 1024, num_gpus: 0, num_nodes: nodes, runtime_seconds: 60, scheduler_config_id: sched });
    await s1.insertMany('jobs', '8', [
      { name: 'plain', status: 'ready', command: 'x', internal: internal(1, '') },
      { name: 'two-nodes', status: 'ready', command: 'x', internal: internal(2, '') },
      { name: 'bound', status: 'ready', command: 'x', internal: internal(1, 'slurm_schedulers/3') },
    ]);
    await s1.close();
    // What layout 1 had: the other stored columns, not these two.
    const raw = new Database(path);
    raw.exec('ALTER TABLE jobs DROP COLUMN s_nodes; ALTER TABLE jobs DROP COLUMN s_sched; ALTER TABLE jobs DROP COLUMN s_holder');
    const s2 = await reopenFromLayout(raw, path, 1);
    try {
      const db = s2.database;
      expect(db.prepare(`SELECT s_nodes, s_sched FROM jobs WHERE workflow = '8' ORDER BY rid`).all()).toEqual([
        { s_nodes: 1, s_sched: '' },
        { s_nodes: 2, s_sched: '' },
        { s_nodes: 1, s_sched: 'slurm_schedulers/3' },
      ]);
      expect(db.pragma('user_version', { simple: true })).toBe(STORE_LAYOUT_VERSION);
      const worker = { num_cpus: 8, memory_gb: 1, num_gpus: 0, num_nodes: 1, time_limit: null };
      expect((await prepareJobsForSubmission(s2, '8', worker, { limit: 8, sortMethod: 'none' })).jobs.map((j) => j.name)).toEqual(['plain']);
      const bound = { ...worker, scheduler_config_id: 'slurm_schedulers/3' };
      expect((await prepareJobsForSubmission(s2, '8', bound, { limit: 8, sortMethod: 'none' })).jobs.map((j) => j.name)).toEqual(['bound']);
      expect(mismatches(db)).toEqual([]);
    } finally {
      await s2.close();
    }
  });

  it('a file made with the generated columns gets the stored ones, their values and the new indexes at open, and claims from them', async () => {
    const path = join(dir, 'old.db');
    const s1 = new SqliteGraphStore({ path });
    await s1.open();
    await s1.close();
    // The jobs table of the version before (name stored, the rest generated and indexed), with jobs it wrote.
    const raw = new Database(path);
    raw.exec(`DROP TABLE jobs;
      CREATE TABLE "jobs" (rid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, workflow TEXT, rev TEXT NOT NULL, body TEXT NOT NULL, s_name,
        f_status GENERATED ALWAYS AS (json_extract(body, '$."status"')) VIRTUAL, f_name GENERATED ALWAYS AS (json_extract(body, '$."name"')) VIRTUAL,
        f_gpus GENERATED ALWAYS AS (json_extract(body, '$."internal"."num_gpus"')) VIRTUAL, f_runtime GENERATED ALWAYS AS (json_extract(body, '$."internal"."runtime_seconds"')) VIRTUAL,
        f_memory GENERATED ALWAYS AS (json_extract(body, '$."internal"."memory_bytes"')) VIRTUAL, f_scheduler GENERATED ALWAYS AS (json_extract(body, '$."internal"."scheduler_config_id"')) VIRTUAL);
      CREATE INDEX "ix_jobs_workflow" ON "jobs" (workflow);
      CREATE INDEX "ix_jobs_f_status" ON "jobs" (workflow, f_status);
      CREATE INDEX "ix_jobs_s_name" ON "jobs" (workflow, s_name);
      CREATE INDEX "ix_jobs_workflow_f_status_f_gpus_DESC_f_runtime_DESC_f_memory_DESC_claimable" ON "jobs" (workflow, f_status, f_gpus DESC, f_runtime DESC, f_memory DESC) WHERE (f_status = 'ready' OR f_status = 'scheduled');
      CREATE INDEX "ix_jobs_workflow_f_status_f_gpus_DESC_f_memory_DESC_f_runtime_DESC_claimable" ON "jobs" (workflow, f_status, f_gpus DESC, f_memory DESC, f_runtime DESC) WHERE (f_status = 'ready' OR f_status = 'scheduled');
      CREATE INDEX "ix_jobs_workflow_f_status_json_extract_body_internal_num_cpus__claimable" ON "jobs" (workflow, f_status, json_extract(body, '$."internal"."num_cpus"')) WHERE (f_status = 'ready' OR f_status = 'scheduled');
      INSERT INTO workflows (key, workflow, rev, body) VALUES ('7', NULL, 'r', '{"name":"w","user":"u"}');`);
    const internal = (gpus: number, cpus: number) => ({ num_cpus: cpus, memory_bytes: 1024, num_gpus: gpus, num_nodes: 1, runtime_seconds: 60.5, scheduler_config_id: '' });
    const ins = raw.prepare(`INSERT INTO jobs (key, workflow, rev, body, s_name) VALUES (?, '7', 'r', ?, json_extract(?, '$.name'))`);
    const bodies = [
      { name: 'big', status: 'ready', command: 'x', internal: internal(0, 8) },
      { name: 'small', status: 'ready', command: 'x', internal: internal(0, 1) },
      { name: 'gpu', status: 'ready', command: 'x', internal: internal(1, 1) },
      { name: 'blocked', status: 'blocked', command: 'x', internal: internal(0, 1) },
      { name: 'odd', status: true, internal: { num_gpus: 'two', num_cpus: [1], memory_bytes: null } },
    ];
    bodies.forEach((b, i) => ins.run(String(900 + i), JSON.stringify(b), JSON.stringify(b)));
    // A file of a version before the layout mark.
    const s2 = await reopenFromLayout(raw, path, 0);
    try {
      const db = s2.database;
      const idx = (db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' ORDER BY name`).all() as { name: string; sql: string | null }[]);
      expect(idx.map((r) => r.name)).toEqual([
        'ix_jobs_s_name',
        'ix_jobs_s_status',
        'ix_jobs_workflow',
        'ix_jobs_workflow_s_status_s_cpus_claimable',
        'ix_jobs_workflow_s_status_s_gpus_DESC_s_memory_DESC_s_runtime_DESC_claimable',
        'ix_jobs_workflow_s_status_s_gpus_DESC_s_runtime_DESC_s_memory_DESC_claimable',
        'sqlite_autoindex_jobs_1',
      ]);
      // The generated columns are gone (SQLite computed them at every write), and no job index reads the body.
      const generated = db.prepare(`SELECT name FROM pragma_table_xinfo('jobs') WHERE hidden != 0`).all();
      expect(generated).toEqual([]);
      for (const r of idx) expect(r.sql ?? '').not.toMatch(/json_extract|f_/);
      const claimable = (db.prepare(`SELECT key FROM jobs INDEXED BY ix_jobs_workflow_s_status_s_cpus_claimable WHERE workflow = '7' AND (s_status = 'ready' OR s_status = 'scheduled') ORDER BY rid`).all() as { key: string }[]).map((r) => r.key);
      expect(claimable).toEqual(['900', '901', '902']);
      const worker = { num_cpus: 2, memory_gb: 1, num_gpus: 0, num_nodes: 1, time_limit: null };
      const got = (await prepareJobsForSubmission(s2, '7', worker, { limit: 4 })).jobs.map((j) => j.name);
      expect(got).toEqual(['small']);
      expect(mismatches(db)).toEqual([]);
      // The file is marked as filled for this layout: the next open does not scan the tables again
      // (an older version cannot write to it any more: its generated columns are gone).
      expect(db.pragma('user_version', { simple: true })).toBe(STORE_LAYOUT_VERSION);
    } finally {
      await s2.close();
    }
    const s3 = new SqliteGraphStore({ path });
    await s3.open();
    try {
      expect(mismatches(s3.database)).toEqual([]);
      expect(s3.database.pragma('user_version', { simple: true })).toBe(STORE_LAYOUT_VERSION);
      expect((await s3.find('jobs', '7', { where: { status: 'ready' } })).items.map((d) => d.name)).toEqual(['big', 'gpu']);
    } finally {
      await s3.close();
    }
  });
});
