/**
 * A tiny HTTP listener on 127.0.0.1 that speaks just enough of ArangoDB's HTTP API for the real
 * arangojs client to talk to it, and records every request. The wire tests read what the
 * adapter asked for (databases, collections, indexes, graph, AQL text and bind variables,
 * transaction headers); query results come from a responder the test supplies.
 * It is not a database: it stores nothing but the schema objects, so the adapter's own logic is
 * what is under test, never a simulation of ArangoDB's.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  search: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface QueryCall {
  query: string;
  bindVars: Record<string, unknown>;
  options: Record<string, unknown>;
  trxId: string | undefined;
  body: any;
}

/** A query answer: rows, or an error/status the test wants the client to see. */
export type QueryAnswer = unknown[] | { status: number; body: unknown } | { rows: unknown[]; fullCount?: number };

export interface FakeArangoOptions {
  role?: 'SINGLE' | 'COORDINATOR';
  /** Databases that exist (besides _system). */
  databases?: string[];
  /** Collections that exist in every database: name → 2 (document) or 3 (edge). */
  collections?: Record<string, 2 | 3>;
  /** Edge definitions of an existing `workflow_graph`; absent means no graph. */
  graph?: { collection: string; from: string[]; to: string[] }[];
  /** Required credentials: basic `user:password` or a bearer token. */
  auth?: { basic: string } | { bearer: string };
  /** Status for POST /_api/database (e.g. 403 when the user may not create databases). */
  createDatabaseStatus?: number;
  /** Answer one AQL query. Default: no rows. */
  onQuery?: (call: QueryCall) => QueryAnswer | Promise<QueryAnswer>;
}

export interface FakeArango {
  url: string;
  requests: RecordedRequest[];
  queries: QueryCall[];
  /** Most concurrent requests seen for one transaction id. */
  maxTrxConcurrency: number;
  options: FakeArangoOptions;
  close(): Promise<void>;
}

function arangoError(status: number, errorNum: number, errorMessage: string): { status: number; body: unknown } {
  return { status, body: { error: true, code: status, errorNum, errorMessage } };
}

export async function startFakeArango(options: FakeArangoOptions = {}): Promise<FakeArango> {
  const databases = new Set(['_system', ...(options.databases ?? [])]);
  const collections = new Map<string, number>(Object.entries(options.collections ?? {}));
  let graph = options.graph ? options.graph.map((d) => ({ ...d })) : undefined;
  const requests: RecordedRequest[] = [];
  const queries: QueryCall[] = [];
  const inFlight = new Map<string, number>();
  let trxCounter = 0;
  const fake: FakeArango = { url: '', requests, queries, maxTrxConcurrency: 0, options, close: async () => undefined };

  const handle = async (req: RecordedRequest): Promise<{ status: number; body: unknown }> => {
    const auth = req.headers.authorization ?? '';
    if (options.auth) {
      const ok = 'basic' in options.auth ? auth === `Basic ${Buffer.from(options.auth.basic).toString('base64')}` : auth === `Bearer ${options.auth.bearer}`;
      if (!ok) return arangoError(401, 401, 'not authorized to execute this request');
    }
    const m = /^\/_db\/([^/]+)(\/.*)$/.exec(req.path);
    if (!m) return arangoError(404, 404, 'unknown path');
    const db = decodeURIComponent(m[1]!);
    const route = m[2]!;
    if (!databases.has(db)) return arangoError(404, 1228, 'database not found');
    const ok = (body: Record<string, unknown>, status = 200) => ({ status, body: { error: false, code: status, ...body } });

    if (route === '/_api/database/current') return ok({ result: { name: db, id: '1', path: '', isSystem: db === '_system' } });
    if (route === '/_api/database' && req.method === 'POST') {
      if (options.createDatabaseStatus && options.createDatabaseStatus >= 400) return arangoError(options.createDatabaseStatus, 11, 'forbidden');
      databases.add(req.body.name);
      return ok({ result: true }, 201);
    }
    if (route === '/_admin/server/role') return ok({ role: options.role ?? 'SINGLE', mode: 'default' });
    if (route === '/_api/collection' && req.method === 'GET') {
      return ok({ result: [...collections].map(([name, type]) => ({ id: name, name, type, status: 3, isSystem: false, globallyUniqueId: name })) });
    }
    if (route === '/_api/collection' && req.method === 'POST') {
      if (collections.has(req.body.name)) return arangoError(409, 1207, 'duplicate name');
      collections.set(req.body.name, req.body.type ?? 2);
      return ok({ id: req.body.name, name: req.body.name, type: req.body.type ?? 2, status: 3 });
    }
    if (route === '/_api/index' && req.method === 'POST') {
      return ok({ id: `${req.search.get('collection')}/1`, isNewlyCreated: true, ...req.body }, 201);
    }
    if (route.startsWith('/_api/gharial')) {
      const parts = route.split('/').slice(3).map(decodeURIComponent);
      const describe = () => ({ graph: { _key: 'workflow_graph', name: 'workflow_graph', edgeDefinitions: graph ?? [], orphanCollections: [] } });
      if (req.method === 'POST' && parts.length === 0) {
        if (graph) return arangoError(409, 1925, 'graph already exists');
        graph = req.body.edgeDefinitions;
        return ok(describe(), 202);
      }
      if (!graph) return arangoError(404, 1924, 'graph not found');
      if (req.method === 'GET') return ok(describe());
      if (req.method === 'POST' && parts[1] === 'edge') {
        graph.push(req.body);
        return ok(describe(), 202);
      }
      if (req.method === 'PUT' && parts[1] === 'edge') {
        graph = graph.map((d) => (d.collection === parts[2] ? req.body : d));
        return ok(describe(), 202);
      }
    }
    if (route === '/_api/transaction/begin') return ok({ result: { id: `trx${++trxCounter}`, status: 'running' } }, 201);
    const trx = /^\/_api\/transaction\/(.+)$/.exec(route);
    if (trx) return ok({ result: { id: trx[1], status: req.method === 'PUT' ? 'committed' : 'aborted' } });
    if (route === '/_api/cursor' && req.method === 'POST') {
      const call: QueryCall = { query: req.body.query, bindVars: req.body.bindVars ?? {}, options: req.body.options ?? {}, trxId: req.headers['x-arango-trx-id'] as string | undefined, body: req.body };
      queries.push(call);
      const answer = options.onQuery ? await options.onQuery(call) : [];
      if (!Array.isArray(answer) && 'status' in answer) return answer;
      const rows = Array.isArray(answer) ? answer : answer.rows;
      const fullCount = Array.isArray(answer) ? undefined : answer.fullCount;
      return ok({ result: rows, hasMore: false, cached: false, extra: { warnings: [], stats: fullCount === undefined ? {} : { fullCount } } }, 201);
    }
    return arangoError(404, 404, `fake ArangoDB does not serve ${req.method} ${route}`);
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const rec: RecordedRequest = { method: req.method ?? 'GET', path: u.pathname, search: u.searchParams, headers: req.headers, body };
      requests.push(rec);
      const trxId = req.headers['x-arango-trx-id'] as string | undefined;
      if (trxId) {
        const n = (inFlight.get(trxId) ?? 0) + 1;
        inFlight.set(trxId, n);
        fake.maxTrxConcurrency = Math.max(fake.maxTrxConcurrency, n);
      }
      handle(rec)
        .then(({ status, body: out }) => {
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify(out));
        })
        .catch((err: unknown) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: true, code: 500, errorNum: 4, errorMessage: String(err) }));
        })
        .finally(() => {
          if (trxId) inFlight.set(trxId, (inFlight.get(trxId) ?? 1) - 1);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}
