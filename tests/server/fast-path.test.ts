/**
 * The fast dispatcher (server/fast-path.ts) answers exactly as Koa does. Two apps serve one
 * SQLite store, one with the fast path (the default) and one with Koa alone; every request below
 * goes to both, and the answers must be the same: status and status text, the body, and the
 * headers (X-Request-Id, Content-Type, Content-Length, ETag, Allow...). The set covers good
 * requests and bad ones: malformed JSON, a scalar body, the wrong media type, an oversized body
 * (declared and chunked), bad path and query parameters, an unknown route, a wrong method, HEAD,
 * OPTIONS, a trailing slash, letter case, percent-encoded keys and parameters, repeated query
 * parameters, a compressed body. The requests meant for the fast path are checked to have been
 * served without Koa, and the others to have reached it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SqliteGraphStore } from '../../graph/store/sqlite-store.js';
import { createApp, type WeftApp } from '../../server/app.js';
import { resolveServerConfig } from '../../server/config.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-fast-path-'));
let store: SqliteGraphStore;
const servers: Server[] = [];
let fastPort = 0;
let koaPort = 0;
/** Requests of the fast app that reached its Koa middleware. */
let koaHits = 0;
const BASE = '/torc-service';
/** 2 KiB body limit, so an oversized body is small. */
const LIMIT = 2048;

let wf = '';
let job: Record<string, unknown> = {};

interface Req {
  method: string;
  /** Path under the base path, with the query. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body in two chunks without Content-Length (chunked transfer encoding). */
  chunked?: boolean;
}

interface Answer {
  status: number;
  statusMessage: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(port: number, r: Req): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(r.headers ?? {}) };
    if (r.body !== undefined && !r.chunked) headers['content-length'] = Buffer.byteLength(r.body);
    const req = request({ host: '127.0.0.1', port, method: r.method, path: BASE + r.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, statusMessage: res.statusMessage!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (r.body === undefined) req.end();
    else if (r.chunked) {
      const half = Math.floor(r.body.length / 2);
      req.write(r.body.slice(0, half));
      req.end(r.body.slice(half));
    } else req.end(r.body);
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What must match: everything but the per-connection headers, a generated request id as its shape. */
function comparable(a: Answer, r: Req, normalize: boolean): unknown {
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a.headers)) {
    if (k === 'date' || k === 'connection' || k === 'keep-alive') continue;
    headers[k] = v;
  }
  const given = r.headers?.['x-request-id'];
  if (headers['x-request-id'] !== given && typeof headers['x-request-id'] === 'string' && UUID.test(headers['x-request-id'])) headers['x-request-id'] = '<uuid>';
  let body: unknown = a.body;
  if (normalize) {
    // Creations: keys, revisions and timestamps differ between the two answers, and so may the length.
    expect(Number(headers['content-length'])).toBe(Buffer.byteLength(a.body));
    delete headers['content-length'];
    body = JSON.parse(a.body, (k, v: unknown) => (['_key', '_id', '_rev', 'workflow_id', 'timestamp'].includes(k) ? '<id>' : v));
  }
  return { status: a.status, statusMessage: a.statusMessage, headers, body };
}

/** Send `r` to both apps; the answers must be the same. Returns the fast app's answer. */
async function same(r: Req, opts: { fast: boolean; normalize?: boolean }): Promise<Answer> {
  const hitsBefore = koaHits;
  const fast = await send(fastPort, r);
  const koa = await send(koaPort, r);
  // A POST that succeeded created a document on each side.
  const normalize = opts.normalize ?? (r.method === 'POST' && fast.status === 200 && fast.body.includes('"_rev"'));
  expect(comparable(fast, r, normalize), `${r.method} ${r.path}`).toEqual(comparable(koa, r, normalize));
  expect(koaHits - hitsBefore, `${r.method} ${r.path} ${opts.fast ? 'on the fast path' : 'through Koa'}`).toBe(opts.fast ? 0 : 1);
  return fast;
}

const json = (body: unknown, extra: Record<string, string> = {}): Pick<Req, 'headers' | 'body'> => ({
  headers: { 'content-type': 'application/json', ...extra },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

async function listen(app: WeftApp): Promise<number> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  return (server.address() as AddressInfo).port;
}

function addTestRoutes(app: WeftApp): void {
  app.api.route({ method: 'get', path: '/test/text', summary: 'a string result' }, () => '<p>hello</p>');
  app.api.route({ method: 'get', path: '/test/null', summary: 'a null result' }, () => null);
  app.api.route({ method: 'get', path: '/test/nothing', summary: 'no result' }, () => undefined);
  app.api.route({ method: 'get', path: '/test/buffer', summary: 'a Buffer result' }, () => Buffer.from('bytes'));
  app.api.route({ method: 'get', path: '/test/bigint', summary: 'a result JSON cannot hold' }, () => ({ n: 1n }));
  app.api.route({ method: 'post', path: '/test/raw', summary: 'the body as sent', body: z.looseObject({}), bodyRequired: false }, ({ ctx }) => ({
    raw: (ctx.request as { body?: unknown }).body ?? null,
  }));
  app.api.route({ method: 'get', path: '/test/header', summary: 'reads a header', koa: true }, ({ ctx }) => ({ agent: ctx.get('x-test') }));
  // What a handler receives carries no accessors of its own (they are the prototype's): an object
  // literal with getters, made per request, kept each request's objects alive through the young
  // generation's collections (see HandlerRequest in server/api-router.ts). Both paths give the
  // same answer, and the lazy `log` and `ctx.state.log` still work.
  app.api.route({ method: 'get', path: '/test/request-shape', summary: 'what a handler receives' }, (req) => {
    const own = (o: object): string[] => Object.entries(Object.getOwnPropertyDescriptors(o)).filter(([, d]) => d.get !== undefined).map(([k]) => k);
    const state = req.ctx.state as { log?: unknown };
    return { ownAccessors: own(req), stateAccessors: own(state), logs: typeof req.log.info, stateLogs: typeof (state.log as { info?: unknown }).info };
  });
  app.api.route({ method: 'get', path: '/test/misdeclared', summary: 'reads a header without koa: true' }, ({ ctx }) => ({ agent: ctx.get('x-test') }));
}

beforeAll(async () => {
  store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
  await store.open();
  const logger = pino({ level: 'silent' });
  const config = resolveServerConfig({ env: {}, flags: { port: 0, bodyLimitMb: LIMIT / (1024 * 1024) } });
  const fastApp = createApp({ store, config, logger, fastPath: true });
  const koaApp = createApp({ store, config, logger, fastPath: false });
  addTestRoutes(fastApp);
  addTestRoutes(koaApp);
  fastApp.middleware.unshift(async (_ctx, next) => {
    koaHits++;
    await next();
  });
  fastPort = await listen(fastApp);
  koaPort = await listen(koaApp);

  const created = await send(fastPort, { method: 'POST', path: '/workflows', ...json({ name: 'fast-path', user: 'tester' }) });
  wf = JSON.parse(created.body)._key;
  const made = await send(fastPort, { method: 'POST', path: `/workflows/${wf}/jobs`, ...json({ name: 'j1', command: 'true' }) });
  job = JSON.parse(made.body);
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fast path and Koa answer the same', () => {
  it('service routes, and what Koa alone answers (HEAD, OPTIONS, 404, 405, trailing slash, letter case)', async () => {
    const ping = await same({ method: 'GET', path: '/ping' }, { fast: true });
    expect(ping.status).toBe(200);
    expect(ping.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(ping.headers['x-request-id']).toMatch(UUID);
    await same({ method: 'GET', path: '/version' }, { fast: true });
    await same({ method: 'GET', path: '/ping?' }, { fast: true });
    await same({ method: 'GET', path: '/ping?x=1' }, { fast: true });
    await same({ method: 'HEAD', path: '/ping' }, { fast: false });
    await same({ method: 'OPTIONS', path: '/ping' }, { fast: false });
    await same({ method: 'GET', path: '/ping/' }, { fast: false });
    await same({ method: 'GET', path: '/PING' }, { fast: false });
    await same({ method: 'GET', path: '/Workflows' }, { fast: false });
    await same({ method: 'GET', path: '/no/such/route' }, { fast: false });
    await same({ method: 'GET', path: '/workflows//jobs' }, { fast: false });
    const wrong = await same({ method: 'DELETE', path: '/ping' }, { fast: false });
    expect(wrong.status).toBe(405);
    await same({ method: 'PATCH', path: `/workflows/${wf}` }, { fast: false });
    await same({ method: 'GET', path: '/openapi.json' }, { fast: false });
  });

  it('request ids: a valid one is echoed, an invalid one replaced', async () => {
    const given = await same({ method: 'GET', path: '/ping', headers: { 'x-request-id': 'abc-123.x:y' } }, { fast: true });
    expect(given.headers['x-request-id']).toBe('abc-123.x:y');
    const bad = await same({ method: 'GET', path: '/ping', headers: { 'x-request-id': 'has space' } }, { fast: true });
    expect(bad.headers['x-request-id']).toMatch(UUID);
    await same({ method: 'GET', path: `/workflows/${wf}/nope`, headers: { 'x-request-id': 'err-1' } }, { fast: true });
  });

  it('path parameters: keys, ids, percent-encoding, bad and missing ones', async () => {
    await same({ method: 'GET', path: `/workflows/${wf}` }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${encodeURIComponent(`workflows/${wf}`)}` }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf.split('').map((c) => `%${c.charCodeAt(0).toString(16)}`).join('')}` }, { fast: true });
    await same({ method: 'GET', path: '/workflows/999999' }, { fast: true });
    await same({ method: 'GET', path: '/workflows/jobs%2F1' }, { fast: true });
    await same({ method: 'GET', path: '/workflows/%E0%A4%A' }, { fast: true });
    await same({ method: 'GET', path: '/workflows/a%20b' }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/jobs/${job._key}` }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/jobs/${encodeURIComponent(String(job._id))}` }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/jobs/424242` }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/no_such_collection/1` }, { fast: true });
    await same({ method: 'DELETE', path: `/workflows/${wf}/jobs/424242` }, { fast: true });
    await same({ method: 'PUT', path: `/workflows/${wf}/jobs/${job._key}/start_job/bad-rev/1/nope`, headers: { 'content-type': 'application/json' } }, { fast: true });
  });

  it('query parameters: paging, filters, repeated, percent-encoded keys, unknown and bad ones', async () => {
    await same({ method: 'GET', path: '/workflows?limit=1&skip=0' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?limit=2&limit=3' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?lim%69t=1' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?limit=%31' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?limit=ten' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?unknown=1&other' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?limit=1&&skip=0&=x' }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/jobs?status=uninitialized&sort_by=name&reverse_sort=True` }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/jobs?name=j%201+x` }, { fast: true });
    await same({ method: 'GET', path: '/workflows??limit=1' }, { fast: true });
    await same({ method: 'GET', path: '/ping?a=%zz' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?__proto__=1' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?limit=' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?skip=0&limit=1&skip=1' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?a.b~c=d-e_f' }, { fast: true });
    await same({ method: 'GET', path: '/workflows?limit=1+1' }, { fast: true });
  });

  it('bodies: good, malformed, scalar, empty, missing, BOM, __proto__, wrong type, oversized, chunked, compressed', async () => {
    const wfBody = { name: 'made-twice', user: 'tester' };
    await same({ method: 'POST', path: '/workflows', ...json(wfBody) }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', ...json(wfBody, { 'content-type': 'application/json; charset=utf-8' }) }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', ...json(wfBody, { 'content-type': 'Application/JSON;charset=UTF-8' }) }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', ...json(wfBody), chunked: true }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', ...json('{"name": ') }, { fast: true });
    await same({ method: 'POST', path: '/workflows', ...json('"just a string"') }, { fast: true });
    await same({ method: 'POST', path: '/workflows', ...json('  12') }, { fast: true });
    await same({ method: 'POST', path: '/workflows', ...json('[1, 2]') }, { fast: true });
    await same({ method: 'POST', path: '/workflows', ...json('{"name": "x", "user": "u"} trailing') }, { fast: true });
    await same({ method: 'POST', path: '/workflows', ...json('\uFEFF{"name": "bom", "user": "u"}') }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', ...json('{"name": "p", "user": "u", "x": {"__proto__": {"admin": true}}}') }, { fast: true });
    // An empty JSON body is {} (co-body), and a workflow needs no field.
    await same({ method: 'POST', path: '/workflows', ...json('') }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', ...json('   ') }, { fast: true });
    await same({ method: 'POST', path: '/workflows' }, { fast: true });
    // Content-Length: 0 with a JSON type: an empty JSON body, {} again.
    await same({ method: 'POST', path: '/workflows', headers: { 'content-type': 'application/json' } }, { fast: true, normalize: true });
    await same({ method: 'POST', path: '/workflows', headers: { 'content-type': 'text/plain' }, body: '{"name":"x"}' }, { fast: false });
    await same({ method: 'POST', path: '/workflows', body: '{"name":"x"}' }, { fast: false });
    await same({ method: 'POST', path: '/workflows', headers: { 'content-type': 'application/json; charset' }, body: '{"name":"x"}' }, { fast: false });
    await same({ method: 'POST', path: '/workflows', headers: { 'content-type': 'application/csp-report' }, body: '{"name":"x"}' }, { fast: false });
    const big = JSON.stringify({ name: 'big', user: 'u', description: 'x'.repeat(LIMIT) });
    const declared = await same({ method: 'POST', path: '/workflows', ...json(big) }, { fast: true });
    expect(declared.status).toBe(413);
    const chunked = await same({ method: 'POST', path: '/workflows', ...json(big), chunked: true }, { fast: true });
    expect(chunked.status).toBe(413);
    await same({ method: 'POST', path: '/workflows', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(wfBody)) }, { fast: false, normalize: true });
    await same({ method: 'POST', path: '/workflows', headers: { 'content-type': 'application/json', 'content-encoding': 'compress' }, body: 'xx' }, { fast: false });
    await same({ method: 'POST', path: '/workflows', ...json({ name: 7 }) }, { fast: true });
    await same({ method: 'POST', path: `/workflows/${wf}/jobs`, ...json({ name: 'j', command: 'true', unknown_field: 1 }) }, { fast: true });
    await same({ method: 'GET', path: '/workflows', ...json({ ignored: true }) }, { fast: false });
    await same({ method: 'GET', path: '/workflows', headers: { 'content-type': 'application/json', 'content-length': '0' } }, { fast: true });
    await same({ method: 'DELETE', path: `/workflows/${wf}/jobs/424242`, headers: { 'content-type': 'text/plain' }, body: 'x' }, { fast: false });
    await same({ method: 'POST', path: '/ping', ...json({}) }, { fast: false });
  });

  it('updates: a stale revision is 409 with the current ETag; a good one writes', async () => {
    const stale = await same({ method: 'PUT', path: `/workflows/${wf}/jobs/${job._key}`, ...json({ _rev: '1-stale', command: 'false' }) }, { fast: true });
    expect(stale.status).toBe(409);
    expect(stale.headers.etag).toBeDefined();
    await same({ method: 'PUT', path: `/workflows/${wf}/jobs/${job._key}`, ...json({ command: 'false' }) }, { fast: true });
    await same({ method: 'PUT', path: `/workflows/${wf}/jobs/${job._key}`, ...json({ _rev: 'x', _key: 'other' }) }, { fast: true });
    // Each app writes once, each with the revision it reads.
    for (const port of [fastPort, koaPort]) {
      const current = JSON.parse((await send(port, { method: 'GET', path: `/workflows/${wf}/jobs/${job._key}` })).body);
      const put = await send(port, { method: 'PUT', path: `/workflows/${wf}/jobs/${job._key}`, ...json({ _rev: current._rev, command: `echo ${port}` }) });
      expect(put.status).toBe(200);
      expect(JSON.parse(put.body).command).toBe(`echo ${port}`);
    }
  });

  it('engine routes and the specification upload', async () => {
    await same({ method: 'POST', path: `/workflows/${wf}/bulk_jobs`, ...json({ jobs: [{ name: 'b1', command: 'true' }] }) }, { fast: true, normalize: true });
    await same({ method: 'POST', path: `/workflows/${wf}/bulk_jobs`, ...json({ jobs: [{ name: 'b2' }] }) }, { fast: true });
    await same({ method: 'GET', path: `/workflows/${wf}/is_complete` }, { fast: true });
    await same({ method: 'POST', path: `/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=nope`, ...json({ num_cpus: 1 }) }, { fast: true });
    await same({ method: 'POST', path: '/workflow_specifications', ...json({ name: 'spec', jobs: [{ name: 'a', command: 'true' }] }) }, { fast: false, normalize: true });
    await same({ method: 'POST', path: '/workflow_specifications', headers: { 'content-type': 'application/yaml' }, body: 'name: spec\njobs:\n  - name: a\n    command: "true"\n' }, { fast: false, normalize: true });
  });

  it('results that are not JSON objects, and routes that need the Koa context', async () => {
    await same({ method: 'GET', path: '/test/text' }, { fast: true });
    const nul = await same({ method: 'GET', path: '/test/null' }, { fast: true });
    expect(nul.status).toBe(204);
    const nothing = await same({ method: 'GET', path: '/test/nothing' }, { fast: true });
    expect(nothing.status).toBe(404);
    await same({ method: 'GET', path: '/test/buffer' }, { fast: true });
    const bigint = await same({ method: 'GET', path: '/test/bigint' }, { fast: true });
    expect(bigint.status).toBe(500);
    await same({ method: 'POST', path: '/test/raw', ...json({ a: [1, { b: null }] }) }, { fast: true });
    await same({ method: 'POST', path: '/test/raw' }, { fast: true });
    const shape = await same({ method: 'GET', path: '/test/request-shape' }, { fast: true });
    expect(JSON.parse(shape.body)).toEqual({ ownAccessors: [], stateAccessors: [], logs: 'function', stateLogs: 'function' });
    const header = await same({ method: 'GET', path: '/test/header', headers: { 'x-test': 'yes' } }, { fast: false });
    expect(JSON.parse(header.body)).toEqual({ agent: 'yes' });
    // A route that reads the Koa context without declaring it is a clear 500 on the fast path.
    const mis = await send(fastPort, { method: 'GET', path: '/test/misdeclared' });
    expect(mis.status).toBe(500);
    expect(JSON.parse(mis.body).error.code).toBe('INTERNAL');
  });
});
