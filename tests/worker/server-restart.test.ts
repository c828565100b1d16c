/**
 * The server goes away while a job runs and comes back on the same port and database file: the
 * worker's completion report is retried until it lands, the run finishes, nothing is recorded twice.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WeftClient } from '../../client/index.js';
import { runWorker } from '../../worker/index.js';
import { freePort } from '../helpers/ports.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { jobsByName, resultsFor, startedWorkflow, tempDirForSuite, waitFor } from './helpers.js';

const dir = tempDirForSuite();
let srv: TestServer | undefined;
afterAll(async () => srv?.close());

describe('worker: server restart', () => {
  it('a completion made while the server is down lands when it is back', async () => {
    const db = join(dir, 'weft.db');
    const port = await freePort();
    srv = await startTestServer({ db, flags: { port } });
    const gate = join(dir, 'gate');
    // The job waits until the test opens the gate (after the server is down), then ends at once.
    const { wf, client } = await startedWorkflow(srv.baseUrl, {
      name: 'restart',
      jobs: [{ name: 'slow', command: `for i in $(seq 600); do [ -e ${gate} ] && exit 0; sleep 0.1; done; exit 3` }, { name: 'after', command: 'true', blocked_by: ['slow'] }],
    });
    const worker = runWorker({ url: srv.baseUrl, workflow: wf, outputDir: join(dir, 'out'), numCpus: 2, memoryGb: 2, pollIntervalSeconds: 0.3, heartbeatSeconds: 0.5 });
    await waitFor('the job running', async () => (await jobsByName(client, wf)).get('slow')!['status'] === 'submitted');
    await srv.close();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(gate, '');
    // the job ends while the server is down; its report keeps retrying
    await new Promise((r) => setTimeout(r, 1_500));
    srv = await startTestServer({ db, flags: { port } });
    const summary = await worker;
    expect(summary.reason).toBe('complete');
    const c = new WeftClient(srv.baseUrl);
    const jobs = await jobsByName(c, wf);
    expect(jobs.get('slow')!['status']).toBe('done');
    expect(jobs.get('after')!['status']).toBe('done');
    const results = await resultsFor(c, wf, jobs.get('slow')!._key);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ return_code: 0, status: 'done', run_id: 1 });
  });
});
