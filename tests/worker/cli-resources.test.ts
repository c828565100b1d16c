/**
 * The real `weft worker` binary against a real server: GPUs handed out as distinct
 * CUDA_VISIBLE_DEVICES, and --max-parallel-jobs as a hard cap (checked from what the jobs see,
 * not from timing). Not from start/complete events: the worker frees a slot when the job's
 * process ends and claims the next job while the report is still in flight, so the next start
 * event may come before the previous complete event.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { killStrayWorkers, jobsByName, resultsFor, startCliWorker, startedWorkflow, tempDirForSuite } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite();
afterAll(killStrayWorkers);

describe('weft worker: GPUs', () => {
  it('gives two concurrent 1-GPU jobs distinct devices of --num-gpus 2, and a CPU job none', async () => {
    const d = join(dir, 'gpu');
    mkdirSync(d);
    // Each GPU job records its devices, then waits for the other one to have recorded too, so
    // the two provably ran at the same time.
    const gpuJob = (name: string): Record<string, unknown> => ({
      name,
      command: `echo "$CUDA_VISIBLE_DEVICES" > ${d}/${name}.gpu; for i in $(seq 300); do [ "$(ls ${d}/*.gpu | wc -l)" -ge 2 ] && exit 0; sleep 0.1; done; exit 9`,
      resource_requirements: 'one_gpu',
    });
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'gpus',
      resource_requirements: [{ name: 'one_gpu', num_cpus: 1, num_gpus: 1, num_nodes: 1, memory: '100m', runtime: 'PT10M' }],
      jobs: [gpuJob('g1'), gpuJob('g2'), { name: 'cpu', command: `echo "[$CUDA_VISIBLE_DEVICES]" > ${d}/cpu.txt` }],
    });
    const w = startCliWorker(['--url', srv.baseUrl, '--workflow', wf, '--output-dir', join(dir, 'out-gpu'), '--num-gpus', '2', '--num-cpus', '4', '--memory-gb', '4', '--poll-interval-seconds', '0.2']);
    const exit = await w.exited;
    expect(exit.code, w.stderr()).toBe(0);
    const jobs = await jobsByName(client, wf);
    for (const name of ['g1', 'g2', 'cpu']) expect((await resultsFor(client, wf, jobs.get(name)!._key))[0]?.['return_code']).toBe(0);
    const devices = ['g1', 'g2'].map((n) => readFileSync(join(d, `${n}.gpu`), 'utf8').trim());
    expect(devices.slice().sort()).toEqual(['0', '1']);
    expect(readFileSync(join(d, 'cpu.txt'), 'utf8')).toBe('[]\n');
    const node = (await client.list(wf, 'compute_nodes'))[0]!;
    expect(node['resources']).toMatchObject({ num_gpus: 2, num_cpus: 4 });
  });
});

describe('weft worker: --max-parallel-jobs', () => {
  it('never runs more than N jobs at once', async () => {
    const d = join(dir, 'cap');
    mkdirSync(join(d, 'running'), { recursive: true });
    mkdirSync(join(d, 'seen'));
    // A job marks itself running, records how many are marked, holds a moment, unmarks itself.
    const jobs = Array.from({ length: 10 }, (_, i) => ({
      name: `j${i}`,
      command: `touch ${d}/running/$WEFT_JOB_NAME; ls ${d}/running | wc -l > ${d}/seen/$WEFT_JOB_NAME; sleep 0.4; rm ${d}/running/$WEFT_JOB_NAME`,
    }));
    const { wf, client } = await startedWorkflow(srv.baseUrl, { name: 'cap', jobs });
    const w = startCliWorker(['--url', srv.baseUrl, '--workflow', wf, '--output-dir', join(dir, 'out-cap'), '--max-parallel-jobs', '3', '--num-cpus', '16', '--memory-gb', '16', '--poll-interval-seconds', '0.2']);
    const exit = await w.exited;
    expect(exit.code, w.stderr()).toBe(0);
    const seen = readdirSync(join(d, 'seen')).map((f) => Number(readFileSync(join(d, 'seen', f), 'utf8').trim()));
    expect(seen).toHaveLength(10);
    expect(Math.max(...seen)).toBeLessThanOrEqual(3);
    expect(Math.max(...seen)).toBeGreaterThan(1); // it did run jobs side by side
    const byName = await jobsByName(client, wf);
    for (const j of byName.values()) expect(j['status']).toBe('done');
  });
});
