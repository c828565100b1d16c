/**
 * Where the live ArangoDB suites connect: WEFT_ARANGO_URL (unset: the suites are skipped with
 * exactly the reason SKIP_REASON), WEFT_ARANGO_USER / WEFT_ARANGO_PASSWORD or WEFT_ARANGO_TOKEN,
 * and a database of their own (WEFT_ARANGO_TEST_DB, default `weft_test_<pid>`), dropped at the
 * end unless WEFT_ARANGO_KEEP_DB is set, so a failure can be inspected.
 */
import { Database } from 'arangojs/databases';
import type { ArangoGraphStoreOptions } from '../../graph/store/arango-store.js';

export const SKIP_REASON = 'WEFT_ARANGO_URL not set';
export const ARANGO_URL = process.env.WEFT_ARANGO_URL;

/** Logs why the suite is skipped; returns true when it is. */
export function skipWithoutArango(suite: string): boolean {
  if (!ARANGO_URL) console.log(`skipping ${suite} on ArangoDB: ${SKIP_REASON}`);
  return !ARANGO_URL;
}

export function liveArangoOptions(database = process.env.WEFT_ARANGO_TEST_DB ?? `weft_test_${process.pid}`): ArangoGraphStoreOptions {
  return {
    url: ARANGO_URL ?? '',
    database,
    ...(process.env.WEFT_ARANGO_TOKEN ? { token: process.env.WEFT_ARANGO_TOKEN } : {}),
    ...(process.env.WEFT_ARANGO_USER ? { username: process.env.WEFT_ARANGO_USER, password: process.env.WEFT_ARANGO_PASSWORD ?? '' } : {}),
  };
}

/** A raw arangojs handle with the same credentials (for checks and cleanup). */
export function liveDatabase(options: ArangoGraphStoreOptions, databaseName = options.database): Database {
  return new Database({
    url: options.url,
    databaseName,
    ...(options.token ? { auth: { token: options.token } } : options.username ? { auth: { username: options.username, password: options.password ?? '' } } : {}),
  });
}

/** Drop the test database unless WEFT_ARANGO_KEEP_DB asks to keep it. */
export async function dropLiveDatabase(options: ArangoGraphStoreOptions): Promise<void> {
  if (process.env.WEFT_ARANGO_KEEP_DB) return;
  const sys = liveDatabase(options, '_system');
  await sys.dropDatabase(options.database).catch(() => undefined);
  sys.close();
}
