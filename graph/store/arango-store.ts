/**
 * ArangoGraphStore: the GraphStore port on ArangoDB (arangojs 10), for a shared or clustered
 * deployment. Same semantics as the SQLite adapter, checked by the same conformance suite.
 *
 * - Collections are shared by all workflows; each per-workflow document carries the hidden
 *   `workflow` attribute (the cluster shard key) and `weft_seq` (insertion order). See
 *   arango-schema.ts for what `open()` creates and arango-aql.ts for every query sent.
 * - Each port operation is one AQL query (a vertex removal and its edges included), so it is
 *   atomic on its own. `transaction(fn)` is an ArangoDB stream transaction declared over every
 *   collection; its steps run one at a time through `trx.step`. Transactions of this process
 *   run one after another, and writes from outside wait for the open one, as in SQLite, so no
 *   other write of this server interleaves with a transaction.
 * - Transient failures (503, leadership changes, lock timeouts, write-write conflicts with another
 *   process, connection refused) are retried with exponential backoff and full jitter. A
 *   transaction that hits one before its commit is aborted and `fn` runs again from the start,
 *   so `fn` must not have effects outside the `tx` handle it receives.
 */
import { Database } from 'arangojs/databases';
import type { AqlQuery } from 'arangojs/aql';
import { isArangoError, isNetworkError } from 'arangojs/errors';
import type { Transaction } from 'arangojs/transactions';
import { EDGE_COLLECTION_NAMES, GLOBAL_COLLECTIONS, WORKFLOW_COLLECTION_NAMES, isEdgeCollection, type CollectionName, type EdgeCollectionName } from '../model.js';
import { WeftError, notFound, revisionConflict } from '../errors.js';
import type { Direction, Doc, EdgeDoc, EdgeQuery, FindOptions, FindResult, GraphStore, Neighbor, StoreCapabilities, Where, WriteOptions } from './port.js';
import * as q from './arango-aql.js';
import { DirectRunner, TxRunner, type AnyCollection, type Context, type Rows, type Runner } from './arango-runner.js';
import { ARANGO_ERRORS, DEFAULT_RETRY_POLICY, backoffDelayMs, describeCause, httpStatusOf, isTransient, redactUrl, toWeftError, withRetry, type RetryPolicy } from './arango-errors.js';
import { ensureSchema, isCluster, type ArangoClusterOptions } from './arango-schema.js';

export interface ArangoGraphStoreOptions {
  /** Server URL, or several coordinators' URLs (tried in turn on network errors). */
  url: string | string[];
  /** Database name. */
  database: string;
  /** Basic auth user. Default: arangojs's default (`root` with an empty password). */
  username?: string;
  password?: string;
  /** A JWT, used instead of username/password when set. */
  token?: string;
  /** Create the database when it is missing (needs rights on `_system`). Default true. */
  createDatabase?: boolean;
  /** Shard layout for a cluster; ignored on a single server. */
  cluster?: ArangoClusterOptions;
  /** Backoff for transient failures while running. Default 5 retries, 50 ms doubling, 2 s cap. */
  retry?: Partial<RetryPolicy>;
  /** Retries of the first contact at open (connection refused, 503). Default 2. */
  connectRetries?: number;
  /** Abort one HTTP request after this many milliseconds. Default 60000. */
  requestTimeoutMs?: number;
  /** Parallel HTTP requests. Default 8. */
  poolSize?: number;
}

/** Documents per INSERT/REPLACE query; larger inputs become several queries in one transaction. */
const CHUNK = 1000;
const ALL_COLLECTIONS: readonly CollectionName[] = [...GLOBAL_COLLECTIONS, ...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES];
const DROPPED_ON_INSERT = new Set(['_id', '_rev', ...q.HIDDEN_ATTRS]);
const DROPPED_ON_WRITE = new Set(['_key', '_id', '_rev', '_from', '_to', ...q.HIDDEN_ATTRS]);
const KEPT_ON_REPLACE = ['_from', '_to', ...q.HIDDEN_ATTRS];

/** Insertion sequence shared by every store of this process: time-based so it keeps rising across restarts. */
let lastSeq = 0;
function nextSeq(): number {
  lastSeq = Math.max(Date.now() * 1000, lastSeq + 1);
  return lastSeq;
}

/** Hidden attributes off, metadata kept. */
function clean<T extends Doc>(raw: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (k !== q.WORKFLOW_ATTR && k !== q.SEQ_ATTR) out[k] = v;
  return out as T;
}

function prepareInsert(collection: CollectionName, workflow: string | null, input: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (!DROPPED_ON_INSERT.has(k) && v !== undefined) body[k] = v;
  if (typeof body._key !== 'string' || body._key === '') delete body._key;
  if (isEdgeCollection(collection) && (typeof body._from !== 'string' || typeof body._to !== 'string')) {
    throw new WeftError('VALIDATION_FAILED', 'An edge needs _from and _to', { details: [{ path: ['_from'], message: 'required', rule: 'required' }] });
  }
  if (workflow !== null) body[q.WORKFLOW_ATTR] = workflow;
  body[q.SEQ_ATTR] = nextSeq();
  return body;
}

/** The patch without metadata, and the attributes it removes (given as undefined). */
function preparePatch(patch: Record<string, unknown>): { body: Record<string, unknown>; unset: string[] } {
  const body: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (DROPPED_ON_WRITE.has(k)) continue;
    if (v === undefined) unset.push(k);
    else body[k] = v;
  }
  return { body, unset };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function idList(value: string | readonly string[] | undefined): readonly string[] | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? [value] : value;
}

/** The port's operations over a runner; the store and each transaction handle are instances. */
class ArangoOps implements GraphStore {
  readonly capabilities: StoreCapabilities = { kind: 'arango', durable: true };

  constructor(
    protected readonly ctx: () => Context,
    private readonly runner: Runner,
    /** Resolves when a write from outside a transaction may go (no transaction open). */
    private readonly writeGate: () => Promise<void>,
    private readonly runTx: <T>(fn: (tx: GraphStore) => Promise<T>) => Promise<T>,
  ) {}

  async open(): Promise<void> {
    /* opened by ArangoGraphStore */
  }

  async close(): Promise<void> {
    /* closed by ArangoGraphStore */
  }

  private read<T>(query: AqlQuery, what: string, fullCount = false): Promise<Rows<T>> {
    return this.runner.query<T>(query, { idempotent: true, fullCount, what });
  }

  private async write<T>(query: AqlQuery, what: string): Promise<Rows<T>> {
    await this.writeGate();
    return this.runner.query<T>(query, { idempotent: false, what });
  }

  private coll(name: CollectionName): AnyCollection {
    return this.ctx().coll(name);
  }

  async insert(collection: CollectionName, workflow: string | null, doc: Record<string, unknown>): Promise<Doc> {
    const body = prepareInsert(collection, workflow, doc);
    const { items } = await this.write<Record<string, unknown>>(q.insertAql(this.coll(collection), body), `insert into ${collection}`);
    return clean(items[0]!);
  }

  async insertMany(collection: CollectionName, workflow: string | null, docs: readonly Record<string, unknown>[]): Promise<Doc[]> {
    if (docs.length === 0) return [];
    if (docs.length > CHUNK && !this.runner.inTx) return this.runTx((tx) => tx.insertMany(collection, workflow, docs));
    const out: Doc[] = [];
    for (const part of chunks(docs, CHUNK)) {
      const bodies = part.map((d) => prepareInsert(collection, workflow, d));
      const { items } = await this.write<Record<string, unknown>>(q.insertManyAql(this.coll(collection), bodies), `insert into ${collection}`);
      for (const d of items) out.push(clean(d));
    }
    return out;
  }

  async get(collection: CollectionName, workflow: string | null, key: string): Promise<Doc | null> {
    const { items } = await this.read<Record<string, unknown>>(q.getAql(this.coll(collection), workflow, key), `get ${collection}/${key}`);
    return items[0] ? clean(items[0]) : null;
  }

  async has(collection: CollectionName, workflow: string | null, key: string): Promise<boolean> {
    const { items } = await this.read<number>(q.hasAql(this.coll(collection), workflow, key), `has ${collection}/${key}`);
    return items.length > 0;
  }

  async getMany(collection: CollectionName, workflow: string | null, keys: readonly string[]): Promise<Doc[]> {
    if (keys.length === 0) return [];
    const { items } = await this.read<Record<string, unknown>>(q.getManyAql(this.coll(collection), workflow, [...new Set(keys)]), `get ${collection}`);
    const byKey = new Map<string, Doc>();
    for (const d of items) byKey.set(d._key as string, clean(d));
    return keys.flatMap((k) => {
      const d = byKey.get(k);
      return d ? [d] : [];
    });
  }

  private async writeOne(collection: CollectionName, workflow: string | null, key: string, mode: 'update' | 'replace', input: Record<string, unknown>, opts?: WriteOptions): Promise<Doc> {
    const { body, unset } = preparePatch(input);
    const query = q.writeAql(this.coll(collection), workflow, key, mode, body, unset, KEPT_ON_REPLACE, opts?.rev);
    const { items } = await this.write<{ found: boolean; rev: string | null; doc: Record<string, unknown> | null }>(query, `${mode} ${collection}/${key}`);
    const row = items[0];
    if (!row?.found) throw notFound(collection, key);
    if (!row.doc) throw revisionConflict(`${collection}/${key}`, row.rev ?? '');
    return clean(row.doc);
  }

  update(collection: CollectionName, workflow: string | null, key: string, patch: Record<string, unknown>, opts?: WriteOptions): Promise<Doc> {
    return this.writeOne(collection, workflow, key, 'update', patch, opts);
  }

  replace(collection: CollectionName, workflow: string | null, key: string, doc: Record<string, unknown>, opts?: WriteOptions): Promise<Doc> {
    return this.writeOne(collection, workflow, key, 'replace', doc, opts);
  }

  async updateMany(collection: CollectionName, workflow: string | null, patches: readonly { key: string; patch: Record<string, unknown> }[]): Promise<number> {
    if (patches.length === 0) return 0;
    // A document may appear twice: the n-th patch of each key goes in round n, rounds in order.
    const rounds: { key: string; patch: Record<string, unknown>; unset: string[] }[][] = [];
    const seen = new Map<string, number>();
    for (const { key, patch } of patches) {
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      const { body, unset } = preparePatch(patch);
      (rounds[n] ??= []).push({ key, patch: body, unset });
    }
    const queries = rounds.flatMap((r) => chunks(r, CHUNK));
    if (queries.length > 1 && !this.runner.inTx) return this.runTx((tx) => tx.updateMany(collection, workflow, patches));
    let total = 0;
    for (const part of queries) {
      const { items } = await this.write<number>(q.updateManyAql(this.coll(collection), workflow, part), `update ${collection}`);
      total += items[0] ?? 0;
    }
    return total;
  }

  private cascadeTargets(collection: CollectionName): AnyCollection[] {
    return isEdgeCollection(collection) ? [] : this.ctx().edgeColls;
  }

  async remove(collection: CollectionName, workflow: string | null, key: string, opts?: WriteOptions): Promise<boolean> {
    const query = q.removeAql(this.coll(collection), workflow, key, opts?.rev, this.cascadeTargets(collection));
    const { items } = await this.write<{ found: boolean; rev: string | null; removed: number }>(query, `remove ${collection}/${key}`);
    const row = items[0];
    if (!row?.found) return false;
    if (row.removed === 0) throw revisionConflict(`${collection}/${key}`, row.rev ?? '');
    return true;
  }

  async removeWhere(collection: CollectionName, workflow: string | null, where?: Where): Promise<number> {
    const query = q.removeWhereAql(this.coll(collection), workflow, where, this.cascadeTargets(collection));
    const { items } = await this.write<number>(query, `remove from ${collection}`);
    return items[0] ?? 0;
  }

  async find(collection: CollectionName, workflow: string | null, opts: FindOptions = {}): Promise<FindResult> {
    const paged = opts.limit !== undefined || (opts.skip ?? 0) > 0;
    const wantTotal = opts.withTotal === true;
    const { items, fullCount } = await this.read<Record<string, unknown>>(q.findAql(this.coll(collection), workflow, opts), `list ${collection}`, wantTotal && paged);
    const docs = items.map((d) => clean<Doc>(d));
    let totalCount = -1;
    if (wantTotal) totalCount = paged ? (fullCount ?? (await this.count(collection, workflow, opts.where))) : docs.length;
    return { items: docs, totalCount };
  }

  async count(collection: CollectionName, workflow: string | null, where?: Where): Promise<number> {
    const { items } = await this.read<number>(q.countAql(this.coll(collection), workflow, where), `count ${collection}`);
    return items[0] ?? 0;
  }

  async edges(collection: EdgeCollectionName, workflow: string, query: EdgeQuery): Promise<EdgeDoc[]> {
    const from = idList(query.from);
    const to = idList(query.to);
    if (from?.length === 0 || to?.length === 0) return [];
    const { items } = await this.read<Record<string, unknown>>(q.edgesAql(this.coll(collection), workflow, from, to), `edges of ${collection}`);
    return items.map((d) => clean<EdgeDoc>(d));
  }

  async neighbors(collection: EdgeCollectionName, workflow: string, ids: readonly string[], direction: Direction): Promise<Neighbor[]> {
    if (ids.length === 0) return [];
    const { items } = await this.read<{ edge: Record<string, unknown>; vertex: Record<string, unknown> | null }>(
      q.neighborsAql(this.coll(collection), workflow, ids, direction),
      `neighbors along ${collection}`,
    );
    return items.map((r) => ({ edge: clean<EdgeDoc>(r.edge), vertex: r.vertex ? clean<Doc>(r.vertex) : null }));
  }

  async removeWorkflow(workflow: string): Promise<void> {
    const ctx = this.ctx();
    await this.write(q.removeWorkflowAql([...ctx.perWorkflowColls, ...ctx.edgeColls], ctx.globalColls, workflow), `remove workflow ${workflow}`);
  }

  transaction<T>(fn: (tx: GraphStore) => Promise<T>): Promise<T> {
    return this.runTx(fn);
  }
}

/** fetch refuses URLs with user:password: take them out (they become basic auth). */
function splitCredentials(url: string): { url: string; username?: string; password?: string } {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return { url };
    const username = decodeURIComponent(u.username);
    const password = decodeURIComponent(u.password);
    u.username = '';
    u.password = '';
    return { url: u.toString().replace(/\/$/, ''), username, password };
  } catch {
    return { url };
  }
}

/** True for a failure inside a transaction after which running it again may succeed. */
function retryableInTx(err: unknown): boolean {
  if (!(err instanceof WeftError) || err.code !== 'STORE_UNAVAILABLE') return false;
  // Nothing commits before the commit request, so even a connection broken mid-step is safe.
  return isTransient(err.cause, true) || isNetworkError(err.cause);
}

/** The ArangoDB store. Construct, then `await open()`. */
export class ArangoGraphStore extends ArangoOps {
  private context: Context | undefined;
  private readonly options: ArangoGraphStoreOptions;
  private readonly policy: RetryPolicy;
  private txOpen = false;
  private txTail: Promise<void> = Promise.resolve();

  constructor(options: ArangoGraphStoreOptions) {
    let self: ArangoGraphStore | undefined;
    const ctx = (): Context => {
      if (!self?.context) throw new WeftError('STORE_UNAVAILABLE', 'The ArangoDB store is not open');
      return self.context;
    };
    const gate = async (): Promise<void> => {
      while (self!.txOpen) await self!.txTail;
    };
    super(ctx, new DirectRunner(ctx), gate, (fn) => self!.runTransaction(fn));
    self = this;
    this.options = options;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  }

  /** The URL(s) in messages, without credentials. */
  get displayUrl(): string {
    const urls = typeof this.options.url === 'string' ? [this.options.url] : this.options.url;
    return urls.map(redactUrl).join(', ');
  }

  /**
   * Connect, create the database if missing (and allowed), then the missing collections, indexes
   * and graph. Throws STORE_UNAVAILABLE naming the URL and the cause when any of it fails.
   */
  override async open(): Promise<void> {
    if (this.context) return;
    const o = this.options;
    const urls = (typeof o.url === 'string' ? [o.url] : o.url).map(splitCredentials);
    const fromUrl = urls.find((u) => u.username !== undefined);
    const username = o.username ?? fromUrl?.username;
    const password = o.username !== undefined ? o.password : fromUrl?.password;
    const db = new Database({
      url: urls.map((u) => u.url),
      databaseName: o.database,
      ...(o.token !== undefined ? { auth: { token: o.token } } : username !== undefined ? { auth: { username, password: password ?? '' } } : {}),
      maxRetries: false,
      timeout: o.requestTimeoutMs ?? 60_000,
      poolSize: o.poolSize ?? 8,
    });
    try {
      await this.ensureDatabase(db);
      const cluster = await this.step('read the server role', () => isCluster(db));
      await this.step('create the collections, indexes and graph', () => ensureSchema(db, cluster, o.cluster));
    } catch (err) {
      db.close();
      throw err;
    }
    const colls = new Map<CollectionName, AnyCollection>(ALL_COLLECTIONS.map((n) => [n, db.collection(n)]));
    this.context = {
      db,
      url: this.displayUrl,
      coll: (name) => {
        const c = colls.get(name);
        if (!c) throw new WeftError('UNKNOWN_COLLECTION', `No such collection: ${name}`);
        return c;
      },
      edgeColls: EDGE_COLLECTION_NAMES.map((n) => colls.get(n)!),
      perWorkflowColls: WORKFLOW_COLLECTION_NAMES.map((n) => colls.get(n)!),
      globalColls: GLOBAL_COLLECTIONS.map((n) => colls.get(n)!),
      policy: this.policy,
    };
  }

  override async close(): Promise<void> {
    while (this.txOpen) await this.txTail;
    this.context?.db.close();
    this.context = undefined;
  }

  private who(): string {
    const o = this.options;
    const fromUrl = (typeof o.url === 'string' ? [o.url] : o.url).map(splitCredentials).find((u) => u.username !== undefined);
    return o.token !== undefined ? 'the given JWT' : `user "${o.username ?? fromUrl?.username ?? 'root'}"`;
  }

  /** One step of open(): retried while the server is starting, then turned into a clear error. */
  private async step<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn, { idempotent: true, policy: { ...this.policy, retries: this.options.connectRetries ?? 2, baseDelayMs: 200 } });
    } catch (err) {
      const status = httpStatusOf(err);
      if (status === 401 || (isArangoError(err) && err.errorNum === ARANGO_ERRORS.HTTP_UNAUTHORIZED)) {
        throw new WeftError('STORE_UNAVAILABLE', `ArangoDB at ${this.displayUrl} refused the credentials of ${this.who()} for database "${this.options.database}" (HTTP 401: a wrong password or token, or no access to that database) while trying to ${doing}`, { cause: err });
      }
      if (status === 403 || (isArangoError(err) && err.errorNum === ARANGO_ERRORS.FORBIDDEN)) {
        throw new WeftError('STORE_UNAVAILABLE', `ArangoDB at ${this.displayUrl}: ${this.who()} may not ${doing} in database "${this.options.database}" (${describeCause(err)})`, { cause: err });
      }
      if (isNetworkError(err) && status === undefined) {
        throw new WeftError('STORE_UNAVAILABLE', `Cannot reach ArangoDB at ${this.displayUrl}: ${describeCause(err)}`, { cause: err });
      }
      throw new WeftError('STORE_UNAVAILABLE', `ArangoDB at ${this.displayUrl}: could not ${doing} in database "${this.options.database}": ${describeCause(err)}`, { cause: err });
    }
  }

  private async ensureDatabase(db: Database): Promise<void> {
    const name = this.options.database;
    const exists = await this.step('check the database', () => db.exists());
    if (exists) return;
    if (this.options.createDatabase === false) {
      throw new WeftError('STORE_UNAVAILABLE', `ArangoDB at ${this.displayUrl} has no database "${name}" (creating it is turned off; create it or fix the name)`);
    }
    try {
      await this.step(`create the database "${name}"`, async () => {
        try {
          await db.database('_system').createDatabase(name);
        } catch (err) {
          if (!(isArangoError(err) && err.errorNum === ARANGO_ERRORS.DUPLICATE_NAME)) throw err;
        }
      });
    } catch (err) {
      throw new WeftError('STORE_UNAVAILABLE', `ArangoDB at ${this.displayUrl} has no database "${name}" and it could not be created (${(err as Error).message}); create it or grant ${this.who()} access`, {
        cause: err,
      });
    }
  }

  private async runTransaction<T>(fn: (tx: GraphStore) => Promise<T>): Promise<T> {
    while (this.txOpen) await this.txTail;
    const ctx = this.context;
    if (!ctx) throw new WeftError('STORE_UNAVAILABLE', 'The ArangoDB store is not open');
    let release!: () => void;
    this.txTail = new Promise<void>((r) => (release = r));
    this.txOpen = true;
    try {
      for (let attempt = 0; ; attempt++) {
        let trx: Transaction;
        try {
          trx = await withRetry(() => ctx.db.beginTransaction({ write: [...ALL_COLLECTIONS] }), { idempotent: false, policy: ctx.policy });
        } catch (err) {
          throw toWeftError(err, ctx.url, 'begin a transaction');
        }
        const runner = new TxRunner(ctx, trx);
        const handle: GraphStore = new ArangoOps(() => ctx, runner, async () => undefined, (inner) => inner(handle));
        let result: T;
        try {
          result = await fn(handle);
          await runner.end();
        } catch (err) {
          await runner.end();
          await trx.abort().catch(() => undefined);
          if (attempt < ctx.policy.retries && retryableInTx(err)) {
            await new Promise((r) => setTimeout(r, backoffDelayMs(ctx.policy, attempt)));
            continue;
          }
          throw err;
        }
        try {
          await trx.commit();
        } catch (err) {
          // The server answered that it did not commit: abort and run again. A lost answer is not retried.
          if (attempt < ctx.policy.retries && isArangoError(err) && isTransient(err, false)) {
            await trx.abort().catch(() => undefined);
            continue;
          }
          throw toWeftError(err, ctx.url, 'commit a transaction');
        }
        return result;
      }
    } finally {
      this.txOpen = false;
      release();
    }
  }
}
