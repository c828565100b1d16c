/**
 * Leases: a claimed or running job belongs to the compute node that holds it
 * (`internal.compute_node_key`) while that node heartbeats (`last_heartbeat`, epoch seconds).
 * When the heartbeat is older than the timeout, the job goes back to `ready` for another worker,
 * with an event `{category: 'job', type: 'lease_expired'}`; its holder is cleared and its `_rev`
 * changes, so a late start/complete from the old holder is refused (409). A claim with no holder
 * (a client that did not name its node) lapses when it was claimed longer ago than the timeout
 * and never started.
 *
 * A compute node that has never heartbeated (a Torc 0.6.4 worker: Torc has no heartbeats) holds
 * its jobs without a lease, so such workers keep working against Weft, until it marks itself
 * inactive (`is_active: false`, what a worker does when it exits): then whatever it still holds
 * is orphaned and goes back at the next pass, as does anything held by a deleted node.
 */
import { WeftError } from '../errors.js';
import { keyOf } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { jobEvent, writeEvents, type EngineEvent } from './events.js';
import { internalOf } from './job-internal.js';

const HELD: readonly string[] = ['submitted_pending', 'submitted'];

/** `POST /workflows/{w}/compute_nodes/{key}/heartbeat`: last_heartbeat = now (epoch seconds). */
export async function heartbeat(store: GraphStore, workflow: string, nodeKey: string): Promise<Doc> {
  return store.transaction(async (tx) => {
    if (!(await tx.get('workflows', null, workflow))) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
    if (!(await tx.get('compute_nodes', workflow, nodeKey))) {
      throw new WeftError('DOCUMENT_NOT_FOUND', `compute_nodes document ${nodeKey} not found`, { extra: { collection: 'compute_nodes', key: nodeKey } });
    }
    return tx.update('compute_nodes', workflow, nodeKey, { last_heartbeat: Date.now() / 1000 });
  });
}

/** Whether a held job's lease has lapsed, given its holder (or null) and the time now. */
function lapsed(job: Doc, holder: Doc | null | undefined, nowMs: number, timeoutS: number): boolean {
  const internal = internalOf(job);
  const holderKey = typeof internal.compute_node_key === 'string' ? internal.compute_node_key : '';
  if (holderKey !== '') {
    if (holder === null || holder === undefined) return true; // the node was deleted
    // Inactive (the worker said it stopped: what it still holds is orphaned) or silent.
    return lapsedNode(holder, nowMs, timeoutS);
  }
  const claimed = internal.claimed_at;
  return job.status === 'submitted_pending' && typeof claimed === 'number' && nowMs - claimed > timeoutS * 1000;
}

/**
 * The held jobs of a workflow that may have lapsed (a superset; `lapsed` decides), filtered by
 * the store in one pass over the held jobs: those whose holder is not a live node (deleted,
 * inactive or silent) and those with no holder (whose claim may be too old). Jobs of live holders
 * never lapse, so they are not read (nor parsed). Reading every held job instead cost the
 * server's thread ~240 ms CPU per pass with 36,000 held jobs (one pass every 15 s), the worst
 * claim latency there was; this read costs ~50 ms there.
 */
async function lapseCandidates(tx: GraphStore, workflow: string, timeoutS: number, nowMs: number): Promise<Doc[]> {
  const nodes = (await tx.find('compute_nodes', workflow)).items;
  const live = nodes.filter((n) => !lapsedNode(n, nowMs, timeoutS)).map((n) => n._key);
  // not_in also matches a missing holder (and '' or a non-string one: no holder, as `lapsed` reads it).
  const where = [{ field: 'status', op: 'in' as const, value: HELD }, { field: 'internal.compute_node_key', op: 'not_in' as const, value: live }];
  return (await tx.find('jobs', workflow, { where })).items;
}

/** Whether an existing holder no longer holds its jobs: it said it stopped, or its heartbeat is too old. */
function lapsedNode(holder: Doc, nowMs: number, timeoutS: number): boolean {
  if (holder.is_active === false) return true;
  const hb = holder.last_heartbeat;
  return typeof hb === 'number' && nowMs / 1000 - hb > timeoutS;
}

/**
 * One pass over every workflow: give back the jobs whose lease lapsed. Returns the number of jobs
 * given back. Each workflow is one transaction that re-reads the jobs, so a completion that
 * commits first wins and is never undone.
 */
export async function expireLeases(store: GraphStore, timeoutSeconds: number, nowMs = Date.now()): Promise<number> {
  const workflows = (await store.find('workflows', null)).items;
  let total = 0;
  for (const wf of workflows) {
    const workflow = wf._key;
    if ((await store.count('jobs', workflow, [{ field: 'status', op: 'in', value: HELD }])) === 0) continue;
    total += await store.transaction(async (tx) => {
      const held = await lapseCandidates(tx, workflow, timeoutSeconds, nowMs);
      const holderKeys = [...new Set(held.map((j) => internalOf(j).compute_node_key).filter((k): k is string => typeof k === 'string' && k !== ''))];
      const nodes = new Map((await tx.getMany('compute_nodes', workflow, holderKeys.map(keyOf))).map((n) => [n._key, n]));
      const back = held.filter((j) => {
        const hk = internalOf(j).compute_node_key;
        return lapsed(j, typeof hk === 'string' && hk !== '' ? (nodes.get(hk) ?? null) : undefined, nowMs, timeoutSeconds);
      });
      if (back.length === 0) return 0;
      const events: EngineEvent[] = [];
      const patches = back.map((j) => {
        const internal = internalOf(j);
        const holder = internal.compute_node_key;
        delete internal.compute_node_key;
        delete internal.claimed_at;
        const node = typeof holder === 'string' ? nodes.get(holder) : undefined;
        events.push(
          jobEvent('lease_expired', j, `Gave back job ${j._key} (${String(j.status)}): ${holder ? `compute node ${String(holder)} stopped heartbeating` : 'claimed but never started'}`, {
            old_status: j.status,
            compute_node_key: holder ?? null,
            ...(node && typeof node.hostname === 'string' ? { node_name: node.hostname } : {}),
          }),
        );
        return { key: j._key, patch: { status: 'ready', internal } };
      });
      await tx.updateMany('jobs', workflow, patches);
      await writeEvents(tx, workflow, events);
      return back.length;
    });
  }
  return total;
}
