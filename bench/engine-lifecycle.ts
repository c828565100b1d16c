/**
 * Job lifecycles per second through the HTTP API, with no processes, measured two ways in one
 * run, each on a fresh server:
 * - per transition (what a Torc client does): concurrent clients each claim jobs
 *   (prepare_jobs_for_submission with their compute node), then start_job and complete_job each
 *   one;
 * - batched (Weft extensions): each client claims and starts up to --per-claim jobs in one call
 *   (start_run_id), then reports them all with one complete_jobs that also claims and starts the
 *   next ones.
 * Every completion unblocks the next job of its chain (readiness by counting, in the
 * completion's transaction). Goal: at least 3,000 lifecycles/s on 2 cores.
 *
 * The server is a real `weft server` child process over a SQLite file; the clients run in this
 * process (keep-alive HTTP). The workflow is created from one spec (chains of 4 jobs, so three of
 * every four completions unblock a job) and initialized over HTTP.
 *
 * Baseline, measured in the same run: the same lifecycles as plain better-sqlite3 row updates on
 * one table (WAL, synchronous NORMAL, prepared statements), one transaction per operation:
 * claim (1 UPDATE), start (1 UPDATE), complete + unblock (2 UPDATEs): 3 transactions and 4 row
 * updates per job, no HTTP, no JSON documents read. The ratio is Weft's rate over that rate.
 *
 *   npm run build && node dist/bench/engine-lifecycle.js [--jobs 20000] [--clients 16] [--per-claim 4] [--mode per-transition|batched]
 */
import { loadavg } from 'node:os';
import { call, fmt, numberArg, ok, ownCpuSeconds, plainDatabase, plainJobBody, startServerProcess } from './engine-common.js';

const CHAIN = 4;

function chainSpec(jobs: number): Record<string, unknown> {
  const list: Record<string, unknown>[] = [];
  for (let i = 0; i < jobs; i++) {
    const name = `c${Math.floor(i / CHAIN)}_${i % CHAIN}`;
    list.push(i % CHAIN === 0 ? { name, command: 'true' } : { name, command: 'true', blocked_by: [`c${Math.floor(i / CHAIN)}_${(i % CHAIN) - 1}`] });
  }
  return { name: 'bench-lifecycle', resource_requirements: [{ name: 'tiny', num_cpus: 1, memory: '1m', runtime: 'PT1M' }], jobs: list.map((j) => ({ ...j, resource_requirements: 'tiny' })) };
}

export type Mode = 'per-transition' | 'batched';

export interface WeftRun {
  rate: number;
  seconds: number;
  /** HTTP requests made during the measurement (claims, starts, completions, empty polls). */
  requests: number;
  serverCpuMs: number;
}

type Held = { _key: string; _rev: string };

/**
 * Weft through HTTP: lifecycles per second, in one of two ways.
 * - per-transition (any Torc client): prepare_jobs_for_submission (up to perClaim jobs), then
 *   start_job and complete_job for each job: 2 + 1/perClaim requests per lifecycle.
 * - batched (Weft extensions): a claim that also starts (start_run_id), then one complete_jobs
 *   reporting every held job that also claims and starts the next ones: about 1/perClaim
 *   requests per lifecycle.
 */
export async function measureWeft(jobs: number, clients: number, perClaim: number, mode: Mode = 'per-transition'): Promise<WeftRun> {
  const server = await startServerProcess();
  try {
    const base = server.url;
    const wf = (await ok(`${base}/workflow_specifications`, 'POST', chainSpec(jobs)))._key as string;
    await ok(`${base}/workflows/${wf}/initialize_jobs`, 'POST');
    const runId = (await ok(`${base}/workflows/${wf}/status`, 'GET')).run_id as number;
    const nodes: string[] = [];
    for (let c = 0; c < clients; c++) {
      nodes.push((await ok(`${base}/workflows/${wf}/compute_nodes`, 'POST', { hostname: `bench${c}`, pid: c, start_time: new Date().toISOString(), resources: { num_cpus: perClaim, memory_gb: 64 } }))._key);
    }
    let done = 0;
    let requests = 0;
    const worker = { num_cpus: perClaim, memory_gb: 64, num_gpus: 0, num_nodes: 1, time_limit: null };
    const resultOf = (key: string) => ({ job_key: key, run_id: runId, return_code: 0, exec_time_minutes: 0, completion_time: new Date().toISOString(), status: 'done' });
    const pause = () => new Promise((r) => setTimeout(r, 2));

    async function perTransition(node: string): Promise<void> {
      while (done < jobs) {
        const got = (await ok(`${base}/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&limit=${perClaim}`, 'POST', worker)).jobs as Held[];
        requests++;
        if (got.length === 0) {
          await pause();
          continue;
        }
        for (const job of got) {
          const started = await ok(`${base}/workflows/${wf}/jobs/${job._key}/start_job/${job._rev}/${runId}/${node}`, 'PUT');
          const r = await call(`${base}/workflows/${wf}/jobs/${job._key}/complete_job/done/${started._rev}/${runId}/${node}`, 'POST', resultOf(job._key));
          requests += 2;
          if (r.status !== 200) throw new Error(`complete_job → ${r.status} ${JSON.stringify(r.body)}`);
          done++;
        }
      }
    }

    async function batched(node: string): Promise<void> {
      const claim = { compute_node_key: node, resources: worker, limit: perClaim, start_run_id: runId };
      let held: Held[] = [];
      for (;;) {
        if (held.length === 0) {
          if (done >= jobs) return;
          held = (await ok(`${base}/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${node}&limit=${perClaim}&start_run_id=${runId}`, 'POST', worker)).jobs as Held[];
          requests++;
          if (held.length === 0) await pause();
          continue;
        }
        const completions = held.map((j) => ({ job_key: j._key, status: 'done', rev: j._rev, run_id: runId, compute_node_key: node, result: resultOf(j._key) }));
        const r = await call(`${base}/workflows/${wf}/complete_jobs`, 'POST', { completions, claim });
        requests++;
        const body = r.body as { items?: { status: number }[]; claimed?: { jobs: Held[] } };
        if (r.status !== 200 || !body.items?.every((i) => i.status === 200)) throw new Error(`complete_jobs → ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
        done += held.length;
        held = body.claimed?.jobs ?? [];
      }
    }

    const cpu0 = server.cpuSeconds();
    const t0 = performance.now();
    await Promise.all(nodes.map((node) => (mode === 'batched' ? batched(node) : perTransition(node))));
    const seconds = (performance.now() - t0) / 1000;
    const serverCpuMs = ((server.cpuSeconds() - cpu0) * 1000) / jobs;
    const complete = (await ok(`${base}/workflows/${wf}/is_complete`, 'GET')).is_complete;
    if (!complete) throw new Error('the workflow is not complete after every lifecycle');
    return { rate: jobs / seconds, seconds, requests, serverCpuMs };
  } finally {
    await server.stop();
  }
}

/** The baseline: 3 transactions and 4 plain row updates per lifecycle. */
export function measureBaseline(jobs: number): { rate: number; seconds: number; cpuMs: number } {
  const plain = plainDatabase();
  try {
    const db = plain.db;
    db.exec('CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, body TEXT NOT NULL)');
    db.exec('CREATE INDEX jobs_status ON jobs (status)');
    const insert = db.prepare('INSERT INTO jobs (id, status, body) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < jobs; i++) insert.run(i, i % CHAIN === 0 ? 'ready' : 'blocked', plainJobBody(i, 'ready'));
    })();
    const set = db.prepare('UPDATE jobs SET status = ? WHERE id = ?');
    const claim = db.transaction((id: number) => set.run('submitted_pending', id));
    const start = db.transaction((id: number) => set.run('submitted', id));
    const complete = db.transaction((id: number) => {
      set.run('done', id);
      if (id % CHAIN !== CHAIN - 1 && id + 1 < jobs) set.run('ready', id + 1);
    });
    const cpu0 = ownCpuSeconds();
    const t0 = performance.now();
    for (let i = 0; i < jobs; i++) {
      claim(i);
      start(i);
      complete(i);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rate: jobs / seconds, seconds, cpuMs: ((ownCpuSeconds() - cpu0) * 1000) / jobs };
  } finally {
    plain.close();
  }
}

export async function main(): Promise<void> {
  const jobs = numberArg('jobs', 20_000);
  const clients = numberArg('clients', 16);
  const perClaim = numberArg('per-claim', 4);
  console.log(`== job lifecycles through HTTP (${jobs} jobs in chains of ${CHAIN}, ${clients} concurrent clients, up to ${perClaim} jobs per claim; load average ${loadavg()[0]!.toFixed(1)})`);
  const base = measureBaseline(jobs);
  console.log(`baseline plain SQLite (3 tx, 4 row updates per job): ${fmt(base.rate, 0).padStart(9)} lifecycles/s  (${fmt(base.seconds, 2)} s; CPU ${fmt(base.cpuMs, 3)} ms per lifecycle)`);
  const modes: [Mode, string][] = [
    ['per-transition', 'weft HTTP per transition (claim/start/complete):'],
    ['batched', 'weft HTTP batched (claim+start, complete_jobs): '],
  ];
  const only = process.argv.includes('--mode') ? process.argv[process.argv.indexOf('--mode') + 1] : undefined;
  for (const [mode, label] of modes) {
    if (only !== undefined && only !== mode) continue;
    const weft = await measureWeft(jobs, clients, perClaim, mode);
    console.log(
      `${label}${fmt(weft.rate, 0).padStart(9)} lifecycles/s  (${fmt(weft.seconds, 2)} s, ${fmt(weft.requests / jobs, 2)} requests per lifecycle; server CPU ${fmt(weft.serverCpuMs, 3)} ms per lifecycle)` +
        `   ratio to baseline ${(weft.rate / base.rate).toFixed(3)}x (CPU ${(weft.serverCpuMs / base.cpuMs).toFixed(1)}x)`,
    );
    const perCore = 1000 / weft.serverCpuMs;
    console.log(`  goal ≥ 3,000 lifecycles/s on 2 cores (${mode}): measured ${weft.rate >= 3000 ? 'met' : 'MISSED'}; the server's CPU allows at most ${fmt(perCore, 0)}/s on one dedicated core (${perCore >= 3000 ? 'met' : 'MISSED'})`);
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
