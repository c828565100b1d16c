import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteGraphStore } from '../../graph/store/index.js';
import { runStoreConformance } from './store-conformance.js';

runStoreConformance('sqlite (real file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-store-'));
  const store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
  await store.open();
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite store specifics', () => {
  it('keeps documents and key sequence across close and reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-store-'));
    const path = join(dir, 'weft.db');
    const s1 = new SqliteGraphStore({ path });
    await s1.open();
    await s1.insert('workflows', null, { _key: '500', name: 'w', user: 'u' });
    const f = await s1.insert('files', '500', { path: 'x' });
    await s1.close();
    const s2 = new SqliteGraphStore({ path });
    await s2.open();
    expect((await s2.get('files', '500', f._key))?.path).toBe('x');
    const g = await s2.insert('files', '500', { path: 'y' });
    expect(Number(g._key)).toBeGreaterThan(Number(f._key));
    await s2.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a small page cache (8 MiB; WEFT_SQLITE_CACHE_MIB sets another), since every COMMIT may walk all of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-store-'));
    const before = process.env.WEFT_SQLITE_CACHE_MIB;
    try {
      delete process.env.WEFT_SQLITE_CACHE_MIB;
      const plain = new SqliteGraphStore({ path: join(dir, 'a.db') });
      await plain.open();
      expect(plain.database.pragma('cache_size', { simple: true })).toBe(-8192);
      await plain.close();
      process.env.WEFT_SQLITE_CACHE_MIB = '64';
      const big = new SqliteGraphStore({ path: join(dir, 'b.db') });
      await big.open();
      expect(big.database.pragma('cache_size', { simple: true })).toBe(-65536);
      await big.close();
      process.env.WEFT_SQLITE_CACHE_MIB = 'lots';
      const bad = new SqliteGraphStore({ path: join(dir, 'c.db') });
      await bad.open();
      expect(bad.database.pragma('cache_size', { simple: true })).toBe(-8192);
      await bad.close();
    } finally {
      if (before === undefined) delete process.env.WEFT_SQLITE_CACHE_MIB;
      else process.env.WEFT_SQLITE_CACHE_MIB = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a field path that could inject SQL', async () => {
    const store = new SqliteGraphStore({ path: ':memory:' });
    await store.open();
    await expect(store.find('jobs', 'w', { where: { "name') OR 1=1 --": 'x' } })).rejects.toThrow(/Invalid field path/);
    await expect(store.find('jobs', 'w', { sort: [{ field: 'a b' }] })).rejects.toThrow(/Invalid field path/);
    await store.close();
  });
});
