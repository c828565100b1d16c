/**
 * The SQLite store's checkpoint thread (graph/store/sqlite-checkpointer.ts) on a real file: the
 * WAL is copied into the database while writes go on, stays bounded under a steady stream of
 * commits (the hand-over to the main thread), is truncated when writes stop, and is gone after
 * close (the last connection's checkpoint) with the data in the database file.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteGraphStore } from '../../graph/store/index.js';

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-ckpt-'));
  path = join(dir, 'weft.db');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const walBytes = () => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

/** Commits of ~8 pages each (events with a 4 KiB body), `n` of them one after another. */
async function writeMany(store: SqliteGraphStore, n: number): Promise<void> {
  const pad = 'x'.repeat(4000);
  for (let i = 0; i < n; i++) await store.insertMany('events', '1', Array.from({ length: 8 }, (_, j) => ({ timestamp: i * 8 + j, category: 'c', pad })));
}

describe('sqlite checkpoint thread', () => {
  it('keeps the WAL bounded under a steady stream of commits and truncates it when they stop', async () => {
    const maxWalBytes = 8 * 1024 * 1024;
    const store = new SqliteGraphStore({ path, checkpointTuning: { hardFrames: 400, smallFrames: 64, intervalMs: 5, idleMs: 300, maxWalBytes } });
    await store.open();
    expect(store.database.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    let maxWal = 0;
    // ~40,000 frames of WAL in all, 100 times the hard bound.
    for (let round = 0; round < 50; round++) {
      await writeMany(store, 100);
      maxWal = Math.max(maxWal, walBytes());
    }
    const stats = store.checkpointStats!;
    expect(stats.running).toBe(true);
    expect(stats.checkpoints).toBeGreaterThan(10);
    // The WAL started again (hand-overs, or whole copies by the main thread where the disk is slower
    // than the writes): of the 160 MB written, the file held a fraction (the bound, plus what came in
    // during the thread's last round before the main thread took over).
    expect(stats.mainCheckpoints + stats.fullMainCheckpoints).toBeGreaterThan(0);
    expect(maxWal).toBeLessThan(maxWalBytes * 5);
    // No commit for idleMs: the thread truncates the WAL.
    // (A slow disk under load may take a few seconds for the copy and its fsync. The main thread's
    // request for a turn, left set by a checkpoint that found the thread busy at the last commit,
    // must not keep the thread from it: that once left the WAL full forever.)
    const truncated = await until(() => store.checkpointStats!.truncates > 0, 15_000);
    expect(truncated, JSON.stringify(store.checkpointStats)).toBe(true);
    expect(walBytes()).toBe(0);
    expect(await store.count('events', '1')).toBe(40_000);
    await store.close();
  });

  it('closes cleanly: the thread stops, the WAL is copied and removed, the data is in the database file', async () => {
    const store = new SqliteGraphStore({ path });
    await store.open();
    await writeMany(store, 50);
    await store.close();
    expect(store.checkpointStats).toBeNull();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const raw = new Database(path, { readonly: true });
    try {
      expect((raw.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n).toBe(400);
    } finally {
      raw.close();
    }
  });

  it('a thread that dies gives the connection SQLite\'s automatic checkpoint back', async () => {
    const store = new SqliteGraphStore({ path });
    await store.open();
    await writeMany(store, 5);
    const worker = (store as unknown as { checkpointer: { worker: { terminate(): Promise<number> } } }).checkpointer.worker;
    await worker.terminate();
    expect(await until(() => store.checkpointStats?.running === false, 5_000)).toBe(true);
    expect(store.database.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await writeMany(store, 5);
    expect(await store.count('events', '1')).toBe(80);
    await store.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it('a reader that holds its snapshot does not break writes; the WAL is bounded again once it lets go', async () => {
    const maxWalBytes = 8 * 1024 * 1024;
    const store = new SqliteGraphStore({ path, checkpointTuning: { hardFrames: 400, smallFrames: 64, intervalMs: 5, idleMs: 60_000, maxWalBytes } });
    await store.open();
    await writeMany(store, 10);
    const reader = new Database(path, { readonly: true });
    const it = reader.prepare('SELECT rid FROM events').iterate();
    it.next(); // an open read transaction: checkpoints cannot pass its snapshot
    await writeMany(store, 300);
    const held = walBytes();
    expect(held).toBeGreaterThan(400 * 4096);
    const before = store.checkpointStats!;
    it.return?.();
    reader.close();
    // The checkpoints catch up and the WAL starts again: ~130 MB more written, the file grows by a fraction.
    for (let round = 0; round < 40; round++) await writeMany(store, 100);
    const after = store.checkpointStats!;
    expect(after.mainCheckpoints + after.fullMainCheckpoints).toBeGreaterThan(before.mainCheckpoints + before.fullMainCheckpoints);
    expect(walBytes()).toBeLessThan(held + maxWalBytes * 5);
    expect(await store.count('events', '1')).toBe(8 * 4_310);
    await store.close();
  });
});
