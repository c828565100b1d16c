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
import type { Condition, Doc, GraphStore } from '../store/port.js';
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
 * The held jobs of a workflow in the insertion range (`after`, `through`] that may have lapsed (a
 * superset; `lapsed` decides): those whose holder is not a live node (deleted, inactive or
 * silent) and those with no holder (whose claim may be too old). Jobs of live holders never lapse,
 * so they are not read (nor parsed); the store still looks at each held job of the range (its
 * holder, a plain column on SQLite): a pass over 90,000 held jobs of live nodes takes ~55 ms in
 * process (~120 ms while the holder was read from the JSON).
 */
async function lapseCandidates(tx: GraphStore, workflow: string, timeoutS: number, nowMs: number, after: number, through: number): Promise<Doc[]> {
  const nodes = (await tx.find('compute_nodes', workflow)).items;
  const live = nodes.filter((n) => !lapsedNode(n, nowMs, timeoutS)).map((n) => n._key);
  // not_in also matches a missing holder (and '' or a non-string one: no holder, as `lapsed` reads it).
  // Sorted by status (then insertion order), SQLite reads the held jobs of the range from the
  // (workflow, status) index; in insertion order alone it walks every job of the range.
  const where = [...heldIn(after, through), { field: 'internal.compute_node_key', op: 'not_in' as const, value: live }];
  return (await tx.find('jobs', workflow, { where, sort: [{ field: 'status' }] })).items;
}

/** Held jobs inserted in (`after`, `through`] (insertion order, the store's `_seq`). */
function heldIn(after: number, through: number): Condition[] {
  return [{ field: 'status', op: 'in', value: HELD }, ...seqIn(after, through)];
}

function seqIn(after: number, through: number): Condition[] {
  return [
    { field: '_seq', op: '>', value: after },
    { field: '_seq', op: '<=', value: through },
  ];
}

/** Whether an existing holder no longer holds its jobs: it said it stopped, or its heartbeat is too old. */
function lapsedNode(holder: Doc, nowMs: number, timeoutS: number): boolean {
  if (holder.is_active === false) return true;
  const hb = holder.last_heartbeat;
  return typeof hb === 'number' && nowMs / 1000 - hb > timeoutS;
}

/** Held jobs a page of the pass looks at, at most (each page is one transaction). */
export const LEASE_PAGE_JOBS = 1024;

export interface ExpireOptions {
  /** Held jobs per page (default LEASE_PAGE_JOBS). */
  pageJobs?: number;
}

/**
 * One pass over every workflow: give back the jobs whose lease lapsed. Returns the number of jobs
 * given back.
 *
 * The held jobs of a workflow are taken in pages of at most `pageJobs`, by ranges of insertion
 * order, and each page is one transaction that reads its candidates and their holders and decides
 * there, so a completion that commits first wins and is never undone. Between pages the event
 * loop gets a turn: one pass over 28,000 held jobs in one transaction held the server's thread
 * ~80 ms (every 15 s), the worst stall a claim saw; a page holds it ~2 ms. The range of a page is
 * found by counting held jobs in the index (no document read): it is widened over gaps (other
 * workflows' jobs, unheld ones) and narrowed until it holds at most `pageJobs`. A job claimed
 * behind the pass's position waits for the next pass (a fresh claim does not lapse anyway).
 */
export async function expireLeases(store: GraphStore, timeoutSeconds: number, nowMs = Date.now(), opts: ExpireOptions = {}): Promise<number> {
  const pageJobs = Math.max(1, opts.pageJobs ?? LEASE_PAGE_JOBS);
  const workflows = (await store.find('workflows', null)).items;
  let total = 0;
  for (const wf of workflows) {
    const workflow = wf._key;
    let after = 0;
    let width = pageJobs;
    for (;;) {
      let n = await store.count('jobs', workflow, heldIn(after, after + width));
      if (n === 0) {
        // A gap: none held after it, and the workflow is done; else widen until the range holds some.
        if ((await store.count('jobs', workflow, heldIn(after + width, Number.MAX_SAFE_INTEGER))) === 0) break;
        while (n === 0) {
          width *= 2;
          n = await store.count('jobs', workflow, heldIn(after, after + width));
        }
      }
      while (n > pageJobs && width > 1) {
        width = Math.ceil(width / 2);
        n = await store.count('jobs', workflow, heldIn(after, after + width));
      }
      const through = after + width;
      total += await store.transaction((tx) => giveBackLapsed(tx, workflow, timeoutSeconds, nowMs, after, through));
      after = through;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return total;
}

/** One page of the pass: the lapsed held jobs of (`after`, `through`] go back to ready. */
async function giveBackLapsed(tx: GraphStore, workflow: string, timeoutSeconds: number, nowMs: number, after: number, through: number): Promise<number> {
  const held = await lapseCandidates(tx, workflow, timeoutSeconds, nowMs, after, through);
  if (held.length === 0) return 0;
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
}
