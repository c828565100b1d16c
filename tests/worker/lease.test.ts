/**
 * Heartbeats keep the lease: with a 1 s lease timeout, a job that runs several times longer
 * stays with its worker (no lease_expired event, one result); the compute node records the
 * scheduler info it was started with and its last heartbeat.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWorker } from '../../worker/index.js';
import { testServerForSuite } from '../helpers/server.js';
import { jobsByName, resultsFor, startedWorkflow, tempDirForSuite } from './helpers.js';

const dir = tempDirForSuite();
const srv = testServerForSuite({ flags: { leaseTimeoutSeconds: 1 } });

describe('worker: heartbeats', () => {
  it('a job longer than the lease timeout stays with its heartbeating worker', async () => {
    const { wf, client } = await startedWorkflow(srv.baseUrl, { name: 'long', jobs: [{ name: 'long', command: 'sleep 4' }] });
    const summary = await runWorker({
      url: srv.baseUrl,
      workflow: wf,
      outputDir: join(dir, 'out'),
      numCpus: 1,
      memoryGb: 1,
      heartbeatSeconds: 0.2,
      schedulerConfigId: 'local_schedulers/7',
      scheduledComputeNodeKey: 'alloc-1',
    });
    expect(summary.reason).toBe('complete');
    const job = (await jobsByName(client, wf)).get('long')!;
    expect(job['status']).toBe('done');
    expect(await resultsFor(client, wf, job._key)).toHaveLength(1);
    const events = await client.list(wf, 'events');
    expect(events.filter((e) => e['type'] === 'lease_expired')).toEqual([]);
    expect(events.filter((e) => e['type'] === 'start')).toHaveLength(1);
    const node = (await client.list(wf, 'compute_nodes'))[0]!;
    expect(node['scheduler']).toMatchObject({ scheduler_config_id: 'local_schedulers/7', scheduled_compute_node_key: 'alloc-1', hpc_type: 'local' });
    expect(node['resources']).toMatchObject({ scheduler_config_id: 'local_schedulers/7' });
    expect(node['last_heartbeat']).toBeGreaterThan(Date.parse(String(node['start_time'])) / 1000 + 3);
  });
});
