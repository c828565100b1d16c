/**
 * expireLeases asks the store only for held jobs whose holder is not a live node (or that have no
 * holder); these cases pin the edges of that filter against the rules: a live holder keeps even
 * an old claim, an empty or non-string holder is no holder (the claim's age decides), a holder
 * given as an _id is not a key of a live node, and a workflow with no compute nodes at all.
 */
import { describe, expect, it } from 'vitest';
import { expireLeases } from '../../graph/engine/lease.js';
import { createWorkflow } from '../../graph/engine/workflow-create.js';
import { testStoreForSuite } from '../helpers/store.js';

const store = testStoreForSuite('weft-lease-cand-');

const NOW = 1_800_000_000_000; // ms
const TIMEOUT = 60;
const OLD = NOW - TIMEOUT * 1000 - 1;

describe('expireLeases candidates', () => {
  it('gives back exactly the lapsed jobs at the edges of the holder filter', async () => {
    const wf = (await createWorkflow(store, { name: 'lease-cand' }))._key;
    const live = await store.insert('compute_nodes', wf, { hostname: 'h', pid: 1, start_time: 't', resources: { num_cpus: 1, memory_gb: 1 }, is_active: true, last_heartbeat: NOW / 1000 });
    const job = (name: string, status: string, internal: Record<string, unknown>) => store.insert('jobs', wf, { name, command: 'true', status, internal });
    const cases = {
      liveOldClaim: await job('liveOldClaim', 'submitted_pending', { compute_node_key: live._key, claimed_at: OLD }),
      liveRunning: await job('liveRunning', 'submitted', { compute_node_key: live._key }),
      emptyHolderOld: await job('emptyHolderOld', 'submitted_pending', { compute_node_key: '', claimed_at: OLD }),
      emptyHolderNew: await job('emptyHolderNew', 'submitted_pending', { compute_node_key: '', claimed_at: NOW }),
      numberHolderOld: await job('numberHolderOld', 'submitted_pending', { compute_node_key: 7, claimed_at: OLD }),
      idHolder: await job('idHolder', 'submitted', { compute_node_key: `compute_nodes/${live._key}` }),
      noHolderStarted: await job('noHolderStarted', 'submitted', { claimed_at: OLD }),
    };
    expect(await expireLeases(store, TIMEOUT, NOW)).toBe(3);
    const status = async (k: keyof typeof cases) => (await store.get('jobs', wf, cases[k]._key))!.status;
    expect(await status('liveOldClaim')).toBe('submitted_pending');
    expect(await status('liveRunning')).toBe('submitted');
    expect(await status('emptyHolderOld')).toBe('ready');
    expect(await status('emptyHolderNew')).toBe('submitted_pending');
    expect(await status('numberHolderOld')).toBe('ready');
    // An _id is not a live node's key: given back, as before the filter.
    expect(await status('idHolder')).toBe('ready');
    expect(await status('noHolderStarted')).toBe('submitted');
    expect(await expireLeases(store, TIMEOUT, NOW)).toBe(0);
  });

  it('a workflow without compute nodes: every held job with a holder is given back', async () => {
    const wf = (await createWorkflow(store, { name: 'lease-none' }))._key;
    const a = await store.insert('jobs', wf, { name: 'a', command: 'true', status: 'submitted', internal: { compute_node_key: '12' } });
    const b = await store.insert('jobs', wf, { name: 'b', command: 'true', status: 'submitted_pending', internal: { claimed_at: NOW } });
    expect(await expireLeases(store, TIMEOUT, NOW)).toBe(1);
    expect((await store.get('jobs', wf, a._key))!.status).toBe('ready');
    expect((await store.get('jobs', wf, b._key))!.status).toBe('submitted_pending');
  });

  it('in pages: the same jobs go back, across gaps of other workflows and unheld jobs, with event-loop turns between pages', async () => {
    const a = (await createWorkflow(store, { name: 'lease-pages-a' }))._key;
    const b = (await createWorkflow(store, { name: 'lease-pages-b' }))._key;
    const nodeOf = async (wf: string, hb: number) =>
      (await store.insert('compute_nodes', wf, { hostname: 'h', pid: 1, start_time: 't', resources: { num_cpus: 1, memory_gb: 1 }, is_active: true, last_heartbeat: hb }))._key;
    const liveA = await nodeOf(a, NOW / 1000);
    const staleA = await nodeOf(a, NOW / 1000 - TIMEOUT - 1);
    const staleB = await nodeOf(b, NOW / 1000 - TIMEOUT - 1);
    const expectBack = new Map<string, string>();
    // Insertion order interleaves: a run of a's jobs (held by the live or the stale node, or not held),
    // then a run of b's (all lapsed), then a long run of unheld a jobs, then more held a jobs.
    const put = async (wf: string, i: number, status: string, holder: string | null, back: boolean) => {
      const j = await store.insert('jobs', wf, { name: `p${i}`, command: 'true', status, internal: holder ? { compute_node_key: holder } : { claimed_at: OLD } });
      if (back) expectBack.set(j._key, wf);
      return [wf, j._key, back ? 'ready' : status] as const;
    };
    const all: (readonly [string, string, string])[] = [];
    let i = 0;
    for (let k = 0; k < 9; k++) all.push(await put(a, i++, k % 2 ? 'submitted' : 'submitted_pending', k % 3 === 0 ? staleA : liveA, k % 3 === 0));
    for (let k = 0; k < 5; k++) all.push(await put(b, i++, 'submitted', staleB, true));
    for (let k = 0; k < 12; k++) all.push(await put(a, i++, k % 2 ? 'done' : 'ready', null, false));
    for (let k = 0; k < 4; k++) all.push(await put(a, i++, 'submitted_pending', k % 2 ? liveA : null, k % 2 === 0));
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const n = await expireLeases(store, TIMEOUT, NOW, { pageJobs: 2 });
    ticking = false;
    expect(n).toBe(expectBack.size);
    // 18 held jobs in pages of at most 2: many pages, each followed by a turn of the event loop.
    expect(turns).toBeGreaterThanOrEqual(8);
    // Exactly the lapsed ones went back; every other job kept its status.
    expect(await Promise.all(all.map(async ([wf, key]) => (await store.get('jobs', wf, key))!.status))).toEqual(all.map(([, , want]) => want));
    expect(await expireLeases(store, TIMEOUT, NOW, { pageJobs: 2 })).toBe(0);
  });
});
