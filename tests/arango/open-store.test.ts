/** The server opens the store its config names: flags, WEFT_* variables and the config file reach ArangoGraphStore. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveServerConfig } from '../../server/config.js';
import { openStore } from '../../server/open-store.js';
import type { GraphStore } from '../../graph/store/index.js';
import { startFakeArango, type FakeArango } from './fake-arango.js';

let fake: FakeArango | undefined;
let store: GraphStore | undefined;
const dirs: string[] = [];

afterEach(async () => {
  await store?.close();
  await fake?.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  store = undefined;
  fake = undefined;
});

describe('server store selection', () => {
  it('opens ArangoDB from WEFT_* variables with user and password', async () => {
    fake = await startFakeArango({ auth: { basic: 'weft:pw' } });
    const config = resolveServerConfig({ env: { WEFT_STORE: 'arango', WEFT_ARANGO_URL: fake.url, WEFT_ARANGO_DB: 'lab', WEFT_ARANGO_USER: 'weft', WEFT_ARANGO_PASSWORD: 'pw' } });
    store = await openStore(config);
    expect(store.capabilities.kind).toBe('arango');
    expect(fake.requests.some((r) => r.method === 'POST' && r.path === '/_db/_system/_api/database' && r.body.name === 'lab')).toBe(true);
  });

  it('opens ArangoDB from flags with a JWT, flags winning over the config file', async () => {
    fake = await startFakeArango({ auth: { bearer: 'jwt-1' }, databases: ['fromflag'] });
    const dir = mkdtempSync(join(tmpdir(), 'weft-cfg-'));
    dirs.push(dir);
    const file = join(dir, 'weft.yaml');
    writeFileSync(file, `store: arango\narangoUrl: ${fake.url}\narangoDb: fromfile\narangoToken: stale\n`);
    const config = resolveServerConfig({ flags: { config: file, arangoDb: 'fromflag', arangoToken: 'jwt-1' }, env: {} });
    store = await openStore(config);
    expect(fake.requests.every((r) => r.headers.authorization === 'Bearer jwt-1')).toBe(true);
    expect(fake.requests.some((r) => r.path.startsWith('/_db/fromfile/'))).toBe(false);
  });

  it('stops with STORE_UNAVAILABLE naming the URL when the credentials are wrong', async () => {
    fake = await startFakeArango({ auth: { basic: 'weft:pw' } });
    const config = resolveServerConfig({ flags: { store: 'arango', arangoUrl: fake.url, arangoUser: 'weft', arangoPassword: 'nope' }, env: {} });
    await expect(openStore(config)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining(fake.url) });
  });

  it('opens the SQLite file by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-db-'));
    dirs.push(dir);
    store = await openStore(resolveServerConfig({ flags: { db: join(dir, 'w.db') }, env: {} }));
    expect(store.capabilities.kind).toBe('sqlite');
  });
});
