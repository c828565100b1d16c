/**
 * The packing rule as pure logic (graph/engine/claims-packing.ts): what fits, what a take uses up,
 * the store conditions that select exactly what fits, scheduler ids and strict time limits.
 */
import { describe, expect, it } from 'vitest';
import { PackingBudget, candidateComparator, capacityOf, needsOf, timeLimitSeconds, type JobNeeds } from '../../graph/engine/claims-packing.js';
import { schedulerIdsOf } from '../../graph/engine/claims.js';
import type { Doc } from '../../graph/store/port.js';

const GiB = 1024 ** 3;

function needs(over: Partial<JobNeeds> = {}): JobNeeds {
  return { cpus: 1, memoryBytes: GiB, gpus: 0, nodes: 1, runtimeSeconds: 60, schedulerConfigId: '', ...over };
}

function job(key: string, internal: Record<string, unknown>): Doc {
  return { _key: key, _id: `jobs/${key}`, _rev: 'r', internal };
}

/** Does a job with these needs satisfy every store condition of the budget? */
function matches(budget: PackingBudget, n: JobNeeds): boolean {
  const doc: Record<string, number | string> = {
    'internal.num_cpus': n.cpus,
    'internal.memory_bytes': n.memoryBytes,
    'internal.num_gpus': n.gpus,
    'internal.num_nodes': n.nodes,
    'internal.runtime_seconds': n.runtimeSeconds,
    'internal.scheduler_config_id': n.schedulerConfigId,
  };
  return budget.conditions().every((c) => {
    const v = doc[c.field]!;
    if (c.op === '<=') return (v as number) <= (c.value as number);
    if (c.op === 'in') return (c.value as unknown[]).includes(v);
    throw new Error(`unexpected op ${c.op}`);
  });
}

describe('PackingBudget', () => {
  it('uses up CPUs, memory and GPUs; single-node jobs never use nodes, multi-node ones do', () => {
    const b = new PackingBudget(capacityOf({ num_cpus: 8, memory_gb: 4, num_gpus: 1, num_nodes: 3 }, null, []));
    b.take(needs({ cpus: 3, memoryBytes: GiB, gpus: 1 }));
    expect([b.cpus, b.memoryBytes, b.gpus, b.nodes]).toEqual([5, 3 * GiB, 0, 3]);
    expect(b.fits(needs({ gpus: 1 }))).toBe(false);
    b.take(needs({ cpus: 1, nodes: 2 }));
    expect(b.nodes).toBe(1);
    expect(b.fits(needs({ nodes: 2 }))).toBe(false);
    expect(b.fits(needs({ nodes: 1 }))).toBe(true);
    expect(b.fits(needs({ cpus: 5, memoryBytes: 2 * GiB }))).toBe(false);
    expect(b.fits(needs({ cpus: 4, memoryBytes: 2 * GiB }))).toBe(true);
  });

  it('time limit, node count and scheduler binding are per-job filters, not consumed', () => {
    const b = new PackingBudget(capacityOf({ num_cpus: 64, memory_gb: 64, num_nodes: 2 }, 3600, ['slurm_schedulers/7']));
    expect(b.fits(needs({ runtimeSeconds: 3600 }))).toBe(true);
    expect(b.fits(needs({ runtimeSeconds: 3601 }))).toBe(false);
    expect(b.fits(needs({ nodes: 3 }))).toBe(false);
    expect(b.fits(needs({ schedulerConfigId: 'slurm_schedulers/7' }))).toBe(true);
    expect(b.fits(needs({ schedulerConfigId: 'slurm_schedulers/8' }))).toBe(false);
    const unbound = new PackingBudget(capacityOf({ num_cpus: 64, memory_gb: 64 }, null, []));
    expect(unbound.fits(needs({ schedulerConfigId: 'slurm_schedulers/7' }))).toBe(false);
    expect(unbound.fits(needs({ runtimeSeconds: 10 ** 9 }))).toBe(true);
  });

  it('its store conditions select exactly the jobs that fit, as the budget shrinks', () => {
    const b = new PackingBudget(capacityOf({ num_cpus: 6, memory_gb: 8, num_gpus: 2, num_nodes: 4 }, 7200, ['local_schedulers/1']));
    const samples: JobNeeds[] = [];
    for (const cpus of [0, 1, 3, 6, 7]) for (const gb of [0, 2, 8, 9]) for (const gpus of [0, 2, 3]) for (const nodes of [1, 2, 4, 5]) for (const rt of [60, 7200, 7201]) for (const s of ['', 'local_schedulers/1', 'local_schedulers/2']) {
      samples.push(needs({ cpus, memoryBytes: gb * GiB, gpus, nodes, runtimeSeconds: rt, schedulerConfigId: s }));
    }
    const takes = [needs({ cpus: 2, memoryBytes: 3 * GiB, gpus: 1, nodes: 3 }), needs({ cpus: 3, memoryBytes: 4 * GiB, gpus: 1 })];
    for (let step = 0; step <= takes.length; step++) {
      for (const n of samples) expect(matches(b, n), JSON.stringify({ step, n })).toBe(b.fits(n));
      if (step < takes.length) b.take(takes[step]!);
    }
  });

  it('names the searched budget when nothing fits', () => {
    const b = new PackingBudget(capacityOf({ num_cpus: 2, memory_gb: 1, num_gpus: 0, num_nodes: 1 }, 60, ['slurm_schedulers/3']));
    expect(b.reason(['ready', 'scheduled'])).toBe(
      "No jobs matched status='ready' or 'scheduled', memory_bytes <= 1073741824, num_cpus <= 2, num_gpus <= 0, runtime_seconds <= 60, num_nodes <= 1, scheduler_config_id == '' or 'slurm_schedulers/3'",
    );
  });
});

describe('sort order, needs, scheduler ids, time limits', () => {
  it('orders by GPUs, then runtime or memory, all descending, ties by insertion (numeric key)', () => {
    const jobs = [
      job('10', { num_gpus: 0, runtime_seconds: 60, memory_bytes: 5 }),
      job('9', { num_gpus: 0, runtime_seconds: 120, memory_bytes: 1 }),
      job('11', { num_gpus: 1, runtime_seconds: 1, memory_bytes: 1 }),
      job('2', { num_gpus: 0, runtime_seconds: 60, memory_bytes: 5 }),
    ];
    expect([...jobs].sort(candidateComparator('gpus_runtime_memory')).map((j) => j._key)).toEqual(['11', '9', '2', '10']);
    expect([...jobs].sort(candidateComparator('gpus_memory_runtime')).map((j) => j._key)).toEqual(['11', '2', '10', '9']);
    expect([...jobs].sort(candidateComparator('none')).map((j) => j._key)).toEqual(['2', '9', '10', '11']);
  });

  it('reads needs from internal, filling only missing fields', () => {
    expect(needsOf(job('1', { num_cpus: 4, memory_bytes: 8, num_gpus: 1, num_nodes: 2, runtime_seconds: 30, scheduler_config_id: 'slurm_schedulers/1' }))).toEqual({
      cpus: 4, memoryBytes: 8, gpus: 1, nodes: 2, runtimeSeconds: 30, schedulerConfigId: 'slurm_schedulers/1',
    });
    expect(needsOf(job('1', { num_cpus: 0 })).cpus).toBe(0);
  });

  it('accepts a scheduler as an id, a Torc-style id or a bare key', () => {
    expect(schedulerIdsOf('slurm_schedulers/12')).toEqual(['slurm_schedulers/12']);
    expect(schedulerIdsOf('slurm_schedulers__77/12')).toEqual(['slurm_schedulers__77/12', 'slurm_schedulers/12']);
    expect(schedulerIdsOf('12')).toEqual(['12', 'local_schedulers/12', 'slurm_schedulers/12', 'aws_schedulers/12']);
    expect(schedulerIdsOf('')).toEqual([]);
    expect(schedulerIdsOf(null)).toEqual([]);
  });

  it('parses time limits strictly', () => {
    expect(timeLimitSeconds('P0DT4H')).toBe(14_400);
    expect(timeLimitSeconds('P1DT0H30M15S')).toBe(88_215);
    expect(timeLimitSeconds(null)).toBeNull();
    expect(timeLimitSeconds('')).toBeNull();
    for (const bad of ['PT1.5H', 'P1W', 'P1Y', '4h', 'PT', 'P', '-PT1H']) expect(() => timeLimitSeconds(bad), bad).toThrow(/invalid duration/);
  });
});
