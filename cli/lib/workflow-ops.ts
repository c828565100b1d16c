/**
 * The client-side sequences of starting and restarting a workflow (torc-behaviour 7.5, 7.6, 6.3),
 * with the reference's bugs fixed:
 * - restart reads every page of done jobs when looking for missing outputs (not the first page);
 * - a file that had no recorded mtime and now exists gets its mtime recorded (otherwise its readers
 *   would be reset again on every restart);
 * - a dry run reports the changed jobs themselves as well as their downstream jobs.
 *
 * File paths are relative to the current directory, as they are for the workers `weft run` starts.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import type { Doc, ListResponse, WeftClient } from '../../client/index.js';
import { apiCall, CliError } from './client.js';

/** Statuses in which a job is held by a worker. */
const IN_FLIGHT = ['submitted_pending', 'submitted'] as const;

/** How many jobs of a workflow have a status (one cheap page-of-one request). */
export async function countJobs(client: WeftClient, workflow: string, status?: string): Promise<number> {
  const page = await apiCall(() =>
    client.request<ListResponse>('GET', `/workflows/${encodeURIComponent(workflow)}/jobs`, { query: { limit: 1, ...(status ? { status } : {}) } }),
  );
  return page.total_count;
}

/** Refuse while workers hold jobs of this workflow: starting over them would lose their results. */
async function refuseWhileRunning(client: WeftClient, workflow: string, what: string): Promise<void> {
  let held = 0;
  for (const s of IN_FLIGHT) held += await countJobs(client, workflow, s);
  if (held > 0) {
    throw new CliError(`Cannot ${what} workflow ${workflow}: ${held} job(s) are submitted to workers; wait for them or run \`weft workflows cancel ${workflow}\` first`, 'STATE_CONFLICT');
  }
}

/** The mtime of a path in seconds, or null when it does not exist. */
export function mtimeOf(path: string): number | null {
  try {
    return statSync(path).mtimeMs / 1000;
  } catch {
    return null;
  }
}

export interface CheckOptions {
  /** Skip the missing user data / missing input file checks. */
  ignoreMissingData?: boolean;
}

/** Fail with one line when the workflow is archived, or needs inputs that are not there. */
async function checkWorkflow(client: WeftClient, workflow: Doc, opts: CheckOptions): Promise<void> {
  if (workflow['is_archived'] === true) throw new CliError(`Workflow ${workflow._key} is archived`, 'WORKFLOW_ARCHIVED');
  if (opts.ignoreMissingData) return;
  const key = workflow._key;
  const { user_data } = await apiCall(() => client.request<{ user_data: string[] }>('GET', `/workflows/${key}/missing_user_data`));
  if (user_data.length > 0) {
    const names = await Promise.all(user_data.map(async (k) => (await apiCall(() => client.get(key, 'user_data', k)))['name'] ?? k));
    throw new CliError(`Workflow ${key} needs user data that nothing provides: ${names.join(', ')} (--ignore-missing-data to start anyway)`, 'VALIDATION_FAILED');
  }
  const { files } = await apiCall(() => client.request<{ files: string[] }>('GET', `/workflows/${key}/required_existing_files`));
  const missing: string[] = [];
  if (files.length > 0) {
    const required = new Set(files);
    for (const doc of await apiCall(() => client.list(key, 'files'))) {
      const path = String(doc['path']);
      if (required.has(doc._key) && mtimeOf(path) === null) missing.push(path);
    }
  }
  if (missing.length > 0) {
    throw new CliError(`Workflow ${key} needs input files that do not exist (paths are relative to ${process.cwd()}): ${missing.join(', ')}`, 'VALIDATION_FAILED');
  }
}

/** Run the workflow's startup script, if it has one, through the shell; its output goes to stderr. */
function runStartupScript(config: Doc): void {
  const script = config['workflow_startup_script'];
  if (typeof script !== 'string' || script.trim() === '') return;
  const r = spawnSync('/bin/sh', ['-c', script], { stdio: ['ignore', 2, 2] });
  if (r.error) throw new CliError(`workflow_startup_script could not run: ${r.error.message}`, 'VALIDATION_FAILED');
  if (r.status !== 0) throw new CliError(`workflow_startup_script failed (exit ${r.status ?? r.signal})`, 'VALIDATION_FAILED');
}

/** Add 1 to the workflow's run_id (the first run is 1); returns the new run_id. */
async function bumpRunId(client: WeftClient, workflow: string): Promise<number> {
  const status = await apiCall(() => client.getWorkflowStatus(workflow));
  const runId = (status.run_id ?? 0) + 1;
  await apiCall(() => client.putWorkflowStatus(workflow, { ...status, run_id: runId }));
  return runId;
}

async function postEvent(client: WeftClient, workflow: string, type: string, runId: number, message: string): Promise<void> {
  await apiCall(() =>
    client.add(workflow, 'events', {
      category: 'workflow',
      type,
      message,
      run_id: runId,
      user: safeUser(),
      node_name: hostname(),
      timestamp: Date.now(),
    }),
  );
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? '';
  }
}

export interface StartOptions extends CheckOptions {
  /** Start even when some jobs are done (they run again). */
  force?: boolean;
}

/**
 * Start a workflow (7.5): check it, run the startup script, record input file mtimes, reset the
 * statuses, bump run_id, initialize the jobs, post a `start` event. Returns the new run_id.
 */
export async function startWorkflow(client: WeftClient, workflow: Doc, opts: StartOptions = {}): Promise<number> {
  const key = workflow._key;
  await refuseWhileRunning(client, key, 'start');
  if (!opts.force) {
    const done = await countJobs(client, key, 'done');
    if (done > 0) throw new CliError(`Workflow ${key} has ${done} done job(s); \`weft workflows restart ${key}\` reruns only what changed, or add --force to run everything again`, 'STATE_CONFLICT');
  }
  await checkWorkflow(client, workflow, opts);
  runStartupScript(await apiCall(() => client.getWorkflowConfig(key)));
  await recordFileMtimes(client, key);
  await apiCall(() => client.resetStatus(key));
  await apiCall(() => client.resetJobStatus(key));
  const runId = await bumpRunId(client, key);
  await apiCall(() => client.initializeJobs(key, { only_uninitialized: false }));
  await postEvent(client, key, 'start', runId, `Started workflow ${key} (run ${runId})`);
  return runId;
}

/** Record the current mtime of every file that exists (start only). */
async function recordFileMtimes(client: WeftClient, workflow: string): Promise<void> {
  const files = await apiCall(() => client.list(workflow, 'files'));
  for (const f of files) {
    const mtime = mtimeOf(String(f['path']));
    if (mtime !== null && f['st_mtime'] !== mtime) await apiCall(() => client.put(workflow, 'files', f._key, { ...f, st_mtime: mtime }));
  }
}

export interface RestartOptions extends CheckOptions {
  /** Report what would rerun; change nothing. */
  dryRun?: boolean;
}

export interface RestartReport {
  run_id: number;
  dry_run: boolean;
  /** Files whose mtime differs from the recorded one (path → why). */
  changed_files: { name: string; path: string; change: 'modified' | 'removed' | 'new' }[];
  /** Keys of jobs reset (or, in a dry run, that would be reset), with the reason. */
  reset_jobs: { key: string; name: string; reason: string }[];
  /** After the restart (or, in a dry run, expected): jobs that will run, by key. */
  will_run: { key: string; name: string; status: string }[];
}

type JobDoc = Doc & { name?: string; status?: string };

/**
 * Restart a workflow (7.6 + 6.3): rerun the jobs whose inputs changed (file mtimes, missing
 * outputs, content hash) and everything downstream of them, plus jobs that never finished.
 */
export async function restartWorkflow(client: WeftClient, workflow: Doc, opts: RestartOptions = {}): Promise<RestartReport> {
  const key = workflow._key;
  const dry = opts.dryRun ?? false;
  await refuseWhileRunning(client, key, 'restart');
  await checkWorkflow(client, workflow, opts);
  let runId: number;
  if (!dry) {
    runStartupScript(await apiCall(() => client.getWorkflowConfig(key)));
    runId = await bumpRunId(client, key);
    await apiCall(() => client.resetStatus(key));
  } else {
    runId = (await apiCall(() => client.getWorkflowStatus(key))).run_id;
  }
  const jobs = new Map((await apiCall(() => client.list(key, 'jobs'))).map((j) => [j._key, j as JobDoc]));
  const reset = new Map<string, string>();
  const resetJob = async (jobKey: string, reason: string): Promise<void> => {
    if (reset.has(jobKey)) return;
    const job = jobs.get(jobKey);
    if (!job) return;
    reset.set(jobKey, reason);
    if (dry) {
      const down = await apiCall(() => client.listAll<JobDoc>(`/workflows/${key}/downstream_jobs/${jobKey}`));
      for (const d of down) if (!reset.has(d._key)) reset.set(d._key, `downstream of ${job.name ?? jobKey}`);
      return;
    }
    // Re-read: an earlier reversal may already have reset it (then its _rev changed).
    const fresh = (await apiCall(() => client.get(key, 'jobs', jobKey))) as JobDoc;
    if (fresh.status === 'uninitialized') return;
    await apiCall(() => client.manageStatusChange(key, jobKey, 'uninitialized', fresh._rev, runId));
  };

  // Who reads and who writes each file, in a few paged requests (not one per file or job).
  const readersOf = new Map<string, string[]>();
  for (const row of await joinAll(client, key, 'needs')) pushTo(readersOf, row.to._key, row.from._key);
  const outputsOf = new Map<string, Doc[]>();
  for (const row of await joinAll(client, key, 'produces')) pushTo(outputsOf, row.from._key, row.to);

  // Files whose mtime changed since it was recorded: their readers rerun.
  const changedFiles: RestartReport['changed_files'] = [];
  for (const f of await apiCall(() => client.list(key, 'files'))) {
    const path = String(f['path']);
    const stored = typeof f['st_mtime'] === 'number' ? (f['st_mtime'] as number) : null;
    const now = mtimeOf(path);
    if (stored === now) continue;
    if (stored === null && now === null) continue;
    const change = now === null ? 'removed' : stored === null ? 'new' : 'modified';
    changedFiles.push({ name: String(f['name'] ?? f._key), path, change });
    if (!dry) await apiCall(() => client.put(key, 'files', f._key, { ...f, st_mtime: now }));
    for (const reader of readersOf.get(f._key) ?? []) {
      const status = jobs.get(reader)?.status;
      if (status === 'done' || status === 'canceled') await resetJob(reader, `input ${path} ${change}`);
    }
  }

  // Done jobs whose outputs are gone rerun (every page, not the first).
  for (const job of jobs.values()) {
    if (job.status !== 'done' || reset.has(job._key)) continue;
    const gone = (outputsOf.get(job._key) ?? []).find((o) => mtimeOf(String(o['path'])) === null);
    if (gone) await resetJob(job._key, `output ${String(gone['path'])} missing`);
  }

  // Content hash: command, invocation script, needed file mtimes, consumed user data.
  const changed = await apiCall(() => client.processChangedJobInputs(key, { dry_run: dry }));
  for (const k of changed.reinitialized_jobs) if (!reset.has(k)) reset.set(k, 'inputs changed');

  if (!dry) {
    await apiCall(() => client.initializeJobs(key, { only_uninitialized: true }));
    await postEvent(client, key, 'restart', runId, `Restarted workflow ${key} (run ${runId})`);
  }
  const after = dry ? jobs : new Map((await apiCall(() => client.list(key, 'jobs'))).map((j) => [j._key, j as JobDoc]));
  const willRun = [...after.values()].filter((j) => (dry ? reset.has(j._key) || wouldRun(j.status) : wouldRun(j.status)));
  return {
    run_id: runId,
    dry_run: dry,
    changed_files: changedFiles,
    reset_jobs: [...reset.entries()].map(([k, reason]) => ({ key: k, name: jobs.get(k)?.name ?? k, reason })),
    will_run: willRun.map((j) => ({ key: j._key, name: j.name ?? j._key, status: dry && reset.has(j._key) ? 'uninitialized' : (j.status ?? '') })),
  };
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Every (job, neighbour) pair of an edge out of jobs, all pages. */
async function joinAll(client: WeftClient, workflow: string, edge: 'needs' | 'produces'): Promise<{ from: Doc; to: Doc }[]> {
  const out: { from: Doc; to: Doc }[] = [];
  const limit = 10_000;
  for (let skip = 0; ; skip += limit) {
    // skip and limit page over the base documents (jobs), not the rows.
    const page = await apiCall(() =>
      client.request<ListResponse<{ from: Doc | null; to: Doc | null }>>('POST', `/workflows/${encodeURIComponent(workflow)}/join_by_outbound_edge/jobs/${edge}`, { query: { skip, limit } }),
    );
    for (const row of page.items) if (row.from && row.to) out.push({ from: row.from, to: row.to });
    if (!page.has_more) return out;
  }
}

/** Statuses that a (re)initialized workflow will still run. */
function wouldRun(status: string | undefined): boolean {
  return status === 'uninitialized' || status === 'ready' || status === 'blocked' || status === 'scheduled' || status === 'terminated';
}
