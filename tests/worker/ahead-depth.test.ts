/**
 * How deep the worker claims ahead (worker/ahead-queue.ts): about AHEAD_WORK_MS of work waits
 * queued, so the depth falls as jobs get longer, never below one node's worth nor above the cap.
 */
import { describe, expect, it } from 'vitest';
import { AHEAD_WORK_MS, RecentRunTimes, SHORT_JOB_MS, aheadDepth } from '../../worker/ahead-queue.js';

describe('worker: claim-ahead depth', () => {
  it('is floor(AHEAD_WORK_MS / median), between 1 and the cap', () => {
    expect(AHEAD_WORK_MS).toBe(50);
    expect(aheadDepth(0, 8)).toBe(8); // a run time under 1 ms counts as 1 ms
    expect(aheadDepth(2, 8)).toBe(8);
    expect(aheadDepth(6, 8)).toBe(8);
    expect(aheadDepth(10, 8)).toBe(5);
    expect(aheadDepth(20, 8)).toBe(2);
    expect(aheadDepth(49, 8)).toBe(1);
    expect(aheadDepth(SHORT_JOB_MS, 8)).toBe(1);
    expect(aheadDepth(2, 3)).toBe(3);
  });

  it('takes the median of the recent run times, once four were seen', () => {
    const r = new RecentRunTimes();
    for (const ms of [1, 100, 2]) r.add(ms);
    expect(r.median).toBeNull();
    expect(r.short).toBe(false);
    r.add(3);
    expect(r.median).toBe(3);
    expect(r.short).toBe(true);
    for (let i = 0; i < 20; i++) r.add(80);
    expect(r.median).toBe(80);
    expect(r.short).toBe(false);
  });
});
