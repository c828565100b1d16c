import { describe, expect, it } from 'vitest';
import { createReconcileState, planReconcile, type OpenAllocation, type ReconcileJob } from '../../schedulers/reconcile.js';

const SL = 'slurm_schedulers/1';
const BIG = 'slurm_schedulers/2';
const job = (key: string, status: string, over: Partial<ReconcileJob> = {}): ReconcileJob => ({ _key: key, name: `job${key}`, status, ...over });
const wants = (sid: string, num_jobs = 1, extra: Record<string, unknown> = {}) => ({ schedule_compute_nodes: { scheduler_id: sid, num_jobs, ...extra } });
const alloc = (key: string, sid: string, recordStatus: string, state: OpenAllocation['state']): OpenAllocation => ({ key, schedulerConfigId: sid, recordStatus, state });

describe('planReconcile', () => {
  it('submits for a scheduler that ready or scheduled jobs ask for, the largest num_jobs, saying why', () => {
    const plan = planReconcile([job('1', 'ready', wants(SL, 2)), job('2', 'scheduled', wants(SL, 3, { max_parallel_jobs: 4 })), job('3', 'blocked', wants(BIG))], []);
    expect(plan.submit).toEqual([
      expect.objectContaining({ schedulerConfigId: SL, count: 3, maxParallelJobs: 4, jobKeys: ['1', '2'], reason: `2 ready job(s) need ${SL} (job1, job2) and it has no allocation queued or running` }),
    ]);
    expect(plan.cancel).toEqual([]);
    expect(plan.finished).toBe(false);
  });

  it('never submits for a scheduler that already has an allocation queued or running', () => {
    expect(planReconcile([job('1', 'ready', wants(SL))], [alloc('9', SL, 'pending', 'pending')]).submit).toEqual([]);
    expect(planReconcile([job('1', 'ready', wants(SL))], [alloc('9', SL, 'active', 'running')]).submit).toEqual([]);
    expect(planReconcile([job('1', 'ready', wants(SL))], [alloc('9', SL, 'uninitialized', 'unknown')]).submit).toEqual([]);
  });

  it('ignores jobs without schedule_compute_nodes, and jobs that are not ready yet', () => {
    expect(planReconcile([job('1', 'ready'), job('2', 'blocked', wants(SL)), job('3', 'submitted', wants(SL))], []).submit).toEqual([]);
  });

  it('cancels a queued allocation no remaining job needs, and only a queued one', () => {
    const open = [alloc('a', SL, 'pending', 'pending'), alloc('b', SL, 'active', 'running'), alloc('c', BIG, 'pending', 'pending')];
    const plan = planReconcile([job('1', 'done', wants(SL)), job('2', 'blocked', wants(BIG))], open);
    expect(plan.cancel).toEqual([{ key: 'a', reason: `it is still queued and no remaining job needs ${SL}` }]);
  });

  it('keeps a queued allocation that a blocked or bound job will still need', () => {
    const open = [alloc('a', SL, 'pending', 'pending'), alloc('c', BIG, 'pending', 'pending')];
    const plan = planReconcile([job('1', 'blocked', wants(SL)), job('2', 'submitted', { internal: { scheduler_config_id: BIG } })], open);
    expect(plan.cancel).toEqual([]);
  });

  it('does not resubmit for the same waiting jobs after an allocation ended without running them', () => {
    const state = createReconcileState();
    const jobs = [job('1', 'scheduled', wants(SL)), job('2', 'scheduled', wants(SL))];
    const first = planReconcile(jobs, [], state);
    expect(first.submit).toHaveLength(1);
    state.lastSubmittedFor.set(SL, first.submit[0]!.fingerprint);
    const again = planReconcile(jobs, [], state);
    expect(again.submit).toEqual([]);
    expect(again.stuck[0]?.reason).toMatch(/the same 2 job\(s\) \(job1, job2\) kept waiting/);
    // A change in the waiting jobs (one ran, or a new one arrived) allows a new allocation.
    expect(planReconcile([job('1', 'done', wants(SL)), job('2', 'scheduled', wants(SL))], [], state).submit).toHaveLength(1);
  });

  it('is finished when every job is finished and nothing stays open', () => {
    expect(planReconcile([job('1', 'done', wants(SL)), job('2', 'canceled'), job('3', 'disabled')], []).finished).toBe(true);
    expect(planReconcile([job('1', 'done', wants(SL))], [alloc('a', SL, 'active', 'running')]).finished).toBe(false);
    expect(planReconcile([job('1', 'done', wants(SL))], [alloc('a', SL, 'pending', 'pending')]).finished).toBe(true);
  });
});
