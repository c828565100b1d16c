/**
 * `GET /workflows/{key}/ready_job_requirements`: what the `ready` jobs need in total, so a
 * scheduler can size the next allocation (`weft hpc ... recommend`). Resource requirements and
 * scheduler bindings are read through the graph (not the `internal` cache, which only
 * initialize_jobs refreshes), so a requirement changed after initialization counts at once.
 */
import { WeftError } from '../errors.js';
import { DEFAULT_RESOURCE_REQUIREMENTS, collectionOf, keyOf } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { bulkEdges, bulkNeighbors } from './views-bulk.js';
import { memoryToBytes, durationToSeconds } from './views-units.js';

/** Totals over the ready jobs. */
export interface ReadyJobRequirements {
  num_jobs: number;
  num_cpus: number;
  num_gpus: number;
  /** Sum of the jobs' memory, in GiB. */
  memory_gb: number;
  max_num_nodes: number;
  /** The runtime string of the longest job, '' when there is none. */
  max_runtime: string;
}

const GiB = 1024 ** 3;
const CHUNK = 50_000;

/** Whether a stored id names the document `ref` names (a full id, a Torc-style id or a bare key). */
function sameDoc(id: string, ref: string): boolean {
  const coll = collectionOf(ref);
  return keyOf(id) === keyOf(ref) && (coll === undefined || coll === collectionOf(id));
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

/**
 * Totals over the `ready` jobs. With `schedulerConfigId` (a scheduler `_id`, Torc's
 * `slurm_schedulers__<wf>/<key>` or a bare key), jobs bound to another scheduler are left out
 * (unbound jobs count: any worker may run them).
 */
export async function readyJobRequirements(store: GraphStore, workflow: string, schedulerConfigId?: string | null): Promise<ReadyJobRequirements> {
  const ready = (await store.find('jobs', workflow, { where: { status: 'ready' } })).items;
  const out: ReadyJobRequirements = { num_jobs: 0, num_cpus: 0, num_gpus: 0, memory_gb: 0, max_num_nodes: 0, max_runtime: '' };
  let memoryBytes = 0;
  let maxSeconds = -1;
  const parsed = new Map<string, { bytes: number; seconds: number }>();
  for (let i = 0; i < ready.length; i += CHUNK) {
    const part = ready.slice(i, i + CHUNK);
    const ids = part.map((j) => j._id);
    const [requires, schedulers] = await Promise.all([
      bulkNeighbors(store, workflow, 'requires', ids, 'outbound'),
      schedulerConfigId ? bulkEdges(store, workflow, 'scheduled_bys', ids, 'outbound') : Promise.resolve([]),
    ]);
    const rrOf = new Map<string, Doc>();
    for (const n of requires) if (n.vertex && !rrOf.has(n.edge._from)) rrOf.set(n.edge._from, n.vertex);
    const boundTo = new Map(schedulers.map((e) => [e._from, e._to]));
    for (const job of part) {
      const bound = boundTo.get(job._id);
      if (schedulerConfigId && bound !== undefined && !sameDoc(bound, schedulerConfigId)) continue;
      const rr: Record<string, unknown> = rrOf.get(job._id) ?? DEFAULT_RESOURCE_REQUIREMENTS;
      const memory = String(rr.memory ?? DEFAULT_RESOURCE_REQUIREMENTS.memory);
      const runtime = String(rr.runtime ?? DEFAULT_RESOURCE_REQUIREMENTS.runtime);
      const cacheKey = `${memory}\u0000${runtime}`;
      let p = parsed.get(cacheKey);
      if (!p) {
        try {
          p = { bytes: memoryToBytes(memory), seconds: durationToSeconds(runtime) };
        } catch (err) {
          const name = typeof rr.name === 'string' ? rr.name : String(rr._key ?? '');
          throw new WeftError('VALIDATION_FAILED', `Resource requirements "${name}" of job ${job._key}: ${(err as Error).message}`, {
            details: [{ path: ['resource_requirements', name], message: (err as Error).message, rule: 'units' }],
            cause: err,
          });
        }
        parsed.set(cacheKey, p);
      }
      out.num_jobs += 1;
      out.num_cpus += num(rr.num_cpus, 1);
      out.num_gpus += num(rr.num_gpus, 0);
      out.max_num_nodes = Math.max(out.max_num_nodes, num(rr.num_nodes, 1));
      memoryBytes += p.bytes;
      if (p.seconds > maxSeconds) {
        maxSeconds = p.seconds;
        out.max_runtime = runtime;
      }
    }
  }
  out.memory_gb = memoryBytes / GiB;
  return out;
}
