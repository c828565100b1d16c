export type {
  Condition,
  ConditionOp,
  Direction,
  Doc,
  EdgeDoc,
  EdgeQuery,
  FindOptions,
  FindResult,
  GraphStore,
  Neighbor,
  SortKey,
  StoreCapabilities,
  Where,
  WriteOptions,
} from './port.js';
export { SqliteGraphStore, type SqliteGraphStoreOptions } from './sqlite-store.js';
export { ArangoGraphStore, type ArangoGraphStoreOptions } from './arango-store.js';
