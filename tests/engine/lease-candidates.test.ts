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
});
