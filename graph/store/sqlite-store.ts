/**
 * SqliteGraphStore: the embedded default store (better-sqlite3, one file, WAL).
 *
 * better-sqlite3 is synchronous, so each port operation runs to completion without yielding.
 * A transaction is a SAVEPOINT around an async callback, inside a group commit (BEGIN IMMEDIATE …
 * COMMIT from setImmediate, see runTransaction); while one is open, writes from outside it wait on
 * a queue, so nothing interleaves with it (SQLite has one writer anyway), and a single write
 * outside a transaction is a transaction of its own. Every caller is answered after the COMMIT.
 * Reads from outside a transaction are served at once, from the one connection: like reads made
 * while a transaction is open, they may see changes of the group not yet committed.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { dirname, resolve } from 'node:path';
import {
  ALL_COLLECTION_NAMES,
  EDGE_COLLECTION_NAMES,
  GLOBAL_COLLECTIONS,
  JOB_STATUSES,
  WORKFLOW_COLLECTION_NAMES,
  collectionOf,
  isEdgeCollection,
  type CollectionName,
  type EdgeCollectionName,
} from '../model.js';
import { WeftError, notFound, revisionConflict } from '../errors.js';
import type {
  Condition,
  Direction,
  Doc,
  EdgeDoc,
  EdgeQuery,
  FindOptions,
  FindResult,
  GraphStore,
  Neighbor,
  StoreCapabilities,
  Where,
  WriteOptions,
} from './port.js';
import { WalCheckpointer, type CheckpointStats, type CheckpointTuning } from './sqlite-checkpointer.js';
import { DROPPED_GENERATED, HOT_FIELDS, INLINE_STATUS, STORED_FIELDS, generatedColumnDrops, jsonPath, schemaStatements, storedColumnBackfills, storedColumnMigrations, storedValue } from './sqlite-schema.js';

export interface SqliteGraphStoreOptions {
  /** Database file path, or ':memory:' (unit tests only). */
  path: string;
  /**
   * Who copies the WAL into the database file: 'thread' (default for a file: a worker thread,
   * see sqlite-checkpointer.ts) or 'inline' (SQLite's automatic checkpoint, in the COMMIT that
   * passes 1,000 pages). WEFT_SQLITE_CHECKPOINT=inline sets the default (for comparisons).
   */
  checkpoint?: 'thread' | 'inline';
  /** The checkpoint thread's pace and bounds (tests; see sqlite-checkpointer.ts for the defaults). */
  checkpointTuning?: Partial<CheckpointTuning>;
  /**
   * Bounds of a group commit (see runTransaction): it is committed at the end of the transaction
   * that has it open `maxMs` or holding `maxTransactions`, else when no transaction waits.
   * Defaults GROUP_MAX_TX and GROUP_MAX_MS; WEFT_SQLITE_GROUP_MS / WEFT_SQLITE_GROUP_TX set them
   * (comparisons). 0 or less: that bound is off (not both: a busy store would never commit).
   */
  groupCommit?: { maxMs?: number; maxTransactions?: number };
}

interface KeyStatements {
  getWf: Database.Statement;
  getGlobal: Database.Statement;
  update: Database.Statement;
  insert: Database.Statement;
  /** The stored columns (STORED_FIELDS), in the order the insert binds them. */
  stored: StoredColumn[];
  /** Their top-level fields: an update patch that sets none of them leaves the stored columns as they are. */
  storedTops: string[];
  /**
   * By the set of top-level fields a write sets (bit i: storedTops[i]), the update that also
   * assigns the stored columns under them, and only those: an index over a column the UPDATE
   * does not assign is left alone (a job's start sets its status, never its resources).
   */
  updateStored: Map<number, { stmt: Database.Statement; cols: StoredColumn[] }>;
}

interface StoredColumn {
  col: string;
  /** The field's path segments (storedValue). */
  segs: string[];
  /** Bit of its top-level field in KeyStatements.storedTops. */
  bit: number;
}

interface Row {
  rid: number;
  key: string;
  workflow: string | null;
  rev: string;
  body: string;
}

const META_FIELDS = new Set(['_key', '_id', '_rev']);
const SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const IN_CHUNK = 500;
/** At most this many rows kept per group commit (a transaction reading a whole workflow keeps the first ones only). */
const ROW_CACHE_MAX = 4096;
/** Field paths whose SQL expression is kept (clients' filters name fields too: bounded). */
const FIELD_EXPR_MAX = 1024;
/** Shapes of find whose statement is kept by shape (the rest build their SQL each time, as before). */
const FIND_SHAPES_MAX = 512;
/**
 * Values written into SQL as string literals (see INLINE_STATUS): the job statuses only, so they
 * are safe to inline and a client's filter values cannot grow the statement cache.
 */
const LITERAL_STATUSES: ReadonlySet<unknown> = new Set<string>(JOB_STATUSES);

function toSqlValue(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return v;
}

function conditionsOf(where: Where | undefined): Condition[] {
  if (!where) return [];
  if (Array.isArray(where)) return where as Condition[];
  return Object.entries(where as Record<string, unknown>).map(([field, value]) => ({ field, op: '==' as const, value }));
}

/** 'l<status>' strings made once each (conditionKind runs for every condition of every find). */
const LITERAL_KINDS = new Map<string, string>();

function literalKind(status: string): string {
  let kind = LITERAL_KINDS.get(status);
  if (kind === undefined) {
    kind = `l${status}`;
    LITERAL_KINDS.set(status, kind);
  }
  return kind;
}

/**
 * What a condition compiles to, without its SQL: 'n' (a NULL test), 'l<status>' (a status literal
 * inlined, so the partial claim indexes can be used; see sqlite-schema.ts), 'p' (one parameter) or
 * 'i<n>' (a list of n parameters); its parameters are pushed onto `params`. null: an unknown
 * operator. find() keys its statements by these kinds and whereSql() builds its SQL from them, so
 * the two always agree on the parameters.
 */
function conditionKind(c: Condition, inlineStatus: boolean, params: unknown[]): string | null {
  switch (c.op) {
    case '==':
    case '!=':
      if (c.value === null || c.value === undefined) return 'n';
      if (c.op === '==' && inlineStatus && LITERAL_STATUSES.has(c.value)) return literalKind(c.value as string);
      params.push(toSqlValue(c.value));
      return 'p';
    case '<':
    case '<=':
    case '>':
    case '>=':
      params.push(toSqlValue(c.value));
      return 'p';
    case 'in':
    case 'not_in': {
      const values = Array.isArray(c.value) ? c.value : [c.value];
      for (const v of values) params.push(toSqlValue(v));
      return `i${values.length}`;
    }
    default:
      return null;
  }
}

/** The SQL of a condition of `kind` (conditionKind) on the expression `expr`. */
function conditionSql(op: Condition['op'], kind: string, expr: string): string {
  if (op === '==') return kind === 'n' ? `${expr} IS NULL` : kind === 'p' ? `${expr} = ?` : `${expr} = '${kind.slice(1)}'`;
  if (op === '!=') return kind === 'n' ? `${expr} IS NOT NULL` : `(${expr} IS NULL OR ${expr} != ?)`;
  if (op === 'in' || op === 'not_in') {
    const n = Number(kind.slice(1));
    if (n === 0) return op === 'in' ? '0' : '1';
    const list = Array.from({ length: n }, () => '?').join(', ');
    return op === 'in' ? `${expr} IN (${list})` : `(${expr} IS NULL OR ${expr} NOT IN (${list}))`;
  }
  return `${expr} ${op} ?`;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * PRAGMA user_version of a file whose stored columns are filled for the layout of sqlite-schema.ts
 * (0: made before; 1: before s_nodes, s_sched and s_holder, which the next open adds and fills).
 */
export const STORE_LAYOUT_VERSION = 2;

/**
 * SQLite's page cache of the main connection, KiB (WEFT_SQLITE_CACHE_MIB overrides it).
 *
 * Small on purpose: a COMMIT costs a walk over every page in this cache. When a transaction split
 * or merged b-tree pages (balance_nonroot; nearly every group of claims or completions does), the
 * split parks a page at the lock-byte page's number for a moment (262,145 with 4 KiB pages), and
 * the end of the transaction then drops the cached pages past the end of the database by visiting
 * every one of them (pcache1TruncateUnsafe: for a database under 1 GiB the range is wider than the
 * hash table). With 64 MiB (16,384 pages, what the store had) that walk was ~5% of the server's
 * CPU under 64 claimers and ~20% when commits are small (one claim each). bench/engine-claims.ts,
 * 64 MiB vs 8 MiB alternated: server CPU per claim 0.178-0.181 vs 0.161-0.162 ms (closed loop)
 * and 0.50-0.55 vs 0.43-0.45 ms (paced); create + initialize 100,000 jobs 4.2-4.3 vs 4.4 s. What
 * a job lifecycle touches (the claimable end of the claim indexes, the rows being claimed and
 * completed, the tails of events and results) fits in far less; other pages come from the
 * operating system's cache.
 */
const DEFAULT_CACHE_KIB = 8 * 1024;

function cacheKiB(): number {
  const mib = envBound('WEFT_SQLITE_CACHE_MIB');
  return mib !== undefined && mib > 0 ? Math.round(mib * 1024) : DEFAULT_CACHE_KIB;
}

/** Holds the synchronous implementation; the public store and transaction handles wrap it. */
class SqliteCore {
  readonly db: Database.Database;
  private keyCounter = 0;
  private revCounter = 0;
  private readonly revPrefix = randomBytes(3).toString('hex');
  private readonly stmtCache = new Map<string, Database.Statement>();
  /** Per collection, the statements of the by-key paths (no SQL text built and hashed per call). */
  private readonly keyStmts = new Map<string, KeyStatements>();
  /**
   * Rows read or written while a group commit is open (collection + NUL + key → row), so that
   * an update of a document just read does not read it again, and the transactions of one group
   * (the completions of one complete_jobs, their claim) read the workflow status and the compute
   * node once. Only while `rowsOn`: from the group's BEGIN IMMEDIATE to its COMMIT or ROLLBACK,
   * when this connection holds SQLite's write lock, so no other connection can change a row.
   * A ROLLBACK TO of one transaction forgets them all; so does any write other than `write`
   * (which keeps the row it wrote) and `insert`. Writes through the raw `database` handle while
   * a group is open would bypass it (benchmarks and tests use it outside groups only).
   */
  private rows = new Map<string, Row>();
  private rowsOn = false;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = OFF');
    this.db.pragma(`cache_size = -${cacheKiB()}`);
    this.db.pragma('temp_store = MEMORY');
  }

  init(): void {
    this.db.transaction(() => {
      for (const name of Object.keys(STORED_FIELDS) as CollectionName[]) {
        const has = new Set((this.db.prepare(`SELECT name FROM pragma_table_info(?)`).all(name) as { name: string }[]).map((r) => r.name));
        for (const s of storedColumnMigrations(name, has)) this.db.exec(s);
      }
      for (const s of schemaStatements()) this.db.exec(s);
      for (const name of Object.keys(DROPPED_GENERATED) as CollectionName[]) {
        const has = new Set((this.db.prepare(`SELECT name FROM pragma_table_xinfo(?)`).all(name) as { name: string }[]).map((r) => r.name));
        const indexes = this.db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?`).all(name) as { name: string; sql: string | null }[];
        for (const s of generatedColumnDrops(name, has, indexes)) this.db.exec(s);
      }
      // The backfill scans every table with stored columns (100,000 jobs: ~65 ms per open), so a
      // file this layout has already filled is marked and skips it. Versions before the mark
      // cannot write to a file after its generated columns were dropped.
      if ((this.db.pragma('user_version', { simple: true }) as number) < STORE_LAYOUT_VERSION) {
        for (const s of storedColumnBackfills()) this.db.exec(s);
        this.db.pragma(`user_version = ${STORE_LAYOUT_VERSION}`);
      }
    })();
    for (const name of ALL_COLLECTION_NAMES) {
      const row = this.db.prepare(`SELECT MAX(CAST(key AS INTEGER)) AS m FROM "${name}" WHERE key GLOB '[0-9]*'`).get() as { m: number | null };
      if (row.m !== null && row.m > this.keyCounter) this.keyCounter = row.m;
    }
  }

  stmt(sql: string): Database.Statement {
    let s = this.stmtCache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmtCache.set(sql, s);
    }
    return s;
  }

  /** Start or end (and forget) the row cache of one logical transaction. */
  rowCache(on: boolean): void {
    this.forgetRows();
    this.rowsOn = on;
  }

  /**
   * A new Map, never `clear()`: V8's clear() leaves the old hash table pointing to the new one
   * (for live iterators), so once one table of this long-lived Map reached the old generation,
   * each later table and the rows in it were kept alive by its predecessor through every
   * scavenge and promoted: ~1 MB per scavenge in a closed claim loop, a Mark-Compact every few
   * seconds (10-55 ms pauses in the server). In process, 64 claimers: promoted per scavenge
   * 5.0% -> 3.3% of what was allocated; one claimer: 8.1% -> 3.5%.
   */
  forgetRows(): void {
    if (this.rows.size > 0) this.rows = new Map();
  }

  private remember(collection: string, row: Row): void {
    if (this.rowsOn && this.rows.size < ROW_CACHE_MAX) this.rows.set(`${collection}\0${row.key}`, row);
  }

  /** Made through `stmt` (one cache of prepared statements, which tests can observe). */
  private keyStmt(collection: CollectionName): KeyStatements {
    let k = this.keyStmts.get(collection);
    if (!k) {
      k = {
        getWf: this.stmt(`SELECT ${this.cols(collection)} FROM "${collection}" WHERE key = ? AND workflow = ?`),
        getGlobal: this.stmt(`SELECT ${this.cols(collection)} FROM "${collection}" WHERE key = ? AND workflow IS NULL`),
        update: this.stmt(`UPDATE "${collection}" SET rev = ?, body = ? WHERE rid = ?`),
        insert: isEdgeCollection(collection)
          ? this.stmt(`INSERT INTO "${collection}" (key, workflow, rev, body, efrom, eto) VALUES (?, ?, ?, ?, ?, ?)`)
          : this.stmt(`INSERT INTO "${collection}" (key, workflow, rev, body) VALUES (?, ?, ?, ?)`),
        stored: [],
        storedTops: [],
        updateStored: new Map(),
      };
      const stored = Object.entries(STORED_FIELDS[collection] ?? {});
      if (stored.length > 0) {
        k.storedTops = [...new Set(stored.map(([field]) => field.split('.')[0]!))];
        const tops = k.storedTops;
        k.stored = stored.map(([field, col]) => {
          const segs = field.split('.');
          return { col, segs, bit: 1 << tops.indexOf(segs[0]!) };
        });
        // The values are bound from the document (storedValue), exactly what json_extract of the body gives.
        k.insert = this.stmt(
          `INSERT INTO "${collection}" (key, workflow, rev, body, ${k.stored.map((c) => c.col).join(', ')}) VALUES (?, ?, ?, ?${', ?'.repeat(k.stored.length)})`,
        );
      }
      this.keyStmts.set(collection, k);
    }
    return k;
  }

  /** The update of the body and of the stored columns under the top-level fields of `touched` (KeyStatements.updateStored). */
  private storedUpdate(collection: CollectionName, k: KeyStatements, touched: number): { stmt: Database.Statement; cols: StoredColumn[] } {
    let u = k.updateStored.get(touched);
    if (u === undefined) {
      const cols = k.stored.filter((c) => (c.bit & touched) !== 0);
      u = { stmt: this.stmt(`UPDATE "${collection}" SET rev = ?, body = ?, ${cols.map((c) => `${c.col} = ?`).join(', ')} WHERE rid = ?`), cols };
      k.updateStored.set(touched, u);
    }
    return u;
  }

  newKey(): string {
    return String(++this.keyCounter);
  }

  noteKey(key: string): void {
    if (/^[0-9]{1,15}$/.test(key)) {
      const n = Number(key);
      if (n > this.keyCounter) this.keyCounter = n;
    }
  }

  newRev(): string {
    return `${this.revPrefix}${(++this.revCounter).toString(36)}`;
  }

  toDoc(collection: string, row: Row): Doc {
    const body = JSON.parse(row.body) as Record<string, unknown>;
    return { _key: row.key, _id: `${collection}/${row.key}`, _rev: row.rev, ...body };
  }

  private wfClause(workflow: string | null): string {
    return workflow === null ? 'workflow IS NULL' : 'workflow = ?';
  }

  private wfParams(workflow: string | null): unknown[] {
    return workflow === null ? [] : [workflow];
  }

  /** find's statements by shape (see findShape), up to FIND_SHAPES_MAX. */
  private readonly findStmts = new Map<string, Database.Statement>();
  /** fieldExpr's answers per collection, up to FIELD_EXPR_MAX fields each: every find names its fields. */
  private readonly fieldExprs = new Map<string, Map<string, string>>();

  fieldExpr(collection: CollectionName, field: string): string {
    let known = this.fieldExprs.get(collection);
    if (known === undefined) {
      known = new Map();
      this.fieldExprs.set(collection, known);
    }
    let expr = known.get(field);
    if (expr === undefined) {
      expr = this.fieldExprOf(collection, field);
      if (known.size < FIELD_EXPR_MAX) known.set(field, expr);
    }
    return expr;
  }

  private fieldExprOf(collection: CollectionName, field: string): string {
    if (field === '_key') return 'key';
    if (field === '_seq') return 'rid';
    if (field === '_rev') return 'rev';
    if (field === '_id') return `('${collection}/' || key)`;
    if (isEdgeCollection(collection) && field === '_from') return 'efrom';
    if (isEdgeCollection(collection) && field === '_to') return 'eto';
    const stored = STORED_FIELDS[collection]?.[field];
    if (stored) return stored;
    const hot = HOT_FIELDS[collection]?.[field];
    if (hot) return hot;
    const segs = field.split('.');
    if (segs.some((s) => !SEGMENT.test(s))) {
      throw new WeftError('VALIDATION_FAILED', `Invalid field path: ${field}`, { details: [{ path: [field], message: 'invalid field path', rule: 'field_path' }] });
    }
    return `json_extract(body, '${jsonPath(field)}')`;
  }

  /** `inSortOrder`: every condition but equality gets a unary plus, which keeps it out of index selection. */
  whereSql(collection: CollectionName, workflow: string | null, where: Where | undefined, inSortOrder = false): { sql: string; params: unknown[] } {
    const parts = [this.wfClause(workflow)];
    const params = this.wfParams(workflow);
    for (const c of conditionsOf(where)) {
      const field = this.fieldExpr(collection, c.field);
      const kind = conditionKind(c, field === INLINE_STATUS[collection], params);
      if (kind === null) throw new WeftError('VALIDATION_FAILED', `Unknown operator ${String((c as Condition).op)}`);
      parts.push(conditionSql(c.op, kind, (inSortOrder && c.op !== '==' ? '+' : '') + field));
    }
    return { sql: parts.join(' AND '), params };
  }

  cols(collection: CollectionName): string {
    return 'rid, key, workflow, rev, body';
  }

  getRow(collection: CollectionName, workflow: string | null, key: string): Row | undefined {
    if (this.rowsOn) {
      const cached = this.rows.get(`${collection}\0${key}`);
      if (cached) return cached.workflow === workflow ? cached : undefined;
    }
    const k = this.keyStmt(collection);
    const row = (workflow === null ? k.getGlobal.get(key) : k.getWf.get(key, workflow)) as Row | undefined;
    if (row) this.remember(collection, row);
    return row;
  }

  insert(collection: CollectionName, workflow: string | null, input: Record<string, unknown>): Doc {
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) if (!META_FIELDS.has(k) && v !== undefined) body[k] = v;
    let key: string;
    if (typeof input._key === 'string' && input._key !== '') {
      key = input._key;
      if (!SEGMENT.test(key) && !/^[0-9A-Za-z_\-:.@()+,=;$!*'%]+$/.test(key)) {
        throw new WeftError('VALIDATION_FAILED', `Invalid _key: ${key}`, { details: [{ path: ['_key'], message: 'invalid key', rule: 'key' }] });
      }
      if (this.stmt(`SELECT 1 FROM "${collection}" WHERE key = ?`).get(key)) {
        throw new WeftError('DUPLICATE_KEY', `${collection} document with _key ${key} already exists`, { extra: { collection, key } });
      }
      this.noteKey(key);
    } else {
      key = this.newKey();
    }
    const rev = this.newRev();
    const json = JSON.stringify(body);
    if (isEdgeCollection(collection)) {
      const from = body._from;
      const to = body._to;
      if (typeof from !== 'string' || typeof to !== 'string') {
        throw new WeftError('VALIDATION_FAILED', 'An edge needs _from and _to', { details: [{ path: ['_from'], message: 'required', rule: 'required' }] });
      }
      this.keyStmt(collection).insert.run(key, workflow, rev, json, from, to);
    } else {
      const k = this.keyStmt(collection);
      if (k.stored.length === 0) k.insert.run(key, workflow, rev, json);
      else k.insert.run(key, workflow, rev, json, ...k.stored.map((c) => storedValue(body, c.segs)));
    }
    return { _key: key, _id: `${collection}/${key}`, _rev: rev, ...body };
  }

  write(collection: CollectionName, workflow: string | null, key: string, next: Record<string, unknown>, mode: 'update' | 'replace', opts?: WriteOptions): Doc;
  write(collection: CollectionName, workflow: string | null, key: string, next: Record<string, unknown>, mode: 'update' | 'replace', opts: WriteOptions | undefined, ifExists: true): Doc | null;
  /** `ifExists`: a missing document gives null instead of DOCUMENT_NOT_FOUND (updateMany skips it with one read). */
  write(collection: CollectionName, workflow: string | null, key: string, next: Record<string, unknown>, mode: 'update' | 'replace', opts?: WriteOptions, ifExists = false): Doc | null {
    const row = this.getRow(collection, workflow, key);
    if (!row) {
      if (ifExists) return null;
      throw notFound(collection, key);
    }
    if (opts?.rev !== undefined && opts.rev !== row.rev) throw revisionConflict(`${collection}/${key}`, row.rev);
    const current = JSON.parse(row.body) as Record<string, unknown>;
    const body: Record<string, unknown> = mode === 'update' ? current : {};
    for (const k of Object.keys(next)) {
      if (META_FIELDS.has(k) || k === '_from' || k === '_to') continue;
      const v = next[k];
      if (v === undefined) delete body[k];
      else body[k] = v;
    }
    if (isEdgeCollection(collection)) {
      body._from = current._from;
      body._to = current._to;
    }
    const rev = this.newRev();
    const json = JSON.stringify(body);
    const k = this.keyStmt(collection);
    // A stored column is written only when the write may change its field (its indexes are left alone otherwise).
    let touched = 0;
    if (k.stored.length > 0) {
      if (mode === 'replace') touched = (1 << k.storedTops.length) - 1;
      else for (let i = 0; i < k.storedTops.length; i++) if (k.storedTops[i]! in next) touched |= 1 << i;
    }
    if (touched === 0) k.update.run(rev, json, row.rid);
    else {
      const u = this.storedUpdate(collection, k, touched);
      const args: unknown[] = [rev, json];
      for (const c of u.cols) args.push(storedValue(body, c.segs));
      args.push(row.rid);
      u.stmt.run(args);
    }
    this.remember(collection, { rid: row.rid, key, workflow: row.workflow, rev, body: json });
    return { _key: key, _id: `${collection}/${key}`, _rev: rev, ...body };
  }

  /**
   * The edges that touch a vertex of `workflow`. An edge lives in the workflow of its ends, so
   * the edge indexes are (workflow, efrom) and (workflow, eto) and this names the workflow too.
   */
  removeEdgesOf(workflow: string | null, id: string): void {
    this.forgetRows();
    const wf = this.wfClause(workflow);
    const params = this.wfParams(workflow);
    for (const e of EDGE_COLLECTION_NAMES) {
      this.stmt(`DELETE FROM "${e}" WHERE ${wf} AND efrom = ?`).run(...params, id);
      this.stmt(`DELETE FROM "${e}" WHERE ${wf} AND eto = ?`).run(...params, id);
    }
  }

  remove(collection: CollectionName, workflow: string | null, key: string, opts?: WriteOptions): boolean {
    const row = this.getRow(collection, workflow, key);
    if (!row) return false;
    if (opts?.rev !== undefined && opts.rev !== row.rev) throw revisionConflict(`${collection}/${key}`, row.rev);
    this.forgetRows();
    this.stmt(`DELETE FROM "${collection}" WHERE rid = ?`).run(row.rid);
    if (!isEdgeCollection(collection)) this.removeEdgesOf(workflow, `${collection}/${key}`);
    return true;
  }

  removeWhere(collection: CollectionName, workflow: string | null, where?: Where): number {
    this.forgetRows();
    const w = this.whereSql(collection, workflow, where);
    if (isEdgeCollection(collection)) {
      return this.db.prepare(`DELETE FROM "${collection}" WHERE ${w.sql}`).run(...w.params).changes;
    }
    const keys = (this.db.prepare(`SELECT key FROM "${collection}" WHERE ${w.sql}`).all(...w.params) as { key: string }[]).map((r) => r.key);
    if (keys.length === 0) return 0;
    const n = this.db.prepare(`DELETE FROM "${collection}" WHERE ${w.sql}`).run(...w.params).changes;
    if (workflow !== null && conditionsOf(where).length === 0) {
      // Every vertex of the collection goes: drop the workflow's edges that touch the collection.
      const prefix = `${collection}/`;
      for (const e of EDGE_COLLECTION_NAMES) {
        this.stmt(`DELETE FROM "${e}" WHERE workflow = ? AND (substr(efrom, 1, ?) = ? OR substr(eto, 1, ?) = ?)`).run(workflow, prefix.length, prefix, prefix.length, prefix);
      }
    } else {
      for (const k of keys) this.removeEdgesOf(workflow, `${collection}/${k}`);
    }
    return n;
  }

  /**
   * A find's shape (collection, workflow or global, plan hint, each condition's field, operator
   * and kind of value, sort, paging) and its parameters, without building SQL: the statement of a
   * shape seen before is taken from findStmts. The kinds are conditionKind's, from which whereSql
   * builds the SQL: a parameter, a NULL test, an inlined status literal, a list of n parameters.
   */
  private findShape(collection: CollectionName, workflow: string | null, opts: FindOptions): { key: string; params: unknown[] } {
    // The parts go into an array of the right length, joined once: building the key with += made
    // a string per piece (a claim's three finds, ~30 pieces each, were ~9% of what a claim request
    // allocated), and a growing array is copied as it grows.
    const conditions = conditionsOf(opts.where);
    const sort = opts.sort ?? [];
    const parts = new Array<string>(4 + 3 * conditions.length + 2 * sort.length);
    parts[0] = collection;
    parts[1] = workflow === null ? 'g' : 'w';
    parts[2] = opts.inSortOrder === true ? 's' : '';
    parts[3] = opts.limit !== undefined || opts.skip ? 'p' : '';
    let i = 4;
    const params: unknown[] = workflow === null ? [] : [workflow];
    for (const c of conditions) {
      // Throws for a field path that is not one (as whereSql): a key names valid fields only.
      const expr = this.fieldExpr(collection, c.field);
      const kind = conditionKind(c, expr === INLINE_STATUS[collection], params);
      // Unknown operators: whereSql throws the error.
      if (kind === null) return { key: '', params };
      parts[i++] = c.field;
      parts[i++] = c.op;
      parts[i++] = kind;
    }
    for (const s of sort) {
      this.fieldExpr(collection, s.field);
      parts[i++] = s.field;
      parts[i++] = s.direction === 'desc' ? '~d' : '~a';
    }
    return { key: parts.join('\0'), params };
  }

  find(collection: CollectionName, workflow: string | null, opts: FindOptions = {}): FindResult {
    const shape = this.findShape(collection, workflow, opts);
    let statement = shape.key === '' ? undefined : this.findStmts.get(shape.key);
    let params = shape.params;
    if (statement === undefined) {
      const w = this.whereSql(collection, workflow, opts.where, opts.inSortOrder === true);
      const order = (opts.sort ?? []).map((s) => `${this.fieldExpr(collection, s.field)} ${s.direction === 'desc' ? 'DESC' : 'ASC'}`);
      order.push('rid ASC');
      let sql = `SELECT ${this.cols(collection)} FROM "${collection}" WHERE ${w.sql} ORDER BY ${order.join(', ')}`;
      // `+?`, not `?`: SQLite (3.53) plans for a LIMIT bound as a plain parameter, so every new
      // binding of it expires the statement and the next run prepares it again (~6-12 µs per
      // query, most of a small indexed read); a unary plus keeps the value out of planning.
      if (opts.limit !== undefined || opts.skip) sql += ' LIMIT +? OFFSET ?';
      statement = this.stmt(sql);
      if (shape.key !== '' && this.findStmts.size < FIND_SHAPES_MAX) this.findStmts.set(shape.key, statement);
      params = w.params;
    }
    if (opts.limit !== undefined || opts.skip) params.push(opts.limit ?? -1, opts.skip ?? 0);
    const rows = statement.all(...params) as Row[];
    const items = rows.map((r) => {
      this.remember(collection, r);
      return this.toDoc(collection, r);
    });
    let totalCount = -1;
    if (opts.withTotal) {
      const noPaging = opts.limit === undefined && !opts.skip;
      totalCount = noPaging ? items.length : this.count(collection, workflow, opts.where);
    }
    return { items, totalCount };
  }

  count(collection: CollectionName, workflow: string | null, where?: Where): number {
    const w = this.whereSql(collection, workflow, where);
    return (this.stmt(`SELECT COUNT(*) AS n FROM "${collection}" WHERE ${w.sql}`).get(...w.params) as { n: number }).n;
  }

  getMany(collection: CollectionName, workflow: string | null, keys: readonly string[]): Doc[] {
    const byKey = new Map<string, Doc>();
    for (const part of chunks(keys, IN_CHUNK)) {
      const sql = `SELECT ${this.cols(collection)} FROM "${collection}" WHERE ${this.wfClause(workflow)} AND key IN (${part.map(() => '?').join(', ')})`;
      for (const r of this.stmt(sql).all(...this.wfParams(workflow), ...part) as Row[]) {
        this.remember(collection, r);
        byKey.set(r.key, this.toDoc(collection, r));
      }
    }
    const out: Doc[] = [];
    for (const k of keys) {
      const d = byKey.get(k);
      if (d) out.push(d);
    }
    return out;
  }

  edges(collection: EdgeCollectionName, workflow: string, query: EdgeQuery): EdgeDoc[] {
    const parts = ['workflow = ?'];
    const params: unknown[] = [workflow];
    for (const [col, value] of [['efrom', query.from], ['eto', query.to]] as const) {
      if (value === undefined) continue;
      const list = typeof value === 'string' ? [value] : value;
      if (list.length === 0) return [];
      if (list.length > IN_CHUNK) {
        // Large id lists: page through them so the statement stays small.
        const out: EdgeDoc[] = [];
        for (const part of chunks(list, IN_CHUNK)) out.push(...this.edges(collection, workflow, { ...query, [col === 'efrom' ? 'from' : 'to']: part }));
        return out.sort((a, b) => Number(a._key) - Number(b._key));
      }
      parts.push(`${col} IN (${list.map(() => '?').join(', ')})`);
      params.push(...list);
    }
    const rows = this.stmt(`SELECT rid, key, workflow, rev, body FROM "${collection}" WHERE ${parts.join(' AND ')} ORDER BY rid`).all(...params) as Row[];
    return rows.map((r) => this.toDoc(collection, r) as EdgeDoc);
  }

  neighbors(collection: EdgeCollectionName, workflow: string, ids: readonly string[], direction: Direction): Neighbor[] {
    const edges = this.edges(collection, workflow, direction === 'outbound' ? { from: ids } : { to: ids });
    const wanted = new Map<string, string[]>();
    for (const e of edges) {
      const other = direction === 'outbound' ? e._to : e._from;
      const coll = collectionOf(other);
      if (!coll) continue;
      const list = wanted.get(coll) ?? [];
      list.push(other.slice(other.lastIndexOf('/') + 1));
      wanted.set(coll, list);
    }
    const docs = new Map<string, Doc>();
    for (const [coll, keys] of wanted) {
      if (!(ALL_COLLECTION_NAMES as readonly string[]).includes(coll)) continue;
      for (const d of this.getMany(coll as CollectionName, workflow, [...new Set(keys)])) docs.set(d._id, d);
    }
    return edges.map((edge) => ({ edge, vertex: docs.get(direction === 'outbound' ? edge._to : edge._from) ?? null }));
  }

  removeWorkflow(workflow: string): void {
    this.forgetRows();
    for (const name of [...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES]) {
      this.stmt(`DELETE FROM "${name}" WHERE workflow = ?`).run(workflow);
    }
    for (const name of GLOBAL_COLLECTIONS) this.stmt(`DELETE FROM "${name}" WHERE key = ?`).run(workflow);
  }
}

/** The operations, bound to a core; `run` decides how a write is scheduled. */
class SqliteOps implements GraphStore {
  readonly capabilities: StoreCapabilities;

  constructor(
    protected readonly core: () => SqliteCore,
    private readonly runWrite: <T>(fn: () => T) => Promise<T>,
    private readonly runTx: <T>(fn: (tx: GraphStore) => Promise<T>) => Promise<T>,
    durable: boolean,
  ) {
    this.capabilities = { kind: 'sqlite', durable };
  }

  async open(): Promise<void> {
    /* opened by SqliteGraphStore */
  }

  async close(): Promise<void> {
    /* closed by SqliteGraphStore */
  }

  insert(collection: CollectionName, workflow: string | null, doc: Record<string, unknown>): Promise<Doc> {
    return this.runWrite(() => this.core().insert(collection, workflow, doc));
  }

  insertMany(collection: CollectionName, workflow: string | null, docs: readonly Record<string, unknown>[]): Promise<Doc[]> {
    return this.runWrite(() => {
      const c = this.core();
      return c.db.inTransaction
        ? docs.map((d) => c.insert(collection, workflow, d))
        : c.db.transaction(() => docs.map((d) => c.insert(collection, workflow, d)))();
    });
  }

  async get(collection: CollectionName, workflow: string | null, key: string): Promise<Doc | null> {
    const c = this.core();
    const row = c.getRow(collection, workflow, key);
    return row ? c.toDoc(collection, row) : null;
  }

  /** The row only, no JSON parse: the existence checks of a claim run on every request. */
  async has(collection: CollectionName, workflow: string | null, key: string): Promise<boolean> {
    return this.core().getRow(collection, workflow, key) !== undefined;
  }

  async getMany(collection: CollectionName, workflow: string | null, keys: readonly string[]): Promise<Doc[]> {
    return this.core().getMany(collection, workflow, keys);
  }

  update(collection: CollectionName, workflow: string | null, key: string, patch: Record<string, unknown>, opts?: WriteOptions): Promise<Doc> {
    return this.runWrite(() => this.core().write(collection, workflow, key, patch, 'update', opts));
  }

  updateMany(collection: CollectionName, workflow: string | null, patches: readonly { key: string; patch: Record<string, unknown> }[]): Promise<number> {
    return this.runWrite(() => {
      const c = this.core();
      const apply = (): number => {
        let n = 0;
        for (const { key, patch } of patches) if (c.write(collection, workflow, key, patch, 'update', undefined, true)) n++;
        return n;
      };
      return c.db.inTransaction ? apply() : c.db.transaction(apply)();
    });
  }

  replace(collection: CollectionName, workflow: string | null, key: string, doc: Record<string, unknown>, opts?: WriteOptions): Promise<Doc> {
    return this.runWrite(() => this.core().write(collection, workflow, key, doc, 'replace', opts));
  }

  remove(collection: CollectionName, workflow: string | null, key: string, opts?: WriteOptions): Promise<boolean> {
    return this.runWrite(() => {
      const c = this.core();
      return c.db.inTransaction ? c.remove(collection, workflow, key, opts) : c.db.transaction(() => c.remove(collection, workflow, key, opts))();
    });
  }

  removeWhere(collection: CollectionName, workflow: string | null, where?: Where): Promise<number> {
    return this.runWrite(() => {
      const c = this.core();
      return c.db.inTransaction ? c.removeWhere(collection, workflow, where) : c.db.transaction(() => c.removeWhere(collection, workflow, where))();
    });
  }

  async find(collection: CollectionName, workflow: string | null, opts?: FindOptions): Promise<FindResult> {
    return this.core().find(collection, workflow, opts);
  }

  async count(collection: CollectionName, workflow: string | null, where?: Where): Promise<number> {
    return this.core().count(collection, workflow, where);
  }

  async edges(collection: EdgeCollectionName, workflow: string, query: EdgeQuery): Promise<EdgeDoc[]> {
    return this.core().edges(collection, workflow, query);
  }

  async neighbors(collection: EdgeCollectionName, workflow: string, ids: readonly string[], direction: Direction): Promise<Neighbor[]> {
    return this.core().neighbors(collection, workflow, ids, direction);
  }

  removeWorkflow(workflow: string): Promise<void> {
    return this.runWrite(() => {
      const c = this.core();
      if (c.db.inTransaction) c.removeWorkflow(workflow);
      else c.db.transaction(() => c.removeWorkflow(workflow))();
    });
  }

  transaction<T>(fn: (tx: GraphStore) => Promise<T>): Promise<T> {
    return this.runTx(fn);
  }
}

/**
 * A group commit: logical transactions that ran one after another while it was open. Each is its
 * own SAVEPOINT (all or nothing, events with their change); their callers are answered only once
 * the one SQLite COMMIT of the group succeeded, so nothing is acknowledged before it is durable.
 */
interface CommitGroup {
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
  /** performance.now() at its BEGIN. */
  start: number;
}

/**
 * Bounds of a group commit (SqliteGraphStoreOptions.groupCommit). A COMMIT writes each page its
 * group dirtied to the WAL, so bigger groups cost less per transaction (claims, 2026-11-29: ~32 µs
 * of COMMIT per claim in groups of 8, ~15 in groups of 64); a bound caps how long the first
 * transaction of a group waits for its answer. Measured 2026-11-30 with the store handed over once
 * per turn of the event loop, alternating runs on a busy machine: bench/engine-claims.ts (64
 * claimers, closed loop) groups of 16: 4,291 claims/s, p99 24.3 ms; 32: 4,444-4,812/s, p99
 * 22.1-26.4; 64: 4,900-5,013/s, p99 22.1-23.0. bench/engine-lifecycle.ts batched (16 clients,
 * a transaction per completion and per start): 32: 3,479-4,043 lifecycles/s; 64: 3,761-4,215;
 * before the hand-over, with no bound: 3,812-3,964.
 */
const GROUP_MAX_TX = 64;
const GROUP_MAX_MS = 20;

function envBound(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** The embedded default store. */
export class SqliteGraphStore extends SqliteOps {
  private coreRef: SqliteCore | undefined;
  private checkpointer: WalCheckpointer | undefined;
  private readonly path: string;
  private readonly checkpointMode: 'thread' | 'inline';
  private readonly checkpointTuning: Partial<CheckpointTuning>;
  /** Whether a transaction holds the store (running, or handed the store and waiting for its turn to run). */
  private txOpen = false;
  /** Transactions waiting for the store, first come first served. */
  private readonly waiting: (() => void)[] = [];
  /** A flush came while a transaction was open: commit once it ends. */
  private flushAfterTx = false;
  /** The open group commit (an outer BEGIN IMMEDIATE), if any; committed from setImmediate. */
  private group: CommitGroup | null = null;
  private flushScheduled = false;
  /** Bounds of a group (Infinity: none). */
  private readonly groupMaxMs: number;
  private readonly groupMaxTx: number;

  constructor(options: SqliteGraphStoreOptions) {
    let self: SqliteGraphStore | undefined;
    const core = (): SqliteCore => {
      if (!self?.coreRef) throw new WeftError('STORE_UNAVAILABLE', 'The SQLite store is not open');
      return self.coreRef;
    };
    // A write outside a transaction is a one-operation transaction: it joins the group commit
    // and is answered once that is committed.
    const runWrite = <T>(fn: () => T): Promise<T> => self!.runTransaction(async () => fn());
    const runTx = <T>(fn: (tx: GraphStore) => Promise<T>): Promise<T> => self!.runTransaction(fn);
    super(core, runWrite, runTx, options.path !== ':memory:');
    self = this;
    this.path = options.path;
    this.checkpointMode = options.checkpoint ?? (process.env.WEFT_SQLITE_CHECKPOINT === 'inline' ? 'inline' : 'thread');
    this.checkpointTuning = options.checkpointTuning ?? {};
    const maxMs = options.groupCommit?.maxMs ?? envBound('WEFT_SQLITE_GROUP_MS') ?? GROUP_MAX_MS;
    const maxTx = options.groupCommit?.maxTransactions ?? envBound('WEFT_SQLITE_GROUP_TX') ?? GROUP_MAX_TX;
    this.groupMaxMs = maxMs > 0 ? maxMs : Infinity;
    this.groupMaxTx = maxTx > 0 ? maxTx : Infinity;
    if (this.groupMaxMs === Infinity && this.groupMaxTx === Infinity) throw new WeftError('INTERNAL', 'A group commit needs a bound: maxMs or maxTransactions must be above 0');
  }

  override async open(): Promise<void> {
    if (this.coreRef) return;
    const c = new SqliteCore(this.path);
    c.init();
    if (this.path !== ':memory:' && this.checkpointMode === 'thread') this.checkpointer = new WalCheckpointer(c.db, this.path, this.checkpointTuning);
    this.coreRef = c;
  }

  override async close(): Promise<void> {
    // Take the store after every transaction already waiting, commit what they did, and close it;
    // those that come after find it closed.
    await this.acquire();
    try {
      this.commitGroup();
      // The thread's connection closes first, so the main one is the last: SQLite checkpoints the
      // whole WAL and deletes it when the last connection closes.
      const checkpointer = this.checkpointer;
      this.checkpointer = undefined;
      await checkpointer?.stop();
      this.coreRef?.db.close();
      this.coreRef = undefined;
    } finally {
      this.handOver();
    }
  }

  /** WAL checkpoint counters (diagnostics and tests); null without the checkpoint thread. */
  get checkpointStats(): CheckpointStats | null {
    return this.checkpointer?.stats() ?? null;
  }

  /** The raw better-sqlite3 handle, for benchmarks' baselines and diagnostics only. */
  get database(): Database.Database {
    if (!this.coreRef) throw new WeftError('STORE_UNAVAILABLE', 'The SQLite store is not open');
    return this.coreRef.db;
  }

  /**
   * One logical transaction: a SAVEPOINT inside the open group commit (opened here if none is).
   * Transactions never interleave (one at a time, queued). The group is committed from
   * setImmediate, so the requests whose bytes arrived in the same turn of the event loop share
   * one COMMIT: a commit writes every page it changed to the WAL (about 20 pages, two writes
   * each, for a job status change with its event and edge) and that was most of the cost of a
   * small change; pages several changes touch (index and table tails) are written once. With a
   * bound (groupCommit), a group that reached it is committed at the end of this transaction,
   * before the next queued one starts the next group. Either way a caller is answered only after
   * the COMMIT of its group.
   */
  private async runTransaction<T>(fn: (tx: GraphStore) => Promise<T>): Promise<T> {
    await this.acquire();
    const core = this.coreRef;
    if (!core) {
      this.handOver();
      throw new WeftError('STORE_UNAVAILABLE', 'The SQLite store is not open');
    }
    let active = true;
    const handle: GraphStore = new SqliteOps(
      () => {
        if (!active) throw new WeftError('INTERNAL', 'A transaction handle was used after its transaction ended');
        return core;
      },
      async (w) => w(),
      <U>(inner: (tx: GraphStore) => Promise<U>): Promise<U> => inner(handle),
      this.capabilities.durable,
    );
    let group: CommitGroup;
    let result: T;
    let committed: Promise<void> | undefined;
    try {
      if (this.group && !core.db.inTransaction) {
        // Something ended SQLite's transaction under the group: what it held is unknown.
        this.failGroup(this.group, new WeftError('INTERNAL', 'The SQLite transaction ended before its commit'));
      }
      if (!this.group) {
        // Prepared (cached) statements: db.exec would parse the SQL again every time.
        core.stmt('BEGIN IMMEDIATE').run();
        core.rowCache(true);
        this.group = { waiters: [], start: performance.now() };
      }
      group = this.group;
      this.scheduleFlush();
      core.stmt('SAVEPOINT weft_tx').run();
      try {
        result = await fn(handle);
        core.stmt('RELEASE weft_tx').run();
        committed = new Promise<void>((resolve, reject) => group.waiters.push({ resolve, reject }));
      } catch (err) {
        core.forgetRows();
        if (core.db.inTransaction) {
          core.stmt('ROLLBACK TO weft_tx').run();
          core.stmt('RELEASE weft_tx').run();
        } else {
          // SQLite rolled the whole group back (an I/O error, a full disk): fail its members too.
          this.failGroup(group, err);
        }
        throw err;
      }
    } finally {
      active = false;
      // A group at its bound is committed now: its callers are answered at once.
      const open = this.group;
      const full = open !== null && (open.waiters.length >= this.groupMaxTx || (this.groupMaxMs !== Infinity && performance.now() - open.start >= this.groupMaxMs));
      if (full) {
        this.flushAfterTx = false;
        this.commitGroup();
      }
      // The store stays taken until the next turn of the event loop, then goes to the transaction
      // that waited longest. So a request read meanwhile queues behind those already waiting
      // instead of running at once: the poll phase reads every request that arrived (64 claimers:
      // ~45 at a time), and when each ran as it was read, one that missed the poll by a few
      // microseconds waited for the whole phase and its commit, twice the others' time (p99
      // 2.5 x p50). One transaction per turn keeps them in the order they came.
      setImmediate(() => this.handOver());
    }
    await committed;
    return result;
  }

  /** Take the store: at once when it is free and nobody waits, else after those waiting (FIFO). */
  private acquire(): Promise<void> | void {
    if (!this.txOpen && this.waiting.length === 0) {
      this.txOpen = true;
      return;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Give the store to the next waiting transaction (it stays taken, so nothing jumps the queue), or free it. */
  private handOver(): void {
    const next = this.waiting.shift();
    if (next !== undefined) return next();
    this.txOpen = false;
    // A commit asked for while the store was taken (no transaction waits now): due.
    if (this.flushAfterTx) {
      this.flushAfterTx = false;
      this.commitGroup();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Commit the open group, unless the store is taken (then it is committed when the store is free or the group full). */
  private flush(): void {
    const group = this.group;
    if (!group) return;
    if (this.txOpen) {
      this.flushAfterTx = true;
      return;
    }
    this.commitGroup();
  }

  /** Commit the open group and answer its callers (by the holder of the store, or when nobody holds it). */
  private commitGroup(): void {
    const group = this.group;
    if (!group) return;
    this.group = null;
    const core = this.coreRef;
    core?.rowCache(false);
    try {
      if (!core || !core.db.inTransaction) throw new WeftError('STORE_UNAVAILABLE', 'The SQLite transaction ended before its commit');
      core.stmt('COMMIT').run();
    } catch (err) {
      if (core?.db.inTransaction) core.stmt('ROLLBACK').run();
      this.failGroup(group, err);
      return;
    }
    for (const w of group.waiters) w.resolve();
    this.checkpointer?.afterCommit(() => core.stmt('PRAGMA wal_checkpoint(PASSIVE)').get() as { busy: number; log: number; checkpointed: number });
  }

  private failGroup(group: CommitGroup, err: unknown): void {
    if (this.group === group) {
      this.group = null;
      this.coreRef?.rowCache(false);
    }
    const waiters = group.waiters.splice(0);
    for (const w of waiters) w.reject(err);
  }
}
