/**
 * The SQLite store's indexes against the queries it really makes: the engine runs job lifecycles
 * (create, initialize, claim, start, complete, unblock) and the views the server serves on a real
 * file, every statement the store prepares is recorded with its first parameters, and
 * EXPLAIN QUERY PLAN must show an index search for each, never a scan of a table or a whole
 * index. The store keeps few indexes (each costs every insert), so this is what guards the
 * hot queries when one is dropped. Also: a file made with the older index set is migrated at open.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareJobsForSubmission } from '../../graph/engine/claims.js';
import { initializeJobs } from '../../graph/engine/initialize.js';
import { expireLeases } from '../../graph/engine/lease.js';
import { completeJob, startJob } from '../../graph/engine/lifecycle.js';
import { createWorkflowFromSpec } from '../../graph/engine/spec-create.js';
import { eventsAfterTimestamp, latestEventTimestamp } from '../../graph/engine/views-events.js';
import { EDGE_COLLECTION_NAMES } from '../../graph/model.js';
import { SqliteGraphStore } from '../../graph/store/index.js';

interface CoreView {
  db: Database.Database;
  stmt(sql: string): Database.Statement;
}

/** Records each SQL text the store runs through its statement cache, with its first arguments. */
function record(store: SqliteGraphStore): Map<string, unknown[]> {
  const core = (store as unknown as { coreRef: CoreView }).coreRef;
  const seen = new Map<string, unknown[]>();
  const stmt = core.stmt.bind(core);
  core.stmt = (sql: string) => {
    const s = stmt(sql);
    const wrap = (run: (...a: unknown[]) => unknown) => (...args: unknown[]) => {
      if (!seen.has(sql)) seen.set(sql, args);
      return run.apply(s, args);
    };
    return new Proxy(s, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'run' || prop === 'get' || prop === 'all' || prop === 'iterate') return wrap(v as (...a: unknown[]) => unknown);
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
  };
  return seen;
}

function plan(db: Database.Database, sql: string, args: unknown[]): string[] {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail);
}

const TX_CONTROL = /^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/;
const CHAINS = 6;

describe('sqlite store query plans', () => {
  let dir: string;
  let store: SqliteGraphStore;
  let db: Database.Database;
  let seen: Map<string, unknown[]>;
  let wf: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-plans-'));
    store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
    await store.open();
    db = store.database;
    seen = record(store);
    const jobs: Record<string, unknown>[] = [];
    for (let i = 0; i < CHAINS * 4; i++) {
      const name = `c${Math.floor(i / 4)}_${i % 4}`;
      jobs.push({ name, command: 'true', resource_requirements: 'tiny', ...(i % 4 === 0 ? {} : { blocked_by: [`c${Math.floor(i / 4)}_${(i % 4) - 1}`] }) });
    }
    wf = (await createWorkflowFromSpec(store, { name: 'plans', resource_requirements: [{ name: 'tiny', num_cpus: 1, memory: '1m', runtime: 'PT1M' }], jobs }))._key;
    await initializeJobs(store, wf);
    const runId = (await store.get('workflow_statuses', null, wf))!.run_id as number;
    const node = (await store.insert('compute_nodes', wf, { hostname: 'h', pid: 1, resources: { num_cpus: 4, memory_gb: 64 } }))._key;
    const worker = { num_cpus: 4, memory_gb: 64, num_gpus: 0, num_nodes: 1, time_limit: null };
    for (let round = 0; round < 3; round++) {
      const got = (await prepareJobsForSubmission(store, wf, worker, { limit: 4, computeNodeKey: node })).jobs;
      for (const job of got) {
        const st = await startJob(store, wf, job._key, job._rev, runId, node);
        await completeJob(store, wf, job._key, 'done', st._rev, runId, node, {
          job_key: job._key,
          run_id: runId,
          return_code: 0,
          exec_time_minutes: 0,
          completion_time: new Date().toISOString(),
          status: 'done',
        });
      }
    }
    // Held jobs for the lease pass (its node never heartbeats, so nothing lapses).
    await prepareJobsForSubmission(store, wf, worker, { limit: 2, computeNodeKey: node });
    expect(await expireLeases(store, 60)).toBe(0);
    await latestEventTimestamp(store, wf);
    await eventsAfterTimestamp(store, wf, 0, { limit: 10 });
    await eventsAfterTimestamp(store, wf, 0, { limit: 10, category: 'job' });
    const some = (await store.find('results', wf, { limit: 1 })).items[0]!;
    await store.find('results', wf, { where: { job_key: some.job_key } });
    for (const coll of ['jobs', 'events', 'results', 'blocks', 'executed', 'returned'] as const) {
      await store.find(coll, wf, { skip: 1, limit: 5, withTotal: true });
      await store.count(coll, wf);
    }
    await store.edges('blocks', wf, { to: `jobs/${some.job_key as string}` });
    await store.neighbors('blocks', wf, [`jobs/${some.job_key as string}`], 'inbound');
    await store.edges('returned', wf, { from: `jobs/${some.job_key as string}`, to: `results/${some._key}` });
    const last = (await store.find('jobs', wf, { sort: [{ field: 'name', direction: 'desc' }], limit: 1 })).items[0]!;
    await store.remove('jobs', wf, last._key);
    await store.removeWhere('events', wf);
    await store.removeWorkflow(wf);
  });

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never scans a table or a whole index', () => {
    const scans: string[] = [];
    let checked = 0;
    for (const [sql, args] of seen) {
      if (TX_CONTROL.test(sql) || /^INSERT /.test(sql)) continue;
      checked++;
      const steps = plan(db, sql, args);
      if (steps.some((s) => /^SCAN /.test(s))) scans.push(`${sql}\n  ${steps.join(' | ')}`);
    }
    expect(checked).toBeGreaterThan(40);
    expect(scans).toEqual([]);
  });

  /** The plan of the one recorded statement whose SQL matches `re`. */
  function planOf(re: RegExp): string {
    const hits = [...seen].filter(([sql]) => re.test(sql));
    expect(hits.map(([sql]) => sql), String(re)).toHaveLength(1);
    const [sql, args] = hits[0]!;
    return plan(db, sql, args).join(' | ');
  }

  it('serves each hot query from the index made for it', () => {
    expect(planOf(/^SELECT .* FROM "jobs" WHERE key = \? AND workflow = \?$/)).toMatch(/USING INDEX sqlite_autoindex_jobs_1 \(key=\?\)/);
    // Claim probe (is any ready job small enough?) and claim read in priority order: partial indexes.
    expect(planOf(/FROM "jobs" WHERE workflow = \? AND s_status = 'ready' AND s_gpus <= \?/)).toMatch(/USING INDEX ix_jobs_.*_claimable \(workflow=\? AND s_status=\?/);
    expect(planOf(/FROM "jobs" WHERE workflow = \? AND s_status = 'ready' AND \+s_gpus <= \?/)).toMatch(/USING INDEX ix_jobs_workflow_s_status_s_gpus_DESC_.*_claimable \(workflow=\? AND s_status=\?\)/);
    expect(planOf(/FROM "blocks" WHERE workflow = \? AND efrom IN/)).toMatch(/USING INDEX ix_blocks_workflow_from \(workflow=\? AND efrom=\?\)/);
    expect(planOf(/FROM "blocks" WHERE workflow = \? AND eto IN/)).toMatch(/USING INDEX ix_blocks_workflow_to \(workflow=\? AND eto=\?\)/);
    expect(planOf(/FROM "returned" WHERE workflow = \? AND efrom IN \(\?\) AND eto IN/)).toMatch(/USING INDEX ix_returned_workflow_(from|to) \(workflow=\? AND e(from|to)=\?\)/);
    expect(planOf(/FROM "events" WHERE workflow = \? AND f_timestamp > \? ORDER BY/)).toMatch(/USING INDEX ix_events_f_timestamp \(workflow=\? AND f_timestamp>\?\)$/);
    expect(planOf(/FROM "events" WHERE workflow = \? AND f_timestamp > \? AND f_category = \? ORDER BY/)).toMatch(/USING INDEX ix_events_f_timestamp \(workflow=\? AND f_timestamp>\?\)$/);
    expect(planOf(/FROM "events" WHERE workflow = \? AND f_timestamp IS NOT NULL ORDER BY f_timestamp DESC/)).toMatch(/USING INDEX ix_events_f_timestamp \(workflow=\? AND f_timestamp>\?\)( \| USE TEMP B-TREE FOR LAST TERM OF ORDER BY)?$/);
    expect(planOf(/FROM "results" WHERE workflow = \? AND f_job_key = \? AND f_run_id = \?/)).toMatch(/USING INDEX ix_results_workflow_f_job_key_f_run_id \(workflow=\? AND f_job_key=\? AND f_run_id=\?\)$/);
    expect(planOf(/FROM "results" WHERE workflow = \? AND f_job_key = \? ORDER BY/)).toMatch(/USING INDEX ix_results_workflow_f_job_key_f_run_id \(workflow=\? AND f_job_key=\?\)( \| USE TEMP B-TREE FOR ORDER BY)?$/);
    expect(planOf(/^SELECT .* FROM "events" WHERE workflow = \? ORDER BY rid ASC LIMIT/)).toMatch(/^SEARCH events USING INDEX \w+ \(workflow=\?\)/);
    // Lease pass: its pages count and read the held jobs of an insertion range from (workflow, status), never every job of the range.
    expect(planOf(/^SELECT COUNT\(\*\) AS n FROM "jobs" WHERE workflow = \? AND s_status IN \(\?, \?\) AND rid > \? AND rid <= \?$/)).toMatch(
      /^SEARCH jobs USING (COVERING )?INDEX ix_jobs_s_status \(workflow=\? AND s_status=\? AND rowid>\? AND rowid<\?\)$/,
    );
    expect(planOf(/FROM "jobs" WHERE workflow = \? AND s_status IN \(\?, \?\) AND rid > \? AND rid <= \? AND \(s_holder/)).toMatch(
      /^SEARCH jobs USING INDEX ix_jobs_s_status \(workflow=\? AND s_status=\? AND rowid>\? AND rowid<\?\)$/,
    );
    expect(planOf(/^DELETE FROM "events" WHERE workflow = \?$/)).toMatch(/^SEARCH events USING INDEX \w+ \(workflow=\?\)$/);
    expect(planOf(/^DELETE FROM "executed" WHERE workflow = \?$/)).toMatch(/^SEARCH executed USING INDEX ix_executed_workflow_(from|to) \(workflow=\?\)$/);
    expect(planOf(/^DELETE FROM "returned" WHERE workflow = \? AND eto = \?$/)).toMatch(/^SEARCH returned USING INDEX ix_returned_workflow_to \(workflow=\? AND eto=\?\)$/);
  });

  it('keeps no index on the hot insert path that another index already serves', () => {
    const indexes = (table: string) => (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name`).all(table) as { name: string }[]).map((r) => r.name);
    expect(indexes('events')).toEqual(['ix_events_f_timestamp', 'sqlite_autoindex_events_1']);
    expect(indexes('results')).toEqual(['ix_results_workflow_f_job_key_f_run_id', 'sqlite_autoindex_results_1']);
    for (const e of EDGE_COLLECTION_NAMES) {
      // executed: one `from` per compute node, read by it only when a node is removed (see sqlite-schema.ts).
      const from = e === 'executed' ? [] : [`ix_${e}_workflow_from`];
      expect(indexes(e)).toEqual([...from, `ix_${e}_workflow_to`, `sqlite_autoindex_${e}_1`]);
    }
  });

  it('removing a compute node still removes the executed edges from it, and only those', async () => {
    await store.insert('workflows', null, { _key: '900', name: 'nodes', user: 'u' });
    const [n1, n2] = await store.insertMany('compute_nodes', '900', [{ hostname: 'a' }, { hostname: 'b' }]);
    const jobs = await store.insertMany('jobs', '900', [{ name: 'x' }, { name: 'y' }, { name: 'z' }]);
    await store.insertMany('executed', '900', [
      { _from: n1!._id, _to: jobs[0]!._id },
      { _from: n2!._id, _to: jobs[1]!._id },
      { _from: n1!._id, _to: jobs[2]!._id },
    ]);
    expect((await store.edges('executed', '900', { from: n1!._id })).map((e) => e._to)).toEqual([jobs[0]!._id, jobs[2]!._id]);
    expect(await store.remove('compute_nodes', '900', n1!._key)).toBe(true);
    expect((await store.find('executed', '900')).items.map((e) => e._from)).toEqual([n2!._id]);
    const steps = plan(db, 'DELETE FROM "executed" WHERE workflow = ? AND efrom = ?', ['900', n1!._id]).join(' | ');
    expect(steps).toMatch(/^SEARCH executed USING INDEX ix_executed_workflow_to \(workflow=\?\)$/);
  });
});

describe('sqlite index migration', () => {
  it('drops the indexes older files have and creates the new ones at open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-migrate-'));
    const path = join(dir, 'weft.db');
    try {
      const s1 = new SqliteGraphStore({ path });
      await s1.open();
      await s1.insert('workflows', null, { _key: '7', name: 'w', user: 'u' });
      const a = await s1.insert('jobs', '7', { name: 'a', status: 'ready' });
      const b = await s1.insert('jobs', '7', { name: 'b', status: 'blocked' });
      await s1.insert('blocks', '7', { _from: a._id, _to: b._id });
      await s1.insert('events', '7', { timestamp: 1, category: 'job' });
      await s1.close();
      // The layout of older versions: (workflow) everywhere, (workflow, category), (workflow, run_id), (efrom), (eto).
      const raw = new Database(path);
      raw.exec(`DROP INDEX ix_blocks_workflow_from; DROP INDEX ix_blocks_workflow_to;
        CREATE INDEX ix_events_workflow ON events (workflow); CREATE INDEX ix_events_f_category ON events (workflow, f_category);
        CREATE INDEX ix_results_workflow ON results (workflow); CREATE INDEX ix_results_f_run_id ON results (workflow, f_run_id);
        CREATE INDEX ix_blocks_workflow ON blocks (workflow); CREATE INDEX ix_blocks_from ON blocks (efrom); CREATE INDEX ix_blocks_to ON blocks (eto);`);
      raw.close();
      const s2 = new SqliteGraphStore({ path });
      await s2.open();
      const names = (s2.database.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('events', 'results', 'blocks') ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
      expect(names).toEqual([
        'ix_blocks_workflow_from',
        'ix_blocks_workflow_to',
        'ix_events_f_timestamp',
        'ix_results_workflow_f_job_key_f_run_id',
        'sqlite_autoindex_blocks_1',
        'sqlite_autoindex_events_1',
        'sqlite_autoindex_results_1',
      ]);
      expect((await s2.edges('blocks', '7', { from: a._id })).map((e) => e._to)).toEqual([b._id]);
      expect(await s2.remove('jobs', '7', b._key)).toBe(true);
      expect(await s2.count('blocks', '7')).toBe(0);
      await s2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
