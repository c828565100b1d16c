/**
 * testStoreForSuite: a real SqliteGraphStore on weft.db in a fresh temp directory, for the tests
 * that use the store without a server. Call it at the top of a test file (or of a describe
 * block): the store is opened before that scope's first test (ahead of any beforeAll registered
 * after the call) and closed, and its directory deleted, after its last test (after any afterAll
 * registered after the call: vitest runs them in reverse order).
 *
 *   const store = testStoreForSuite('weft-lease-');
 *   it('...', async () => { await store.insert(...); });
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { SqliteGraphStore } from '../../graph/store/sqlite-store.js';

/** The store, open for the tests of the calling scope; `prefix` names its temp directory. */
export function testStoreForSuite(prefix = 'weft-store-'): SqliteGraphStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
  beforeAll(async () => {
    await store.open();
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}
