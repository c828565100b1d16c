/**
 * Crash safety of the SQLite store with its checkpoint thread: a real `weft server` process takes
 * writes over HTTP (the thread checkpoints while they come in, and truncates the WAL when they
 * pause), is killed with SIGKILL while writes are still in flight, and every write it had answered
 * is in the file when a new store opens it.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteGraphStore } from '../../graph/store/index.js';
import { ensureBuilt, startWeftServer } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-crash-'));
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function post(url: string, body: unknown): Promise<{ _key: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { _key: string };
}

describe('sqlite store after kill -9', () => {
  it('keeps every write the server answered', async () => {
    const db = join(dir, 'weft.db');
    const server = await startWeftServer(['--port', '0', '--db', db]);
    const answered: string[] = [];
    let wf = '';
    try {
      wf = (await post(`${server.url}/workflows`, { name: 'crash' }))._key;
      const files = `${server.url}/workflows/${wf}/files`;
      // Writes for a while (the thread checkpoints while commits come in), then a pause
      // long enough for the idle TRUNCATE, then writes again until the kill.
      const writeFor = async (ms: number, tag: string) => {
        const until = Date.now() + ms;
        await Promise.all(
          Array.from({ length: 16 }, async (_, c) => {
            for (let i = 0; Date.now() < until; i++) answered.push((await post(files, { name: `${tag}-${c}-${i}`, path: `/p/${tag}/${c}/${i}` }))._key);
          }),
        );
      };
      await writeFor(600, 'a');
      // The pause: the server's checkpoint thread copies the WAL and truncates it.
      const end = Date.now() + 10_000;
      while (statSync(`${db}-wal`).size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(statSync(`${db}-wal`).size).toBe(0);
      await writeFor(400, 'b');
      // Writes in flight at the kill: those not answered may or may not be there, the rest must be.
      const inFlight = Array.from({ length: 32 }, (_, i) =>
        post(files, { name: `c-${i}`, path: `/p/c/${i}` }).then(
          (d) => d._key,
          () => null,
        ),
      );
      const first = await Promise.race(inFlight);
      if (first) answered.push(first);
      server.child.kill('SIGKILL');
      expect(await server.stop()).toEqual({ code: null, signal: 'SIGKILL' });
      await Promise.all(inFlight);
    } finally {
      await server.stop('SIGKILL');
    }
    expect(answered.length).toBeGreaterThan(50);

    const store = new SqliteGraphStore({ path: db });
    await store.open();
    try {
      expect((store.database.pragma('integrity_check') as { integrity_check: string }[])[0]!.integrity_check).toBe('ok');
      const present = new Set((await store.find('files', wf)).items.map((d) => d._key));
      expect(answered.filter((k) => !present.has(k))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
