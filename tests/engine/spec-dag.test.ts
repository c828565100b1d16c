/**
 * graph/dag.ts: Kahn's order puts every node after its predecessors; when there is none, each
 * reported cycle is a real closed path, started at its lowest node; nodes merely downstream of a
 * cycle are not reported; long graphs do not recurse.
 */
import { describe, expect, it } from 'vitest';
import { topologicalOrder, toCsr } from '../../graph/dag.js';

function graph(size: number, edges: [number, number][]) {
  return toCsr(size, edges.map((e) => e[0]), edges.map((e) => e[1]));
}

describe('topologicalOrder', () => {
  it('orders a diamond with every node after its predecessors', () => {
    const edges: [number, number][] = [[3, 1], [3, 2], [1, 0], [2, 0]];
    const { order, cycles } = topologicalOrder(graph(4, edges));
    expect(cycles).toEqual([]);
    expect(order).toHaveLength(4);
    for (const [a, b] of edges) expect(order.indexOf(a)).toBeLessThan(order.indexOf(b));
  });

  it('names a cycle in edge order from its lowest node, not the nodes downstream of it', () => {
    // 4 → 2 → 5 → 4 is the cycle; 0 feeds it, 1 and 3 hang below it
    const { cycles } = topologicalOrder(graph(6, [[0, 4], [4, 2], [2, 5], [5, 4], [5, 1], [1, 3]]));
    expect(cycles).toEqual([[2, 5, 4, 2]]);
  });

  it('self-loops and several disjoint cycles, capped by maxCycles', () => {
    const edges: [number, number][] = [[0, 0], [1, 2], [2, 1], [3, 4], [4, 3]];
    expect(topologicalOrder(graph(5, edges)).cycles).toEqual([[0, 0], [1, 2, 1], [3, 4, 3]]);
    expect(topologicalOrder(graph(5, edges), 2).cycles).toHaveLength(2);
  });

  it('a 200,000-node chain orders, and closing it makes one cycle of all of them', () => {
    const n = 200_000;
    const chain: [number, number][] = Array.from({ length: n - 1 }, (_, i) => [i, i + 1]);
    expect(topologicalOrder(graph(n, chain)).order).toHaveLength(n);
    const { cycles } = topologicalOrder(graph(n, [...chain, [n - 1, 0]]));
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toHaveLength(n + 1);
    expect(cycles[0]!.slice(0, 3)).toEqual([0, 1, 2]);
  });
});
