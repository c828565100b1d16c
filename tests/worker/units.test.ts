/** Unit tests of the worker's pure parts: durations, resource detection, GPU assignment, output naming. */
import { describe, expect, it } from 'vitest';
import { detectResources, formatDuration, GpuPool, parseDurationSeconds, parseNvidiaSmiIndices, parseSqueueTime, stdioPaths } from '../../worker/index.js';
import { numberFlag } from '../../worker/index.js';

describe('durations', () => {
  it('parses ISO 8601 days/hours/minutes/seconds and formats whole seconds the server accepts', () => {
    expect(parseDurationSeconds('P0DT1H')).toBe(3600);
    expect(parseDurationSeconds('PT30M')).toBe(1800);
    expect(parseDurationSeconds('P1DT2H3M4S')).toBe(86400 + 7200 + 180 + 4);
    expect(parseDurationSeconds('PT0.5S')).toBe(0.5);
    for (const bad of ['P', 'PT', '1h', 'P1Y', 'PT-5S', '']) expect(() => parseDurationSeconds(bad)).toThrow(/invalid duration/);
    expect(formatDuration(86400 + 7200 + 180 + 4.9)).toBe('P1DT2H3M4S');
    expect(formatDuration(-3)).toBe('P0DT0H0M0S');
    expect(parseDurationSeconds(formatDuration(123456))).toBe(123456);
  });
});

describe('numberFlag', () => {
  it('names the flag in its error', () => {
    expect(numberFlag('--num-cpus', '4', { integer: true })).toBe(4);
    expect(numberFlag('--num-cpus', undefined)).toBeUndefined();
    expect(() => numberFlag('--num-cpus', '2.5', { integer: true })).toThrow(/--num-cpus must be an integer/);
    expect(() => numberFlag('--max-parallel-jobs', '0', { integer: true, min: 1 })).toThrow(/--max-parallel-jobs/);
    expect(() => numberFlag('--memory-gb', 'lots')).toThrow(/--memory-gb/);
  });
});

describe('resource detection', () => {
  const noPrograms = async (): Promise<string | null> => null;

  it('detects CPUs and memory, and no GPUs without nvidia-smi', async () => {
    const r = await detectResources({}, { env: {}, run: noPrograms });
    expect(r.numCpus).toBeGreaterThan(0);
    expect(r.memoryGb).toBeGreaterThan(0);
    expect(r.gpuIds).toEqual([]);
    expect(r.allocationEndMs).toBeNull();
    expect(r.timeLimitEndMs).toBeNull();
  });

  it('reads GPU indices from nvidia-smi, and CUDA_VISIBLE_DEVICES first when a scheduler set it', async () => {
    const calls: string[][] = [];
    const smi = async (file: string, args: string[]): Promise<string | null> => {
      calls.push([file, ...args]);
      return file === 'nvidia-smi' ? '0\n1\n2\n3\n' : null;
    };
    expect((await detectResources({}, { env: {}, run: smi })).gpuIds).toEqual(['0', '1', '2', '3']);
    expect(calls[0]).toEqual(['nvidia-smi', '--query-gpu=index', '--format=csv,noheader']);
    expect((await detectResources({}, { env: { CUDA_VISIBLE_DEVICES: '2,3' }, run: smi })).gpuIds).toEqual(['2', '3']);
    expect(parseNvidiaSmiIndices('0\nNo devices were found\n')).toEqual(['0']);
  });

  it('--num-gpus overrides: the first N detected, or fake ids 0..N-1', async () => {
    const smi = async (file: string): Promise<string | null> => (file === 'nvidia-smi' ? '0\n1\n2\n' : null);
    expect((await detectResources({ numGpus: 2 }, { env: {}, run: smi })).gpuIds).toEqual(['0', '1']);
    expect((await detectResources({ numGpus: 2 }, { env: {}, run: noPrograms })).gpuIds).toEqual(['0', '1']);
    expect((await detectResources({ numGpus: 0 }, { env: {}, run: smi })).gpuIds).toEqual([]);
  });

  it('takes the flags over detection', async () => {
    const r = await detectResources({ numCpus: 3, memoryGb: 7.5 }, { env: {}, run: noPrograms });
    expect([r.numCpus, r.memoryGb, r.sources.cpus, r.sources.memory]).toEqual([3, 7.5, '--num-cpus', '--memory-gb']);
  });

  it('reads the Slurm end time from SLURM_JOB_END_TIME, else squeue %e; --end-time wins; --time-limit counts from now', async () => {
    const squeue = async (file: string, args: string[]): Promise<string | null> =>
      file === 'squeue' && args.join(' ') === '-h -j 4242 -o %e' ? '2030-01-02T03:04:05\n' : null;
    const a = await detectResources({}, { env: { SLURM_JOB_END_TIME: '1900000000' }, run: squeue });
    expect(a.allocationEndMs).toBe(1_900_000_000_000);
    const b = await detectResources({}, { env: { SLURM_JOB_ID: '4242' }, run: squeue });
    expect(b.allocationEndMs).toBe(new Date(2030, 0, 2, 3, 4, 5).getTime());
    expect(b.sources.end).toBe('squeue %e');
    const c = await detectResources({ endTime: 1_800_000_000 }, { env: { SLURM_JOB_ID: '4242' }, run: squeue });
    expect(c.allocationEndMs).toBe(1_800_000_000_000);
    const d = await detectResources({ timeLimit: 'PT10M' }, { env: {}, run: squeue, now: 1_000_000 });
    expect(d.timeLimitEndMs).toBe(1_000_000 + 600_000);
    expect(parseSqueueTime('N/A')).toBeNull();
    expect(parseSqueueTime('NONE\n')).toBeNull();
  });
});

describe('GPU pool', () => {
  it('hands out distinct ids, refuses when too few are free, takes them back', () => {
    const pool = new GpuPool(['0', '1', '2']);
    const a = pool.take(2)!;
    const b = pool.take(1)!;
    expect(new Set([...a, ...b]).size).toBe(3);
    expect(pool.take(1)).toBeNull();
    expect(pool.take(0)).toEqual([]);
    pool.release(a);
    pool.release(a); // twice: no duplicates
    pool.release(['9']); // not ours: ignored
    expect(pool.available).toBe(2);
    expect(pool.take(2)).toEqual(a.slice().sort());
    expect(pool.take(1)).toBeNull();
  });
});

describe('output naming', () => {
  it('puts each run of each job in its own pair of files under job-stdio', () => {
    expect(stdioPaths('/out', '12', '345', 2)).toEqual({ stdout: '/out/job-stdio/12_345_2.o', stderr: '/out/job-stdio/12_345_2.e' });
    expect(stdioPaths('/out', 'a/b', '../x', 1).stdout).toBe('/out/job-stdio/a_b_.._x_1.o');
  });
});
