/**
 * The SQLite store's group commit: transactions started in the same turn of the event loop share
 * one SQLite COMMIT, each still all or nothing, and none is answered before it is on disk.
 * A second connection to the same file is the witness of what is committed.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteGraphStore } from '../../graph/store/index.js';

let dir: string;
let path: string;
let store: SqliteGraphStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-group-'));
  path = join(dir, 'weft.db');
  store = new SqliteGraphStore({ path });
  await store.open();
  await store.insert('workflows', null, { _key: '1', name: 'w', user: 'u' });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Keys of the files of workflow 1 as another connection sees them (committed data only). */
function committedFiles(): string[] {
  const other = new Database(path, { readonly: true });
  try {
    return (other.prepare(`SELECT key FROM files WHERE workflow = '1' ORDER BY rid`).all() as { key: string }[]).map((r) => r.key);
  } finally {
    other.close();
  }
}

describe('sqlite group commit', () => {
  it('answers each concurrent transaction only after its data is committed', async () => {
    const seen: string[][] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store
          .transaction(async (tx) => {
            await tx.insert('files', '1', { _key: `f${i}`, name: `f${i}` });
            await tx.insert('events', '1', { category: 'file', type: 'add', message: `f${i}` });
          })
          .then(() => seen.push(committedFiles())),
      ),
    );
    for (const keys of seen) expect(keys).toHaveLength(8);
    expect(await store.count('events', '1')).toBe(8);
  });

  it('a failing transaction in a group leaves nothing behind and the others commit', async () => {
    const results = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        store.transaction(async (tx) => {
          await tx.insert('files', '1', { _key: `g${i}`, name: `g${i}` });
          await tx.insert('events', '1', { category: 'file', type: 'add', message: `g${i}` });
          if (i === 1) throw new Error('refused');
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(committedFiles()).toEqual(['g0', 'g2']);
    expect((await store.find('events', '1')).items.map((e) => e.message)).toEqual(['g0', 'g2']);
  });

  it('a single write outside a transaction is committed when it is answered', async () => {
    await store.insert('files', '1', { _key: 'solo', name: 'solo' });
    expect(committedFiles()).toEqual(['solo']);
    await store.update('files', '1', 'solo', { name: 'again' });
    await expect(store.update('files', '1', 'missing', { name: 'x' })).rejects.toMatchObject({ code: 'DOCUMENT_NOT_FOUND' });
    expect((await store.get('files', '1', 'solo'))?.name).toBe('again');
  });

  it('close commits a pending group', async () => {
    const pending = store.insert('files', '1', { _key: 'late', name: 'late' });
    await store.close();
    await pending;
    expect(committedFiles()).toEqual(['late']);
    store = new SqliteGraphStore({ path });
    await store.open();
  });
});

describe('sqlite group commit bounds', () => {
  /**
   * Eight queued transactions that each span a turn of the event loop: without a bound the group
   * stays open while any of them runs, so nobody would be answered before the last one ran.
   */
  async function queued(bounded: SqliteGraphStore, n: number, pause: () => Promise<void>): Promise<{ order: string[]; committedAtAnswer: string[][] }> {
    const order: string[] = [];
    const committedAtAnswer: string[][] = [];
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        bounded
          .transaction(async (tx) => {
            order.push(`run ${i}`);
            await tx.insert('files', '1', { _key: `b${i}`, name: `b${i}` });
            await pause();
            await tx.insert('events', '1', { category: 'file', type: 'add', message: `b${i}` });
          })
          .then(() => {
            order.push(`answered ${i}`);
            committedAtAnswer[i] = committedFiles();
          }),
      ),
    );
    return { order, committedAtAnswer };
  }

  for (const [label, options, pause] of [
    ['a number of transactions', { maxTransactions: 2, maxMs: 0 }, () => new Promise<void>((r) => setImmediate(r))],
    ['a time', { maxMs: 1 }, () => new Promise<void>((r) => setTimeout(r, 5))],
  ] as const) {
    it(`commits a group once it reaches ${label}: the first callers are answered before the last transactions run, none before its commit`, async () => {
      await store.close();
      store = new SqliteGraphStore({ path, groupCommit: options });
      await store.open();
      const { order, committedAtAnswer } = await queued(store, 8, pause);
      expect(order.indexOf('answered 0')).toBeGreaterThanOrEqual(0);
      expect(order.indexOf('answered 0')).toBeLessThan(order.indexOf('run 7'));
      for (let i = 0; i < 8; i++) expect(committedAtAnswer[i]).toContain(`b${i}`);
      expect(committedFiles()).toHaveLength(8);
      expect(await store.count('events', '1')).toBe(8);
    });
  }

  it('with a bound above the queue, a group stays open while queued transactions run (nobody is answered before the last one ran)', async () => {
    await store.close();
    store = new SqliteGraphStore({ path, groupCommit: { maxMs: 0, maxTransactions: 100 } });
    await store.open();
    const { order, committedAtAnswer } = await queued(store, 8, () => new Promise<void>((r) => setImmediate(r)));
    expect(order.indexOf('answered 0')).toBeGreaterThan(order.indexOf('run 7'));
    for (let i = 0; i < 8; i++) expect(committedAtAnswer[i]).toHaveLength(8);
  });

  it('refuses to have no bound at all (a busy store would never commit)', () => {
    expect(() => new SqliteGraphStore({ path, groupCommit: { maxMs: 0, maxTransactions: 0 } })).toThrow(/needs a bound/);
  });

  it('runs waiting transactions one per turn of the event loop, first come first served, so callbacks queued meanwhile (requests read) run in between', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('immediate 1'));
    const runs = [0, 1, 2].map((i) =>
      store.transaction(async (tx) => {
        order.push(`run ${i}`);
        await tx.insert('files', '1', { _key: `t${i}`, name: `t${i}` });
        // A transaction asked for while the store is taken comes after those already waiting.
        if (i === 0) setImmediate(() => void store.transaction(async () => void order.push('run late')));
        setImmediate(() => order.push(`immediate after run ${i}`));
      }),
    );
    await Promise.all(runs);
    await new Promise<void>((r) => setTimeout(r, 20));
    expect(order.filter((e) => e.startsWith('run'))).toEqual(['run 0', 'run 1', 'run 2', 'run late']);
    // Between two runs the event loop turned: what was scheduled during a run came before the next.
    expect(order.indexOf('immediate 1')).toBeLessThan(order.indexOf('run 1'));
    expect(order.indexOf('immediate after run 0')).toBeLessThan(order.indexOf('run 2'));
    expect(order.indexOf('immediate after run 1')).toBeLessThan(order.indexOf('run late'));
    expect(committedFiles()).toEqual(['t0', 't1', 't2']);
  });
});
