/**
 * startTestServer: a real Weft server on an ephemeral 127.0.0.1 port over a real SQLite file in
 * a fresh temp directory. Use one per test file (beforeAll) or per test.
 *
 *   const srv = await startTestServer();
 *   const res = await fetch(`${srv.baseUrl}/workflows`);   // baseUrl includes /torc-service
 *   await srv.close();                                      // stops the server, closes the store,
 *                                                           // deletes the temp dir (kept if keep: true)
 *
 * `restart()` stops the server and starts a new one on the same file (persistence tests).
 * `testServerForSuite()` starts one for a whole file (or describe block) and closes it after.
 *
 * WEFT_TEST_STORE=arango (with WEFT_ARANGO_URL and its credentials, see tests/arango/live-options.ts)
 * runs the same suites on ArangoDB: each server gets a database of its own, dropped at close.
 * `npm run test:arango` runs the engine, view and worker suites that way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { GraphStore } from '../../graph/store/port.js';
import type { BackgroundTask } from '../../server/background.js';
import { startServer, type RunningServer } from '../../server/main.js';
import { dropLiveDatabase, liveArangoOptions } from '../arango/live-options.js';

const ON_ARANGO = process.env.WEFT_TEST_STORE === 'arango';
if (ON_ARANGO && !process.env.WEFT_ARANGO_URL) throw new Error('WEFT_TEST_STORE=arango needs WEFT_ARANGO_URL (the ArangoDB server to run the suites on)');
let arangoDbCount = 0;

/** Store flags: the SQLite file, or (WEFT_TEST_STORE=arango) a new ArangoDB database per server. */
function storeFlags(db: string, reuse: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!ON_ARANGO) return { db, store: 'sqlite' };
  if (reuse) return reuse;
  const o = liveArangoOptions(`weft_test_${process.pid}_${++arangoDbCount}`);
  return {
    store: 'arango',
    arangoUrl: o.url,
    arangoDb: o.database,
    ...(o.token ? { arangoToken: o.token } : {}),
    ...(o.username ? { arangoUser: o.username, arangoPassword: o.password } : {}),
  };
}

export interface TestServerOptions {
  /** Database file to use (default: a new temp dir's weft.db). */
  db?: string;
  /** Base path (default /torc-service). */
  basePath?: string;
  /** Extra flag values (e.g. bodyLimitMb, leaseTimeoutSeconds). */
  flags?: Record<string, unknown>;
  /** Keep the temp dir after close (to inspect a failure). */
  keep?: boolean;
  /** Background tasks (default: the server's BACKGROUND_TASKS). */
  background?: readonly BackgroundTask[];
  /** Internal: the ArangoDB store flags of the server being restarted. */
  arangoFlags?: Record<string, unknown>;
}

export interface TestServer {
  /** http://127.0.0.1:PORT (no base path). */
  url: string;
  /** http://127.0.0.1:PORT/torc-service */
  baseUrl: string;
  port: number;
  /** The opened store behind the server (for assertions and setup). */
  store: GraphStore;
  db: string;
  dir: string;
  server: RunningServer;
  close(): Promise<void>;
  /** Stop this server and start a new one on the same database file. */
  restart(): Promise<TestServer>;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = opts.db ? join(opts.db, '..') : mkdtempSync(join(tmpdir(), 'weft-test-'));
  const db = opts.db ?? join(dir, 'weft.db');
  const store = storeFlags(db, opts.arangoFlags);
  const server = await startServer({
    flags: { host: '127.0.0.1', port: 0, ...store, basePath: opts.basePath ?? '/torc-service', ...(opts.flags ?? {}) },
    env: {},
    ...(opts.background ? { background: opts.background } : {}),
  });
  let closed = false;
  const close = async (removeDir = !opts.keep && !opts.db): Promise<void> => {
    if (closed) return;
    closed = true;
    await server.close();
    if (removeDir) {
      rmSync(dir, { recursive: true, force: true });
      if (ON_ARANGO) await dropLiveDatabase(liveArangoOptions(String(store['arangoDb'])));
    }
  };
  return {
    url: server.origin,
    baseUrl: server.url,
    port: server.port,
    store: server.store,
    db,
    dir,
    server,
    close: () => close(),
    restart: async () => {
      await close(false);
      const next = await startTestServer({ ...opts, db, ...(ON_ARANGO ? { arangoFlags: store } : {}) });
      const origClose = next.close;
      return {
        ...next,
        dir,
        close: async () => {
          await origClose();
          if (!opts.keep && !opts.db) {
            rmSync(dir, { recursive: true, force: true });
            if (ON_ARANGO) await dropLiveDatabase(liveArangoOptions(String(store['arangoDb'])));
          }
        },
      };
    },
  };
}

/**
 * One test server for the tests of the calling scope (a file, or a describe block): started in
 * beforeAll, ahead of the scope's own beforeAll hooks registered after the call, and closed in
 * afterAll, after the scope's own afterAll hooks. The object is filled in once the server has
 * started: read its fields inside tests and hooks, never at module level.
 *
 *   const srv = testServerForSuite({ flags: { bodyLimitMb: 1 } });
 *   it('...', async () => { await api(srv.baseUrl, 'GET', '/workflows'); });
 */
export function testServerForSuite(opts: TestServerOptions = {}): TestServer {
  const srv = {} as TestServer;
  beforeAll(async () => {
    Object.assign(srv, await startTestServer(opts));
  });
  afterAll(async () => {
    // Not started (its beforeAll failed): nothing to close.
    if ('close' in srv) await srv.close();
  });
  return srv;
}

/** fetch + JSON helper: returns status and parsed body. */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
