/** Server lifecycle: background tasks run while listening and stop before the store closes. */
import { rmSync } from 'node:fs';
import { expect, it } from 'vitest';
import type { BackgroundTask } from '../../server/background.js';
import { api, startTestServer } from '../helpers/server.js';

it('starts background tasks after listening and stops them, awaited, before the store closes', async () => {
  const log: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const ticker: BackgroundTask = ({ store }) => {
    log.push('start');
    timer = setInterval(() => void store.count('workflows', null).then(() => log.push('tick')), 5);
    return {
      name: 'ticker',
      stop: async () => {
        clearInterval(timer);
        // The store is still open while a task stops.
        const wf = await store.insert('workflows', null, { name: 'written-while-stopping' });
        log.push(`stopped ${wf._key}`);
      },
    };
  };
  const srv = await startTestServer({ background: [ticker], keep: true });
  expect(log).toEqual(['start']);
  expect((await api(srv.baseUrl, 'GET', '/ping')).status).toBe(200);
  await new Promise((r) => setTimeout(r, 30));
  expect(log).toContain('tick');
  await srv.close();
  await srv.close(); // idempotent
  expect(log.at(-1)).toMatch(/^stopped \d+$/);
  await expect(fetch(`${srv.baseUrl}/ping`)).rejects.toThrow();

  // The write made during stop() is on disk.
  const again = await startTestServer({ db: srv.db, background: [] });
  const names = (await api(again.baseUrl, 'GET', '/workflows?name=written-while-stopping')).body;
  expect(names.total_count).toBe(1);
  await again.close();
  rmSync(srv.dir, { recursive: true, force: true });
});
