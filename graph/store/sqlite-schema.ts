/**
 * Table layout of the SQLite adapter. One table per collection, shared by all workflows:
 * `rid` (insertion order), `key`, `workflow`, `rev`, `body` (the document as JSON, without
 * metadata). Edge tables add `efrom`/`eto`. Hot fields are virtual generated columns over the
 * JSON so they can be indexed while the document stays one JSON value; the job fields the hot
 * indexes hold are plain columns the store writes (STORED_FIELDS).
 */
import { ALL_COLLECTION_NAMES, EDGE_COLLECTION_NAMES, isEdgeCollection, type CollectionName } from '../model.js';

/** Dotted field path → generated column name, per collection. */
export const HOT_FIELDS: Partial<Record<CollectionName, Readonly<Record<string, string>>>> = {
  workflows: { name: 'f_name', user: 'f_user' },
  // jobs: none, see STORED_FIELDS and DROPPED_GENERATED.
  files: { name: 'f_name', path: 'f_path' },
  user_data: { name: 'f_name' },
  resource_requirements: { name: 'f_name' },
  local_schedulers: { name: 'f_name' },
  slurm_schedulers: { name: 'f_name' },
  aws_schedulers: { name: 'f_name' },
  results: { job_key: 'f_job_key', run_id: 'f_run_id' },
  events: { timestamp: 'f_timestamp', category: 'f_category' },
  compute_nodes: { hostname: 'f_hostname', is_active: 'f_is_active' },
  job_process_stats: { job_key: 'f_job_key' },
  scheduled_compute_nodes: { status: 'f_status', scheduler_config_id: 'f_scheduler_config_id' },
};

/**
 * Fields kept in a plain column that the store writes itself (on insert, and on a write that sets
 * the field's top-level field), instead of the generated column of HOT_FIELDS, for the indexes
 * over them. SQLite cannot tell which generated columns an UPDATE of the body changed, so every
 * index over one is rewritten by every job UPDATE, and each such rewrite evaluates json_extract
 * over the old and the new body (the key to delete, the key to insert): a job's name never
 * changes, yet its (workflow, name) entry was deleted and inserted again 2.75 times per lifecycle;
 * the (workflow, status) index and the three partial claim indexes each parsed both bodies on
 * every claim, start and completion. A plain column the UPDATE does not assign leaves its indexes
 * alone, and one it assigns is bound from the document in JS (storedValue), with no JSON parse.
 * The value is `json_extract(body, path)`, as the generated column's, so queries see the same
 * values; files made before get the columns and their values at open (see the migrations in
 * sqlite-store.ts), and lose the generated columns (DROPPED_GENERATED).
 */
export const STORED_FIELDS: Partial<Record<CollectionName, Readonly<Record<string, string>>>> = {
  jobs: {
    name: 's_name',
    status: 's_status',
    'internal.num_gpus': 's_gpus',
    'internal.runtime_seconds': 's_runtime',
    'internal.memory_bytes': 's_memory',
    'internal.num_cpus': 's_cpus',
    // Not indexed (COMPOSITE_ONLY): every claim filters its candidates by them, and as
    // json_extract(body, ...) each candidate row's JSON was parsed for it (~5% of the server's CPU
    // under 64 claimers, perf: jsonTranslateTextToBlob, jsonLookupStep).
    'internal.num_nodes': 's_nodes',
    'internal.scheduler_config_id': 's_sched',
    // The lease pass asks for the held jobs whose holder is not a live node: one JSON parse per
    // held job (90,000 held: ~140 ms of the server's thread every 15 s) as json_extract.
    'internal.compute_node_key': 's_holder',
  },
};

/**
 * Extra composite indexes beyond (workflow, hot field). The two job sort indexes serve the claim
 * sort orders (gpus_runtime_memory, gpus_memory_runtime): descending columns, so a forward scan
 * also gives ties in insertion order (rid ascending) and a claim reads only the jobs it hands out.
 *
 * `where` makes an index partial. The claim indexes hold only claimable jobs: every job update
 * that sets the status rewrites every index over the status column, and a lifecycle sets a job's
 * status four times (claim, start, complete, unblock), but only two of those touch a claimable
 * row (blocked → ready, ready → claimed).
 * SQLite uses a partial index only when a term of the query is the index's condition, or one
 * branch of its OR (sqlite3ExprImpliesExpr), so the store writes claimable statuses into the SQL
 * as literals (see INLINE_STATUS), never as bound parameters.
 */
interface ExtraIndex {
  cols: readonly string[];
  where?: string;
}

/** A job status the claim indexes hold (a literal in their WHERE, see INLINE_STATUS). */
export const CLAIMABLE_INDEX_WHERE = "(s_status = 'ready' OR s_status = 'scheduled')";

const EXTRA_INDEXES: Partial<Record<CollectionName, readonly ExtraIndex[]>> = {
  jobs: [
    { cols: ['workflow', 's_status', 's_gpus DESC', 's_runtime DESC', 's_memory DESC'], where: CLAIMABLE_INDEX_WHERE },
    { cols: ['workflow', 's_status', 's_gpus DESC', 's_memory DESC', 's_runtime DESC'], where: CLAIMABLE_INDEX_WHERE },
    // "Does any job fit what is left?" in O(log n): a range on CPUs, ties in insertion order.
    { cols: ['workflow', 's_status', 's_cpus'], where: CLAIMABLE_INDEX_WHERE },
  ],
  results: [{ cols: ['workflow', 'f_job_key', 'f_run_id'] }],
};

/**
 * Collection → column whose equality conditions the store writes as SQL literals when the value
 * is a plain lowercase word (a job status). A bound parameter compared with a partial index's
 * condition makes SQLite re-prepare the statement whenever that parameter is bound to a new
 * value (it plans for the value), which would cost a parse per query.
 */
export const INLINE_STATUS: Partial<Record<CollectionName, string>> = { jobs: 's_status' };

/**
 * Hot columns that get no (workflow, column) index of their own: they are read through the
 * composite indexes above (or, events' category, through another index), and every index costs each write of the document (initializing
 * 100,000 jobs: 11 job indexes 6.4 s, 7 indexes 4.8 s). Files made before this drop them.
 */
const COMPOSITE_ONLY: Partial<Record<CollectionName, readonly string[]>> = {
  jobs: ['s_gpus', 's_runtime', 's_memory', 's_cpus', 's_nodes', 's_sched', 's_holder'],
  // (workflow, job_key) is a prefix of (workflow, job_key, run_id): a second b-tree per result for nothing.
  // Results are read by (job, run) and by job, or listed whole; a run_id filter alone walks the
  // workflow's entries of the composite index (not the table).
  results: ['f_job_key', 'f_run_id'],
  // Events are read after a timestamp, with or without a category: (workflow, timestamp) serves
  // both (the category is checked on the rows in the timestamp range), and an event is inserted
  // ~2.25 times per job lifecycle, so every index on it is paid on the hot path.
  events: ['f_category'],
};

/**
 * Collections written on the hot path of a job lifecycle (per job ~2.25 events, 1 result, 1
 * executed and 1 returned edge) that get no (workflow) index: another index starts with
 * `workflow` and serves the same lookups and deletes (a workflow's documents, delete of a
 * workflow). The one thing a (workflow) index gives on top is insertion order within a workflow
 * for free: a plain list of these collections sorts the workflow's matches instead (one sort
 * per query, bounded by skip + limit). Jobs keep theirs: a job is inserted once, and UPDATEs of
 * the body never touch an index on `workflow` alone.
 *
 * Edge tables: (workflow, efrom) and (workflow, eto) in place of (efrom), (eto) and (workflow).
 * Every edge query of the store names the workflow, including the cascade when a vertex goes (an
 * edge lives in the workflow of its ends: the server checks both ends are documents of the
 * workflow, and no edge collection has an end in a global collection).
 */
const NO_WORKFLOW_INDEX: ReadonlySet<string> = new Set<string>(['events', 'results', ...EDGE_COLLECTION_NAMES]);

/**
 * Edge collections with no (workflow, efrom) index. `executed` (compute node → job, one per job
 * started) has few `from` values, one per compute node, and each takes its new edges at the end of
 * its own range of the index: a commit of a few job starts from different nodes dirtied a leaf
 * page per node (14% of all WAL pages a job lifecycle wrote, 1 page per lifecycle). Nothing reads
 * it by `from` but the cascade when one compute node is removed (a rare call of the generic API),
 * which then walks the workflow's executed edges in (workflow, eto).
 */
const NO_FROM_INDEX: ReadonlySet<string> = new Set<string>(['executed']);

/** Indexes older versions created that nothing reads any more (or that are now partial, under another name). */
const DROPPED_INDEXES = [
  'ix_jobs_workflow_f_status_f_gpus_f_runtime_f_memory',
  'ix_jobs_workflow_f_status_f_gpus_DESC_f_runtime_DESC_f_memory_DESC',
  'ix_jobs_workflow_f_status_f_gpus_DESC_f_memory_DESC_f_runtime_DESC',
  'ix_jobs_workflow_f_status_json_extract_body_internal_num_cpus_',
  // The claim indexes over generated columns (and json_extract of the body), before STORED_FIELDS had them.
  'ix_jobs_workflow_f_status_f_gpus_DESC_f_runtime_DESC_f_memory_DESC_claimable',
  'ix_jobs_workflow_f_status_f_gpus_DESC_f_memory_DESC_f_runtime_DESC_claimable',
  'ix_jobs_workflow_f_status_json_extract_body_internal_num_cpus__claimable',
  // Replaced by (workflow, efrom) and (workflow, eto); see NO_WORKFLOW_INDEX.
  ...EDGE_COLLECTION_NAMES.flatMap((e) => [`ix_${e}_from`, `ix_${e}_to`]),
];

/**
 * Generated columns older versions made, dropped at open. SQLite computes every generated column of
 * a row it writes, indexed or not (it builds the whole new row): the jobs table's six, over the
 * body, cost a JSON parse per job INSERT and UPDATE after their indexes had moved to STORED_FIELDS
 * (a claim's UPDATE, raw: 4.8 µs with none, 5.8 µs with two unindexed ones, 8.1 µs with them
 * indexed). A field without a column is read as json_extract(body, path) (fieldExpr), which is what
 * the virtual column computed anyway.
 */
export const DROPPED_GENERATED: Partial<Record<CollectionName, readonly string[]>> = {
  jobs: ['f_status', 'f_name', 'f_gpus', 'f_runtime', 'f_memory', 'f_scheduler'],
};

/**
 * For a table made with columns of DROPPED_GENERATED (`has`: its columns; `indexes`: its indexes'
 * names and SQL): drop the indexes that read one (SQLite refuses to drop an indexed column), then
 * the columns. Run after schemaStatements, which drops the indexes it knows by name.
 */
export function generatedColumnDrops(name: CollectionName, has: ReadonlySet<string>, indexes: readonly { name: string; sql: string | null }[]): string[] {
  const cols = (DROPPED_GENERATED[name] ?? []).filter((c) => has.has(c));
  if (cols.length === 0) return [];
  const reads = new RegExp(`\\b(${cols.join('|')})\\b`);
  return [
    ...indexes.filter((ix) => ix.sql !== null && reads.test(ix.sql)).map((ix) => `DROP INDEX IF EXISTS "${ix.name}"`),
    ...cols.map((c) => `ALTER TABLE "${name}" DROP COLUMN ${c}`),
  ];
}

export function jsonPath(field: string): string {
  return '$' + field.split('.').map((seg) => `."${seg}"`).join('');
}

/**
 * For a table made before STORED_FIELDS: the columns to add (run before schemaStatements, which
 * indexes them). `has` lists the table's columns; an empty list: no table yet (CREATE makes them).
 */
export function storedColumnMigrations(name: CollectionName, has: ReadonlySet<string>): string[] {
  if (has.size === 0) return [];
  return Object.values(STORED_FIELDS[name] ?? {})
    .filter((col) => !has.has(col))
    .map((col) => `ALTER TABLE "${name}" ADD COLUMN ${col}`);
}

/**
 * Sets each stored column to what its field holds where it does not (after schemaStatements): the
 * values of a column just added, or of rows written by a version that did not know the column.
 */
export function storedColumnBackfills(): string[] {
  const out: string[] = [];
  for (const name of ALL_COLLECTION_NAMES) {
    const pairs = Object.entries(STORED_FIELDS[name] ?? {}).map(([field, col]) => [col, `json_extract(body, '${jsonPath(field)}')`] as const);
    if (pairs.length === 0) continue;
    // One pass over the table (SQLite parses each body once for all the columns).
    out.push(`UPDATE "${name}" SET ${pairs.map(([c, e]) => `${c} = ${e}`).join(', ')} WHERE ${pairs.map(([c, e]) => `${c} IS NOT ${e}`).join(' OR ')}`);
  }
  return out;
}

/** The statements that create every table and index. Idempotent. */
export function schemaStatements(): string[] {
  const out: string[] = [];
  for (const name of ALL_COLLECTION_NAMES) {
    const hot = HOT_FIELDS[name] ?? {};
    const cols = [
      'rid INTEGER PRIMARY KEY',
      'key TEXT NOT NULL UNIQUE',
      'workflow TEXT',
      'rev TEXT NOT NULL',
      'body TEXT NOT NULL',
    ];
    if (isEdgeCollection(name)) cols.push('efrom TEXT NOT NULL', 'eto TEXT NOT NULL');
    const stored = STORED_FIELDS[name] ?? {};
    for (const col of Object.values(stored)) cols.push(col);
    for (const [field, col] of Object.entries(hot)) {
      cols.push(`${col} GENERATED ALWAYS AS (json_extract(body, '${jsonPath(field)}')) VIRTUAL`);
    }
    out.push(`CREATE TABLE IF NOT EXISTS "${name}" (${cols.join(', ')})`);
    if (NO_WORKFLOW_INDEX.has(name)) out.push(`DROP INDEX IF EXISTS "ix_${name}_workflow"`);
    else out.push(`CREATE INDEX IF NOT EXISTS "ix_${name}_workflow" ON "${name}" (workflow)`);
    for (const [field, col] of Object.entries(hot)) {
      if (COMPOSITE_ONLY[name]?.includes(col) || stored[field] !== undefined) out.push(`DROP INDEX IF EXISTS "ix_${name}_${col}"`);
      else out.push(`CREATE INDEX IF NOT EXISTS "ix_${name}_${col}" ON "${name}" (workflow, ${col})`);
    }
    for (const col of Object.values(stored)) {
      if (COMPOSITE_ONLY[name]?.includes(col)) out.push(`DROP INDEX IF EXISTS "ix_${name}_${col}"`);
      else out.push(`CREATE INDEX IF NOT EXISTS "ix_${name}_${col}" ON "${name}" (workflow, ${col})`);
    }
    for (const idx of EXTRA_INDEXES[name] ?? []) {
      const ixName = `ix_${name}_${idx.cols.join('_').replace(/[^A-Za-z0-9_]+/g, '_')}${idx.where ? '_claimable' : ''}`;
      out.push(`CREATE INDEX IF NOT EXISTS "${ixName}" ON "${name}" (${idx.cols.join(', ')})${idx.where ? ` WHERE ${idx.where}` : ''}`);
    }
    if (isEdgeCollection(name)) {
      if (NO_FROM_INDEX.has(name)) out.push(`DROP INDEX IF EXISTS "ix_${name}_workflow_from"`);
      else out.push(`CREATE INDEX IF NOT EXISTS "ix_${name}_workflow_from" ON "${name}" (workflow, efrom)`);
      out.push(`CREATE INDEX IF NOT EXISTS "ix_${name}_workflow_to" ON "${name}" (workflow, eto)`);
    }
  }
  for (const ix of DROPPED_INDEXES) out.push(`DROP INDEX IF EXISTS "${ix}"`);
  return out;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The SQL value of a JSON number as SQLite's json_extract reads it from JSON.stringify's text: an
 * integer (bound as a BigInt, since better-sqlite3 binds every number as a REAL) when the text is
 * digits that fit 64 bits (2 ** 62 is written 4611686018427388000, and read so), else a REAL;
 * NaN and ±Infinity are written null.
 */
function sqlNumber(n: number): unknown {
  if (Number.isSafeInteger(n)) return BigInt(n);
  if (!Number.isFinite(n)) return null;
  if (!Number.isInteger(n)) return n;
  const text = JSON.stringify(n);
  if (!/^-?[0-9]+$/.test(text)) return n;
  const b = BigInt(text);
  return b >= INT64_MIN && b <= INT64_MAX ? b : n;
}

/** The SQL value of what JSON.stringify writes for `v` (where it is written at all), as json_extract gives it. */
function sqlOfJson(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return sqlNumber(v);
    case 'boolean':
      return v ? 1n : 0n;
    case 'object': {
      if (v === null) return null;
      const text = JSON.stringify(v);
      // An object or array: its JSON text. Anything else went through toJSON (a Date: a string).
      if (text === undefined) return null;
      return text.startsWith('{') || text.startsWith('[') ? text : sqlOfJson(JSON.parse(text));
    }
    default:
      return null; // undefined, a function, a symbol: left out of the JSON
  }
}

const isEnumerable = Object.prototype.propertyIsEnumerable;

/**
 * What `json_extract(JSON.stringify(doc), jsonPath(segs.join('.')))` gives, from the document
 * itself (the bound JSON is not parsed again): the value of a stored column (STORED_FIELDS).
 * Strings, including lone surrogates, bind to the bytes json_extract gives (tested).
 */
export function storedValue(doc: Record<string, unknown>, segs: readonly string[]): unknown {
  let v: unknown = doc;
  for (const seg of segs) {
    if (v === null || typeof v !== 'object') return null;
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      // Written as what its toJSON gives (rare: the store's documents are plain JSON values).
      const text = JSON.stringify(v);
      v = text === undefined ? null : (JSON.parse(text) as unknown);
      if (v === null || typeof v !== 'object') return null;
    }
    if (Array.isArray(v) || !isEnumerable.call(v, seg)) return null;
    v = (v as Record<string, unknown>)[seg];
  }
  return sqlOfJson(v);
}
