/**
 * Open the graph store the resolved server config names: the embedded SQLite file (default) or
 * ArangoDB (`--store arango --arango-url URL --arango-db NAME` with `--arango-user/--arango-password`
 * or `--arango-token`, the same from WEFT_* variables or the config file).
 * A store that cannot be opened throws STORE_UNAVAILABLE naming the URL or file and the cause,
 * so the server stops at start with one clear line.
 */
import { ArangoGraphStore, SqliteGraphStore, type GraphStore } from '../graph/store/index.js';
import type { ResolvedServerConfig } from './config.js';

/** The store settings of the server config. */
export type StoreConfig = Pick<ResolvedServerConfig, 'store' | 'db' | 'arangoUrl' | 'arangoDb' | 'arangoUser' | 'arangoPassword' | 'arangoToken'>;

/** Construct the configured store without opening it. */
export function createStore(config: StoreConfig): GraphStore {
  if (config.store === 'arango') {
    return new ArangoGraphStore({
      url: config.arangoUrl,
      database: config.arangoDb,
      ...(config.arangoToken !== undefined ? { token: config.arangoToken } : credentials(config)),
    });
  }
  return new SqliteGraphStore({ path: config.db });
}

/** Construct and open the configured store (creating what is missing). */
export async function openStore(config: StoreConfig): Promise<GraphStore> {
  const store = createStore(config);
  await store.open();
  return store;
}

/** User and password; credentials written in the URL count when no password is configured. */
function credentials(config: StoreConfig): { username?: string; password?: string } {
  if (config.arangoPassword === undefined && hasUserInfo(config.arangoUrl)) return {};
  return { username: config.arangoUser, password: config.arangoPassword ?? '' };
}

function hasUserInfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}
