/**
 * Benchmark of the engine views on a large workflow, through the HTTP API of a real server over a
 * SQLite file: change detection (dry run), DOT graph, the workflow as a spec, a page of job
 * specifications, a join. The baseline, measured in the same run, is listing every job of the
 * workflow (GET /workflows/{key}/jobs): the least any whole-workflow view must do.
 *
 *   npm run build && node dist/bench/views.js [jobs=50000]
 *
 * Prints one line per view: milliseconds (best of 3) and the ratio to the baseline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeJobInputHashes } from '../graph/engine/input-hash.js';
import { insertJobs } from '../graph/engine/job-insert.js';
import { createWorkflow } from '../graph/engine/workflow-create.js';
import type { GraphStore } from '../graph/store/port.js';
import { startServer } from '../server/main.js';

const STAGES = 10;

async function build(store: GraphStore, jobs: number): Promise<string> {
  const wf = (await createWorkflow(store, { name: 'bench-views', user: 'bench' }))._key;
  const perStage = Math.ceil(jobs / STAGES);
  await store.transaction(async (tx) => {
    const ud = await tx.insert('user_data', wf, { name: 'params', data: { alpha: 1, beta: [1, 2, 3] } });
    let previous: string[] = (await tx.insertMany('files', wf, Array.from({ length: perStage }, (_, i) => ({ name: `in_${i}`, path: `in/${i}`, st_mtime: 1 })))).map((f) => f._id);
    for (let s = 0; s < STAGES; s++) {
      const outs = (await tx.insertMany('files', wf, Array.from({ length: perStage }, (_, i) => ({ name: `f_${s}_${i}`, path: `out/${s}/${i}`, st_mtime: 2 })))).map((f) => f._id);
      const bodies = Array.from({ length: perStage }, (_, i) => ({
        name: `job_${s}_${i}`,
        command: `work --stage ${s} --item ${i}`,
        status: 'done',
        input_files: [previous[i]!],
        output_files: [outs[i]!],
        input_user_data: i % 10 === 0 ? [ud._id] : [],
      }));
      await insertJobs(tx, wf, bodies);
      previous = outs;
    }
  });
  const all = (await store.find('jobs', wf)).items;
  const hashes = await computeJobInputHashes(store, wf, all);
  await store.updateMany('jobs', wf, all.map((j) => ({ key: j._key, patch: { internal: { hash: hashes.get(j._id) } } })));
  return wf;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

async function main(): Promise<void> {
  const jobs = Number(process.argv[2] ?? 50_000);
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-views-'));
  const server = await startServer({ flags: { host: '127.0.0.1', port: 0, db: join(dir, 'weft.db'), store: 'sqlite', logLevel: 'warn' }, env: {} });
  try {
    const t0 = performance.now();
    const wf = await build(server.store, jobs);
    console.log(`workflow of ${jobs} jobs in ${STAGES} stages built in ${(performance.now() - t0).toFixed(0)} ms`);
    const get = async (path: string, method = 'GET'): Promise<unknown> => {
      const res = await fetch(`${server.url}${path}`, { method });
      if (res.status !== 200) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
      return res.json();
    };
    const baseline = await time(() => get(`/workflows/${wf}/jobs`));
    console.log(`baseline GET /jobs (all ${jobs})                 ${baseline.toFixed(1).padStart(9)} ms   1.00x`);
    const cases: [string, () => Promise<unknown>][] = [
      ['process_changed_job_inputs?dry_run=true', async () => {
        const body = (await get(`/workflows/${wf}/process_changed_job_inputs?dry_run=true`, 'POST')) as { reinitialized_jobs: string[] };
        if (body.reinitialized_jobs.length !== 0) throw new Error('expected no changed job');
      }],
      ['dot_graph/job_file_dependencies', () => get(`/workflows/${wf}/dot_graph/job_file_dependencies`)],
      ['dot_graph/job_job_dependencies', () => get(`/workflows/${wf}/dot_graph/job_job_dependencies`)],
      ['GET /workflow_specifications/{key}', () => get(`/workflow_specifications/${wf}`)],
      ['job_specifications (page of 1000)', () => get(`/workflows/${wf}/job_specifications?skip=${Math.floor(jobs / 2)}&limit=1000`)],
      ['join_by_outbound_edge/jobs/needs', () => get(`/workflows/${wf}/join_by_outbound_edge/jobs/needs`, 'POST')],
      ['required_existing_files', () => get(`/workflows/${wf}/required_existing_files`)],
    ];
    for (const [name, fn] of cases) {
      const ms = await time(fn);
      console.log(`${name.padEnd(46)} ${ms.toFixed(1).padStart(9)} ms ${(ms / baseline).toFixed(2).padStart(6)}x`);
    }
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
