/**
 * The worker's time limit and the workflow config's scripts, in-process against a real server:
 * jobs that cannot finish in the time left are not claimed; at the end, a running job that
 * supports termination gets SIGTERM and is recorded terminated with its real return code; the
 * worker startup script runs before any job, the completion script once at the end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWorker } from '../../worker/index.js';
import { testServerForSuite } from '../helpers/server.js';
import { jobsByName, resultsFor, startedWorkflow, tempDirForSuite } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite();

describe('worker: time limit', () => {
  it('claims only what fits in the time left, and terminates a job that supports it when time is up', async () => {
    const flag = join(dir, 'trapped');
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'time',
      resource_requirements: [
        { name: 'short', num_cpus: 1, memory: '10m', runtime: 'PT2S' },
        { name: 'long', num_cpus: 1, memory: '10m', runtime: 'PT1H' },
      ],
      jobs: [
        // declares 2 s but runs on until told to stop
        { name: 'overrun', command: `trap 'echo term > ${flag}; exit 0' TERM; while :; do sleep 0.1; done`, resource_requirements: 'short', supports_termination: true },
        { name: 'too_long', command: 'true', resource_requirements: 'long' },
      ],
    });
    const summary = await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out-time'), numCpus: 4, memoryGb: 2, timeLimit: 'PT4S', pollIntervalSeconds: 0.2, killGraceSeconds: 10 });
    expect(summary.reason).toBe('end-time');
    const jobs = await jobsByName(client, wf);
    expect(jobs.get('too_long')!['status']).toBe('ready');
    expect(jobs.get('overrun')!['status']).toBe('terminated');
    expect((await resultsFor(client, wf, jobs.get('overrun')!._key))[0]).toMatchObject({ status: 'terminated', return_code: 0 });
    expect(readFileSync(flag, 'utf8')).toBe('term\n');
    expect((await client.list(wf, 'compute_nodes'))[0]!['resources']).toMatchObject({ time_limit: expect.stringMatching(/^P0DT0H0M[34]S$/) });
  });
});

describe('worker: config scripts', () => {
  it('runs worker_startup_script before the jobs and workflow_completion_script once when the workflow completes', async () => {
    const log = join(dir, 'order.log');
    const { wf } = await startedWorkflow(srv.baseUrl, {
      name: 'scripts',
      config: { worker_startup_script: `echo "startup $WEFT_WORKFLOW_KEY" >> ${log}`, workflow_completion_script: `echo completion >> ${log}` },
      jobs: [{ name: 'job', command: `echo job >> ${log}` }],
    });
    const summary = await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out-scripts'), numCpus: 1, memoryGb: 1 });
    expect(summary.reason).toBe('complete');
    expect(readFileSync(log, 'utf8')).toBe(`startup ${wf}\njob\ncompletion\n`);
    // a second worker on the complete workflow does not run the completion script again
    await runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out-scripts'), numCpus: 1, memoryGb: 1 });
    expect(readFileSync(log, 'utf8')).toBe(`startup ${wf}\njob\ncompletion\nstartup ${wf}\n`);
  });

  it('a failing worker_startup_script stops the worker before it runs anything', async () => {
    const marker = join(dir, 'should-not-exist');
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'bad-startup',
      config: { worker_startup_script: 'exit 4' },
      jobs: [{ name: 'job', command: `touch ${marker}` }],
    });
    await expect(runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out-bad'), numCpus: 1, memoryGb: 1 })).rejects.toThrow(/worker_startup_script exited with 4/);
    expect(existsSync(marker)).toBe(false);
    expect((await jobsByName(client, wf)).get('job')!['status']).toBe('ready');
    expect((await client.list(wf, 'compute_nodes'))[0]!['is_active']).toBe(false);
  });

  it('refuses a workflow that has not been started', async () => {
    const { WeftClient } = await import('../../client/index.js');
    const c = new WeftClient(srv.baseUrl);
    const wf = (await c.createWorkflowFromSpec({ name: 'unstarted', jobs: [{ name: 'j', command: 'true' }] }))._key;
    await expect(runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out-u') })).rejects.toThrow(/has not been started/);
  });
});
