/**
 * What a job's status change does to the jobs downstream of it, inside the caller's transaction.
 *
 * Completion (readiness by counting): each direct dependant (`blocks` edge) that is `blocked`
 * has its `internal.num_unfinished_blockers` decremented; at zero it becomes `ready`. When the
 * finished job failed (return code != 0, or canceled) a dependant with
 * cancel_on_blocking_job_failure (default true) is `canceled` at once, and that cancellation is
 * handled like a failed completion of the dependant, so it cascades to every level below (Torc
 * 0.6.4 stopped after one level, leaving grandchildren blocked forever). A dependant without the
 * flag counts the failed blocker as finished. Cost: the out-degree of each job that changed.
 * Torc also canceled `ready` sibling blockers of a canceled job; Weft does not (they may feed
 * other jobs, and v0.10 dropped the rule).
 *
 * Reversal: a finished job that goes back (to uninitialized, or any unfinished status) makes
 * every job transitively downstream `uninitialized`, so the next initialize_jobs re-evaluates it.
 */
import { COMPLETE_STATUSES, keyOf } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { internalOf } from './job-internal.js';

export interface Propagation {
  /** Keys of dependants that became ready. */
  ready: string[];
  /** Keys of dependants canceled (at every level). */
  canceled: string[];
}

/** Recount a blocked job's unfinished blockers (a job whose counter is missing, e.g. set blocked by a PUT). */
async function recount(tx: GraphStore, workflow: string, job: Doc, statusOf: Map<string, string>): Promise<number> {
  const blockers = await tx.edges('blocks', workflow, { to: job._id });
  const unknown = blockers.map((e) => e._from).filter((id) => !statusOf.has(id));
  if (unknown.length > 0) for (const d of await tx.getMany('jobs', workflow, unknown.map(keyOf))) statusOf.set(d._id, String(d.status));
  return blockers.filter((e) => !COMPLETE_STATUSES.includes(statusOf.get(e._from) as never)).length;
}

/**
 * A job just finished (`failed` as decided by the caller): update its dependants and, for the
 * ones canceled, theirs. `finishedStatus` is its new status (already written or about to be).
 */
export async function propagateCompletion(tx: GraphStore, workflow: string, job: Doc, finishedStatus: string, failed: boolean): Promise<Propagation> {
  const out: Propagation = { ready: [], canceled: [] };
  const statusOf = new Map<string, string>([[job._id, finishedStatus]]);
  let frontier: { id: string; failed: boolean }[] = [{ id: job._id, failed }];
  while (frontier.length > 0) {
    const failedIds = new Set(frontier.filter((f) => f.failed).map((f) => f.id));
    const edges = await tx.edges('blocks', workflow, { from: frontier.map((f) => f.id) });
    if (edges.length === 0) break;
    const docs = new Map((await tx.getMany('jobs', workflow, [...new Set(edges.map((e) => keyOf(e._to)))])).map((d) => [d._id, d]));
    for (const d of docs.values()) if (!statusOf.has(d._id)) statusOf.set(d._id, String(d.status));
    const changed = new Map<string, { status: string; internal: Record<string, unknown> }>();
    const next: { id: string; failed: boolean }[] = [];
    for (const e of edges) {
      const dep = docs.get(e._to);
      if (!dep || statusOf.get(dep._id) !== 'blocked') continue;
      const cur = changed.get(dep._id) ?? { status: 'blocked', internal: internalOf(dep) };
      if (failedIds.has(e._from) && dep.cancel_on_blocking_job_failure !== false) {
        cur.status = 'canceled';
        cur.internal.num_unfinished_blockers = 0;
        statusOf.set(dep._id, 'canceled');
        out.canceled.push(dep._key);
        next.push({ id: dep._id, failed: true });
      } else {
        const before = typeof cur.internal.num_unfinished_blockers === 'number' && cur.internal.num_unfinished_blockers > 0
          ? cur.internal.num_unfinished_blockers
          : await recount(tx, workflow, dep, statusOf) + 1; // recount sees e._from finished already
        const left = before - 1;
        cur.internal.num_unfinished_blockers = Math.max(0, left);
        if (left <= 0) {
          cur.status = 'ready';
          statusOf.set(dep._id, 'ready');
          out.ready.push(dep._key);
        }
      }
      changed.set(dep._id, cur);
    }
    if (changed.size > 0) {
      await tx.updateMany('jobs', workflow, [...changed].map(([id, c]) => ({ key: keyOf(id), patch: { status: c.status, internal: c.internal } })));
    }
    frontier = next;
  }
  return out;
}

/**
 * Every job transitively downstream of `ids` that is not `uninitialized` becomes `uninitialized`.
 * Returns their keys (breadth first).
 */
export async function reverseCompletion(tx: GraphStore, workflow: string, ids: readonly string[]): Promise<string[]> {
  const seen = new Set(ids);
  const reset: string[] = [];
  let frontier = [...ids];
  while (frontier.length > 0) {
    const edges = await tx.edges('blocks', workflow, { from: frontier });
    const targets = [...new Set(edges.map((e) => e._to))].filter((id) => !seen.has(id));
    for (const id of targets) seen.add(id);
    if (targets.length === 0) break;
    const docs = await tx.getMany('jobs', workflow, targets.map(keyOf));
    const patches = docs.filter((d) => d.status !== 'uninitialized').map((d) => ({ key: d._key, patch: { status: 'uninitialized' } }));
    if (patches.length > 0) await tx.updateMany('jobs', workflow, patches);
    reset.push(...patches.map((p) => p.key));
    frontier = targets;
  }
  return reset;
}
