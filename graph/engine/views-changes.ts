/**
 * `POST /workflows/{key}/process_changed_job_inputs`: find the `done` jobs whose inputs changed
 * since they ran (their input hash differs from `internal.hash`, or they have none) and reset
 * them and everything downstream of them to `uninitialized`, so the next
 * `initialize_jobs(only_uninitialized)` reruns exactly those.
 *
 * Differences from Torc 0.6.4, on purpose: hashes cover content, not revisions (section 6.1), so
 * rewriting a document with the same content changes nothing; a dry run lists the same jobs a
 * real run would reset (the changed jobs themselves and their downstream jobs) and writes
 * nothing; everything happens in one transaction.
 */
import type { Doc, GraphStore } from '../store/port.js';
import { computeJobInputHashes } from './input-hash.js';
import { downstreamJobIds } from './views-jobs.js';
import { isEmptyUserData } from './views-checks.js';

export interface ChangedInputsOptions {
  /** Report what would be reset without changing anything. Default false. */
  dryRun?: boolean;
}

function storedHash(job: Doc): string | undefined {
  const internal = job.internal as Record<string, unknown> | undefined;
  const h = internal?.hash;
  return typeof h === 'string' && h !== '' ? h : undefined;
}

/**
 * Returns the keys of the jobs reset (dry run: that would be reset): the changed `done` jobs in
 * insertion order, then their downstream jobs breadth first, each once; jobs already
 * `uninitialized` are not listed. Unless dry run, ephemeral user data is cleared first (as in
 * initialize_jobs), so the jobs that store it (to write it again) and consume it are reset too; a
 * dry run reports as if it were cleared.
 */
export async function processChangedJobInputs(store: GraphStore, workflow: string, opts: ChangedInputsOptions = {}): Promise<string[]> {
  const dryRun = opts.dryRun ?? false;
  const run = async (tx: GraphStore): Promise<string[]> => {
    const ephemeral = (await tx.find('user_data', workflow, { where: { is_ephemeral: true } })).items.filter((u) => !isEmptyUserData(u));
    const cleared = new Set(ephemeral.map((u) => u._id));
    if (!dryRun && ephemeral.length > 0) {
      await tx.updateMany('user_data', workflow, ephemeral.map((u) => ({ key: u._key, patch: { data: {} } })));
    }
    const done = (await tx.find('jobs', workflow, { where: { status: 'done' } })).items;
    const hashes = await computeJobInputHashes(tx, workflow, done, { clearedUserData: cleared });
    // A job that stores cleared ephemeral data must run again to write it.
    const storers = cleared.size === 0 ? new Set<string>() : new Set((await tx.edges('stores', workflow, { to: [...cleared] })).map((e) => e._from));
    const changed = done.filter((j) => storers.has(j._id) || storedHash(j) !== hashes.get(j._id));
    if (changed.length === 0) return [];
    const downstream = await downstreamJobIds(tx, workflow, changed.map((j) => j._id));
    const downstreamDocs = await tx.getMany('jobs', workflow, downstream.map((id) => id.slice(id.lastIndexOf('/') + 1)));
    const reset = [...changed, ...downstreamDocs.filter((j) => j.status !== 'uninitialized')];
    const keys = reset.map((j) => j._key);
    if (dryRun) return keys;
    await tx.updateMany('jobs', workflow, keys.map((key) => ({ key, patch: { status: 'uninitialized' } })));
    await tx.insert('events', workflow, {
      timestamp: Date.now(),
      category: 'workflow',
      type: 'process_changed_job_inputs',
      reinitialized_jobs: keys,
      changed_jobs: changed.map((j) => j._key),
      message: `Reset ${keys.length} job(s) to uninitialized: ${changed.length} with changed inputs and their downstream jobs`,
    });
    return keys;
  };
  return dryRun ? run(store) : store.transaction(run);
}
