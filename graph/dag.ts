/**
 * Directed graphs over integer node ids (0..n-1): topological order by Kahn's algorithm and, when
 * there is none, the cycles that prevent it, each as a path in edge order.
 *
 * Nodes are integers so that a 100,000-job specification (plus its files and user data as
 * intermediate nodes) checks in milliseconds: adjacency is kept in flat typed arrays (CSR).
 */

/** A graph in compressed sparse row form: the successors of `v` are `targets[offsets[v]..offsets[v+1])`. */
export interface Csr {
  readonly size: number;
  readonly offsets: Int32Array;
  readonly targets: Int32Array;
}

/** Build the CSR form of `size` nodes and the edges `from[i] → to[i]`. */
export function toCsr(size: number, from: ArrayLike<number>, to: ArrayLike<number>): Csr {
  const offsets = new Int32Array(size + 1);
  for (let i = 0; i < from.length; i++) offsets[from[i]! + 1]!++;
  for (let v = 0; v < size; v++) offsets[v + 1]! += offsets[v]!;
  const fill = offsets.slice(0, size);
  const targets = new Int32Array(from.length);
  for (let i = 0; i < from.length; i++) targets[fill[from[i]!]!++] = to[i]!;
  return { size, offsets, targets };
}

export interface TopoResult {
  /** Every node, each after all of its predecessors; only complete when `cycles` is empty. */
  order: number[];
  /** Cycles found (at most `maxCycles`), each closed: `[a, b, c, a]` for a → b → c → a. */
  cycles: number[][];
}

/**
 * Kahn's algorithm. When nodes are left over, they all lie on or downstream of a cycle; every
 * leftover node has a leftover predecessor, so walking predecessors must repeat a node, and the
 * walk between the two visits is a cycle. Its nodes are then taken out and the rest searched
 * again, so disjoint cycles are all reported (up to `maxCycles`).
 */
export function topologicalOrder(g: Csr, maxCycles = 10): TopoResult {
  const indegree = new Int32Array(g.size);
  for (let i = 0; i < g.targets.length; i++) indegree[g.targets[i]!]!++;
  const order: number[] = [];
  const queue = new Int32Array(g.size);
  let head = 0;
  let tail = 0;
  for (let v = 0; v < g.size; v++) if (indegree[v] === 0) queue[tail++] = v;
  while (head < tail) {
    const v = queue[head++]!;
    order.push(v);
    for (let i = g.offsets[v]!; i < g.offsets[v + 1]!; i++) {
      const w = g.targets[i]!;
      if (--indegree[w]! === 0) queue[tail++] = w;
    }
  }
  if (order.length === g.size) return { order, cycles: [] };
  return { order, cycles: findCycles(g, indegree, maxCycles) };
}

/** Cycles among the nodes Kahn's algorithm could not order (`indegree > 0`). */
function findCycles(g: Csr, indegree: Int32Array, maxCycles: number): number[][] {
  // Predecessor lists restricted to the leftover nodes.
  const left = new Uint8Array(g.size);
  for (let v = 0; v < g.size; v++) if (indegree[v]! > 0) left[v] = 1;
  const preds = new Map<number, number[]>();
  for (let v = 0; v < g.size; v++) {
    if (!left[v]) continue;
    for (let i = g.offsets[v]!; i < g.offsets[v + 1]!; i++) {
      const w = g.targets[i]!;
      if (!left[w]) continue;
      const list = preds.get(w);
      if (list) list.push(v);
      else preds.set(w, [v]);
    }
  }
  const cycles: number[][] = [];
  const removed = new Uint8Array(g.size);
  for (let start = 0; start < g.size && cycles.length < maxCycles; start++) {
    if (!left[start] || removed[start]) continue;
    // Walk predecessors that are still in play; stop when a node repeats or the walk dead-ends
    // (possible only after earlier cycles were taken out).
    const seenAt = new Map<number, number>();
    const walk: number[] = [];
    let v: number | undefined = start;
    while (v !== undefined && !seenAt.has(v)) {
      seenAt.set(v, walk.length);
      walk.push(v);
      v = (preds.get(v) ?? []).find((p) => !removed[p]);
    }
    if (v === undefined) continue;
    // walk[i+1] is a predecessor of walk[i]: the cycle in edge order is the reversed tail.
    // Start it at its lowest node (the first one declared) so the report reads the same way
    // whichever node the search happened to start from.
    const ring = walk.slice(seenAt.get(v)!).reverse();
    let low = 0;
    for (let i = 1; i < ring.length; i++) if (ring[i]! < ring[low]!) low = i;
    const cycle = [...ring.slice(low), ...ring.slice(0, low)];
    cycle.push(cycle[0]!);
    cycles.push(cycle);
    for (const n of cycle) removed[n] = 1;
  }
  return cycles;
}
