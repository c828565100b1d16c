/** The worker's job calls that need more than one request: a start whose answer was lost, giving back unseen claims. */
import type { Logger } from 'pino';
import { WeftApiError, type Doc, type WeftClient } from '../client/index.js';

function holderOf(job: Doc): string | undefined {
  const h = (job['internal'] as { compute_node_key?: unknown } | undefined)?.compute_node_key;
  return typeof h === 'string' && h !== '' ? h.slice(h.lastIndexOf('/') + 1) : undefined;
}

/** start_job; when the answer was lost and a retry finds the job already started by this node, carry on with it. */
export async function startJobOnce(client: WeftClient, workflow: string, job: Doc, runId: number, nodeKey: string, log: Logger): Promise<Doc> {
  try {
    return await client.startJob(workflow, job._key, job._rev, runId, nodeKey);
  } catch (err) {
    if (!(err instanceof WeftApiError) || err.status >= 500) throw err;
    const fresh = await client.get(workflow, 'jobs', job._key);
    if (fresh['status'] === 'submitted' && holderOf(fresh) === nodeKey) {
      log.info('start_job was applied before (its answer was lost); going on');
      return fresh;
    }
    throw err;
  }
}

/** After an interrupted claim: jobs the server gave this node that it never saw go back to ready. */
export async function giveBackUnstarted(client: WeftClient, workflow: string, runId: number, nodeKey: string, log: Logger): Promise<void> {
  try {
    const pending = await client.list(workflow, 'jobs', { status: 'submitted_pending' });
    for (const job of pending) {
      if (holderOf(job) !== nodeKey) continue;
      try {
        await client.manageStatusChange(workflow, job._key, 'ready', job._rev, runId, { retryMinutes: 1 });
      } catch (err) {
        log.warn({ job: job._key, err: (err as Error).message }, 'could not give back a claimed job (the lease will)');
      }
    }
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not look for claimed jobs to give back (the lease will)');
  }
}
