/**
 * The lease rules of expireLeases over a real SQLite store with the clock given: which held jobs
 * lapse (stale heartbeat, inactive or deleted holder, old anonymous claim) and which do not (fresh
 * heartbeat, a node that never heartbeats, a started job with no holder, unheld statuses).
 */
import { describe, expect, it } from 'vitest';
import { expireLeases } from '../../graph/engine/lease.js';
import { createWorkflow } from '../../graph/engine/workflow-create.js';
import { testStoreForSuite } from '../helpers/store.js';

const store = testStoreForSuite('weft-lease-');

const NOW = 1_800_000_000_000; // ms
const TIMEOUT = 60;

describe('expireLeases', () => {
  it('gives back exactly the jobs whose lease lapsed, with one event each', async () => {
    const wf = (await createWorkflow(store, { name: 'lease' }))._key;
    const node = (body: Record<string, unknown>) =>
      store.insert('compute_nodes', wf, { hostname: 'h', pid: 1, start_time: 't', resources: { num_cpus: 1, memory_gb: 1 }, is_active: true, ...body });
    const stale = await node({ last_heartbeat: NOW / 1000 - TIMEOUT - 1 });
    const fresh = await node({ last_heartbeat: NOW / 1000 - TIMEOUT + 5 });
    const silent = await node({});
    const inactive = await node({ is_active: false });
    const deleted = await node({ last_heartbeat: NOW / 1000 });
    await store.remove('compute_nodes', wf, deleted._key);
    const job = (name: string, status: string, internal: Record<string, unknown>) => store.insert('jobs', wf, { name, command: 'true', status, internal });
    const cases = {
      stale: await job('stale', 'submitted', { compute_node_key: stale._key }),
      staleClaim: await job('staleClaim', 'submitted_pending', { compute_node_key: stale._key, claimed_at: NOW }),
      fresh: await job('fresh', 'submitted', { compute_node_key: fresh._key }),
      silent: await job('silent', 'submitted', { compute_node_key: silent._key }),
      inactive: await job('inactive', 'submitted', { compute_node_key: inactive._key }),
      deleted: await job('deleted', 'submitted_pending', { compute_node_key: deleted._key }),
      oldAnon: await job('oldAnon', 'submitted_pending', { claimed_at: NOW - TIMEOUT * 1000 - 1 }),
      newAnon: await job('newAnon', 'submitted_pending', { claimed_at: NOW - 1000 }),
      startedAnon: await job('startedAnon', 'submitted', { claimed_at: 0 }),
      readyStale: await job('readyStale', 'ready', { compute_node_key: stale._key }),
      doneStale: await job('doneStale', 'done', { compute_node_key: stale._key }),
    };
    expect(await expireLeases(store, TIMEOUT, NOW)).toBe(5);
    const after = Object.fromEntries(
      await Promise.all(Object.entries(cases).map(async ([k, j]) => [k, (await store.get('jobs', wf, j._key))!] as const)),
    );
    const back = Object.keys(after).filter((k) => after[k]!.status === 'ready' && k !== 'readyStale').sort();
    expect(back).toEqual(['deleted', 'inactive', 'oldAnon', 'stale', 'staleClaim']);
    for (const k of back) expect((after[k]!.internal as Record<string, unknown>).compute_node_key).toBeUndefined();
    expect(after.fresh!.status).toBe('submitted');
    expect(after.silent!.status).toBe('submitted');
    expect(after.newAnon!.status).toBe('submitted_pending');
    expect(after.startedAnon!.status).toBe('submitted');
    expect(after.doneStale!.status).toBe('done');
    const events = (await store.find('events', wf)).items;
    expect(events.map((e) => e.job_name).sort()).toEqual(back);
    expect(events.every((e) => e.category === 'job' && e.type === 'lease_expired')).toBe(true);
    // a second pass finds nothing more
    expect(await expireLeases(store, TIMEOUT, NOW)).toBe(0);
  });
});
