/**
 * Packing ready jobs into a worker's resources (`prepare_jobs_for_submission`), as pure logic.
 *
 * The rule Weft uses (Torc v0.10's, not v0.6.4's):
 * - A candidate must fit the worker on its own: `runtime_seconds ≤ time limit`,
 *   `num_nodes ≤ worker nodes`, and a scheduler binding that is '' or the worker's scheduler.
 * - Greedy in sort order with **consumed totals**: a job is taken when its CPUs, memory and GPUs
 *   fit what the jobs taken before it left over; a multi-node job (num_nodes > 1) also uses up that
 *   many of the worker's nodes, a single-node job runs on a node the worker already has.
 * - No early stop: a job that does not fit is skipped and the next one is tried, so a worker with
 *   capacity left over still gets smaller jobs further down the order. (Torc 0.6.4 stopped as soon
 *   as CPUs or memory hit exactly zero and otherwise examined only the first `limit` candidates.)
 * - `limit` bounds the number of jobs **returned**, not the number of candidates examined.
 *
 * The budget only shrinks, so a job skipped once never fits later. That is what lets the engine
 * ask the store for candidates already filtered by the *remaining* budget (`conditions()`): the
 * first candidate of every such query fits, and a claim costs the jobs it takes, not the jobs
 * it passes over.
 */
import { DEFAULT_RESOURCE_REQUIREMENTS, type SortMethod } from '../model.js';
import type { Condition, Doc, SortKey } from '../store/port.js';
import { durationToSeconds, memoryToBytes } from './views-units.js';

/** What one job needs, from its `internal` cache (set by initialize_jobs). */
export interface JobNeeds {
  cpus: number;
  memoryBytes: number;
  gpus: number;
  nodes: number;
  runtimeSeconds: number;
  schedulerConfigId: string;
}

/** The worker's resources, resolved. */
export interface WorkerCapacity {
  cpus: number;
  memoryBytes: number;
  gpus: number;
  nodes: number;
  /** Seconds the worker has left; null = no limit. */
  timeLimitSeconds: number | null;
  /** Scheduler ids the worker counts as its own ('' is always accepted as well). */
  schedulerConfigIds: readonly string[];
}

const GiB = 1024 ** 3;

/** Defaults for a job whose `internal` was never computed (see DEFAULT_RESOURCE_REQUIREMENTS). */
export const DEFAULT_NEEDS: Readonly<JobNeeds> = Object.freeze({
  cpus: DEFAULT_RESOURCE_REQUIREMENTS.num_cpus,
  memoryBytes: memoryToBytes(DEFAULT_RESOURCE_REQUIREMENTS.memory),
  gpus: DEFAULT_RESOURCE_REQUIREMENTS.num_gpus,
  nodes: DEFAULT_RESOURCE_REQUIREMENTS.num_nodes,
  runtimeSeconds: durationToSeconds(DEFAULT_RESOURCE_REQUIREMENTS.runtime),
  schedulerConfigId: '',
});

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

/**
 * A job's needs from its `internal`. Only initialized jobs (initialize_jobs computes `internal`)
 * match the store conditions of a claim; the defaults here only fill fields a document lacks.
 */
export function needsOf(job: Doc): JobNeeds {
  const internal = job.internal;
  if (internal === null || typeof internal !== 'object') return { ...DEFAULT_NEEDS };
  const i = internal as Record<string, unknown>;
  return {
    cpus: num(i.num_cpus, DEFAULT_NEEDS.cpus),
    memoryBytes: num(i.memory_bytes, DEFAULT_NEEDS.memoryBytes),
    gpus: num(i.num_gpus, DEFAULT_NEEDS.gpus),
    nodes: num(i.num_nodes, DEFAULT_NEEDS.nodes),
    runtimeSeconds: num(i.runtime_seconds, DEFAULT_NEEDS.runtimeSeconds),
    schedulerConfigId: typeof i.scheduler_config_id === 'string' ? i.scheduler_config_id : '',
  };
}

/** Worker resources as sent (WorkerResources) → capacity. time_limit must already be strict-parsed. */
export function capacityOf(r: { num_cpus: number; memory_gb: number; num_gpus?: number; num_nodes?: number }, timeLimitSeconds: number | null, schedulerConfigIds: readonly string[]): WorkerCapacity {
  return {
    cpus: r.num_cpus,
    memoryBytes: r.memory_gb * GiB,
    gpus: r.num_gpus ?? 0,
    nodes: r.num_nodes ?? 1,
    timeLimitSeconds,
    schedulerConfigIds,
  };
}

/** The remaining budget of one claim. */
export class PackingBudget {
  cpus: number;
  memoryBytes: number;
  gpus: number;
  /** Nodes not yet used by a multi-node job. */
  nodes: number;

  constructor(readonly capacity: WorkerCapacity) {
    this.cpus = capacity.cpus;
    this.memoryBytes = capacity.memoryBytes;
    this.gpus = capacity.gpus;
    this.nodes = capacity.nodes;
  }

  /** Whether the job may run on this worker at all (ignoring what is already taken). */
  eligible(n: JobNeeds): boolean {
    const c = this.capacity;
    if (c.timeLimitSeconds !== null && n.runtimeSeconds > c.timeLimitSeconds) return false;
    if (n.nodes > c.nodes) return false;
    return n.schedulerConfigId === '' || c.schedulerConfigIds.includes(n.schedulerConfigId);
  }

  /** Whether the job fits what is left. */
  fits(n: JobNeeds): boolean {
    if (!this.eligible(n)) return false;
    if (n.cpus > this.cpus || n.memoryBytes > this.memoryBytes || n.gpus > this.gpus) return false;
    return n.nodes <= 1 || n.nodes <= this.nodes;
  }

  take(n: JobNeeds): void {
    this.cpus -= n.cpus;
    this.memoryBytes -= n.memoryBytes;
    this.gpus -= n.gpus;
    if (n.nodes > 1) this.nodes -= n.nodes;
  }

  /**
   * Store conditions that select exactly the jobs `fits` accepts (given an `internal`), so the
   * store can filter by the remaining budget. A single-node job fits any node count, a multi-node
   * one needs that many left: `num_nodes ≤ max(1, nodes left)` says both.
   */
  conditions(): Condition[] {
    const c = this.capacity;
    const out: Condition[] = [
      { field: 'internal.num_gpus', op: '<=', value: this.gpus },
      { field: 'internal.memory_bytes', op: '<=', value: this.memoryBytes },
      { field: 'internal.num_cpus', op: '<=', value: this.cpus },
      { field: 'internal.num_nodes', op: '<=', value: Math.max(1, Math.min(this.nodes, c.nodes)) },
      { field: 'internal.scheduler_config_id', op: 'in', value: ['', ...c.schedulerConfigIds] },
    ];
    if (c.timeLimitSeconds !== null) out.push({ field: 'internal.runtime_seconds', op: '<=', value: c.timeLimitSeconds });
    return out;
  }

  /** Torc's message when nothing was taken, with the values the search used. */
  reason(statuses: readonly string[]): string {
    const c = this.capacity;
    const t = c.timeLimitSeconds === null ? 'unlimited' : String(c.timeLimitSeconds);
    const s = c.schedulerConfigIds.length === 0 ? "''" : `'' or ${c.schedulerConfigIds.map((x) => `'${x}'`).join(' or ')}`;
    return (
      `No jobs matched status=${statuses.map((x) => `'${x}'`).join(' or ')}, memory_bytes <= ${this.memoryBytes}, num_cpus <= ${this.cpus}, ` +
      `num_gpus <= ${this.gpus}, runtime_seconds <= ${t}, num_nodes <= ${c.nodes}, scheduler_config_id == ${s}`
    );
  }
}

/** The store sort of each sort method (ties: insertion order, which the store keeps). */
export function sortKeysOf(method: SortMethod): SortKey[] {
  switch (method) {
    case 'gpus_runtime_memory':
      return [
        { field: 'internal.num_gpus', direction: 'desc' },
        { field: 'internal.runtime_seconds', direction: 'desc' },
        { field: 'internal.memory_bytes', direction: 'desc' },
      ];
    case 'gpus_memory_runtime':
      return [
        { field: 'internal.num_gpus', direction: 'desc' },
        { field: 'internal.memory_bytes', direction: 'desc' },
        { field: 'internal.runtime_seconds', direction: 'desc' },
      ];
    case 'none':
      return [];
  }
}

/** Insertion order of two documents as far as their keys show it (generated keys are numeric). */
function keyOrder(a: Doc, b: Doc): number {
  const x = Number(a._key);
  const y = Number(b._key);
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return 0;
}

/** Comparator equal to the store's order for `method`; used to merge lists from two statuses. */
export function candidateComparator(method: SortMethod): (a: Doc, b: Doc) => number {
  const keys = sortKeysOf(method);
  const pick: Record<string, (n: JobNeeds) => number> = {
    'internal.num_gpus': (n) => n.gpus,
    'internal.runtime_seconds': (n) => n.runtimeSeconds,
    'internal.memory_bytes': (n) => n.memoryBytes,
  };
  return (a, b) => {
    const na = needsOf(a);
    const nb = needsOf(b);
    for (const k of keys) {
      const f = pick[k.field]!;
      const d = f(nb) - f(na);
      if (d !== 0) return d;
    }
    return keyOrder(a, b);
  };
}

/** Parse a worker's time_limit strictly: an ISO-8601 duration, or null/'' for none. */
export function timeLimitSeconds(text: string | null | undefined): number | null {
  if (text === null || text === undefined || text === '') return null;
  return durationToSeconds(text);
}
