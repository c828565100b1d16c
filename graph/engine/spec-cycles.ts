/**
 * Dependency cycles among jobs: explicit (`blocks`) and implicit through data (a file's producer
 * → its consumers, user data's storer → its consumers), the way initialize_jobs derives blockers.
 *
 * Data documents are nodes of their own (job → file → job) rather than expanded into producer ×
 * consumer pairs, so a file written by 10,000 jobs and read by 10,000 others costs 20,000 edges,
 * not 100 million. A job that reads what it writes itself (a file updated in place) does not wait
 * for itself (initialize_jobs derives no such edge) but does wait for the other writers: for that
 * job the data node is bypassed with direct edges from those writers.
 */
import { topologicalOrder, toCsr } from '../dag.js';
import { WeftError } from '../errors.js';
import type { EdgeCollectionName } from '../model.js';
import type { GraphStore } from '../store/port.js';

/** Node ids: jobs and data documents share one integer space. Flat pairs `[a, b, a, b, ...]`. */
export interface DependencyEdges {
  size: number;
  /** [blocker, blocked] pairs (jobs). */
  blocks: readonly number[];
  /** [job, data] pairs: the job writes the data (produces / stores). */
  writes: readonly number[];
  /** [job, data] pairs: the job reads the data (needs / consumes). */
  reads: readonly number[];
}

/** Cycles (closed node paths, at most `max`) of the dependency graph. */
export function dependencyCycles(g: DependencyEdges, max = 10): number[][] {
  const from: number[] = [];
  const to: number[] = [];
  for (let k = 0; k < g.blocks.length; k += 2) from.push(g.blocks[k]!), to.push(g.blocks[k + 1]!);
  const writers = new Map<number, number[]>();
  for (let k = 0; k < g.writes.length; k += 2) {
    const job = g.writes[k]!;
    const data = g.writes[k + 1]!;
    from.push(job), to.push(data);
    const list = writers.get(data);
    if (list) list.push(job);
    else writers.set(data, [job]);
  }
  for (let k = 0; k < g.reads.length; k += 2) {
    const job = g.reads[k]!;
    const data = g.reads[k + 1]!;
    const w = writers.get(data);
    if (!w || !w.includes(job)) from.push(data), to.push(job);
    else for (const other of w) if (other !== job) from.push(other), to.push(job);
  }
  return topologicalOrder(toCsr(g.size, from, to), max).cycles;
}

/** An edge about to exist (ids). */
export interface NewEdge {
  edge: EdgeCollectionName;
  _from: string;
  _to: string;
}

const DATA_EDGES = { produces: 'write', stores: 'write', needs: 'read', consumes: 'read' } as const;

/**
 * After new jobs and their edges were written in `tx` (not yet committed): throw
 * DEPENDENCY_CYCLE if a cycle now runs through a new job. Cheap in the common case: unless a new
 * job writes data that a stored job reads, any new cycle lies among the new jobs, and only their
 * edges are looked at; otherwise the workflow's dependency edges are read whole.
 */
export async function rejectNewCycles(tx: GraphStore, workflow: string, jobs: readonly { _id: string; name?: unknown }[], edges: readonly NewEdge[]): Promise<void> {
  const isNew = new Set(jobs.map((j) => j._id));
  const written = [...new Set(edges.filter((e) => DATA_EDGES[e.edge as keyof typeof DATA_EDGES] === 'write').map((e) => e._to))];
  let all: readonly NewEdge[] = edges;
  if (written.length > 0) {
    const readers = [...(await tx.edges('needs', workflow, { to: written })), ...(await tx.edges('consumes', workflow, { to: written }))];
    if (readers.some((e) => !isNew.has(e._from))) {
      const stored: NewEdge[] = [];
      for (const edge of ['blocks', 'produces', 'stores', 'needs', 'consumes'] as const) {
        for (const e of await tx.edges(edge, workflow, {})) stored.push({ edge, _from: e._from, _to: e._to });
      }
      all = stored;
    }
  }
  const index = new Map<string, number>();
  const ids: string[] = [];
  const at = (id: string): number => {
    let n = index.get(id);
    if (n === undefined) {
      n = ids.length;
      index.set(id, n);
      ids.push(id);
    }
    return n;
  };
  // New jobs first, in their order, so a cycle is reported from the first of them.
  for (const j of jobs) at(j._id);
  const g = { blocks: [] as number[], writes: [] as number[], reads: [] as number[] };
  for (const e of all) {
    const kind = e.edge === 'blocks' ? 'blocks' : DATA_EDGES[e.edge as keyof typeof DATA_EDGES];
    if (kind === 'blocks') g.blocks.push(at(e._from), at(e._to));
    else if (kind === 'write') g.writes.push(at(e._from), at(e._to));
    else if (kind === 'read') g.reads.push(at(e._from), at(e._to));
  }
  const cycles = dependencyCycles({ size: ids.length, ...g }).filter((c) => c.some((n) => isNew.has(ids[n]!)));
  if (cycles.length === 0) return;

  const names = new Map(jobs.map((j) => [j._id, typeof j.name === 'string' ? j.name : j._id]));
  const jobIds = cycles.map((c) => c.map((n) => ids[n]!).filter((id) => id.startsWith('jobs/')));
  const storedIds = [...new Set(jobIds.flat().filter((id) => !names.has(id)))];
  for (const d of await tx.getMany('jobs', workflow, storedIds.map((id) => id.slice('jobs/'.length)))) names.set(d._id, typeof d.name === 'string' ? d.name : d._id);
  const named = jobIds.map((list) => {
    const out = list.map((id) => names.get(id) ?? id);
    // a cycle that starts at a data node closes on a data node: close it on its first job instead
    if (out.length > 0 && out[0] !== out[out.length - 1]) out.push(out[0]!);
    return out;
  });
  throw new WeftError('DEPENDENCY_CYCLE', `Dependency cycle: ${named.map((c) => c.join(' → ')).join('; ')}`, {
    details: named.map((c) => ({ path: [], message: `dependency cycle: ${c.join(' → ')}`, rule: 'dependency_cycle' })),
    extra: { cycles: named },
  });
}
