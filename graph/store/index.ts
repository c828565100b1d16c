/** The store port's types (port.ts exports only types) and the two adapters. */
export type * from './port.js';
export { SqliteGraphStore, type SqliteGraphStoreOptions } from './sqlite-store.js';
export { ArangoGraphStore, type ArangoGraphStoreOptions } from './arango-store.js';
