/**
 * The store conformance suite against a real ArangoDB:
 * `WEFT_ARANGO_URL=http://127.0.0.1:8529 npm run test:arango` (see live-options.ts for the
 * credentials and the test database). Without WEFT_ARANGO_URL it is skipped with that reason.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ArangoGraphStore } from '../../graph/store/arango-store.js';
import { GRAPH_NAME, indexPlan } from '../../graph/store/arango-schema.js';
import { runStoreConformance } from '../conformance/store-conformance.js';
import { dropLiveDatabase, liveArangoOptions, liveDatabase, skipWithoutArango } from './live-options.js';

describe.skipIf(skipWithoutArango('the store conformance suite'))('ArangoDB store', () => {
  const options = liveArangoOptions();
  afterAll(() => dropLiveDatabase(options));

  runStoreConformance('arango', async () => {
    const store = new ArangoGraphStore(options);
    await store.open();
    return { store, cleanup: () => store.close() };
  });

  describe('arango store specifics', () => {
    it('open is idempotent and leaves the graph and indexes in place', async () => {
      for (let i = 0; i < 2; i++) {
        const s = new ArangoGraphStore(options);
        await s.open();
        await s.close();
      }
      const db = liveDatabase(options);
      const graph = await db.graph(GRAPH_NAME).get();
      expect(graph.edgeDefinitions.map((d) => d.collection)).toContain('blocks');
      const jobsIndexes = await db.collection('jobs').indexes();
      for (const w of indexPlan().filter((i) => i.collection === 'jobs')) {
        expect(jobsIndexes.some((i) => JSON.stringify(i.fields) === JSON.stringify(w.fields))).toBe(true);
      }
      db.close();
    });

    it('a missing database is a clear error when creating it is off', async () => {
      const s = new ArangoGraphStore({ ...liveArangoOptions(`weft_missing_${process.pid}`), createDatabase: false, connectRetries: 0 });
      await expect(s.open()).rejects.toThrow(/has no database "weft_missing_/);
    });
  });
});
