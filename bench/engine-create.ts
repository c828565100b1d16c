/**
 * Create and initialize a large workflow from one spec, through the HTTP API of a real
 * `weft server` child process over a SQLite file: 10 stages of N/10 jobs, with a barrier job
 * between stages (the barrier of stage s is blocked by every job of stage s and blocks every
 * job of stage s+1), so N + 10 jobs and about 2N blocks edges. Goals: 100,000 jobs created and
 * initialized in under 10 s; 1,000,000 jobs (`--jobs 1000000`) with the server's peak RSS
 * under 2 GB (read from /proc/<pid>/status VmHWM, the kernel's high-water mark).
 *
 * Baseline, measured in the same run: the same rows written with plain better-sqlite3 (WAL,
 * synchronous NORMAL, prepared statements): every job as a JSON row and every blocks edge as a
 * row with two indexed ends, in one transaction, then one UPDATE of every job's status in a
 * second transaction (what initialization must at least do). No HTTP, no parsing, no checks.
 * The ratio is Weft's time over the baseline's (lower is better).
 *
 *   npm run build && node dist/bench/engine-create.js [--jobs 100000]
 */
import { loadavg } from 'node:os';
import { fmt, numberArg, ownCpuSeconds, ok, plainDatabase, plainJobBody, startServerProcess } from './engine-common.js';

const STAGES = 10;

/** The spec: stage s has jobs s_<i>; barrier_<s> is blocked by all of them and blocks stage s+1. */
export function stagedSpec(jobs: number): Record<string, unknown> {
  const perStage = Math.ceil(jobs / STAGES);
  const list: Record<string, unknown>[] = [];
  for (let s = 0; s < STAGES; s++) {
    const names: string[] = [];
    for (let i = 0; i < perStage; i++) {
      const name = `s${s}_${i}`;
      names.push(name);
      list.push(s === 0 ? { name, command: `work ${s} ${i}` } : { name, command: `work ${s} ${i}`, blocked_by: [`barrier_${s - 1}`] });
    }
    list.push({ name: `barrier_${s}`, command: 'true', blocked_by: names });
  }
  return { name: `bench-create-${jobs}`, description: 'staged workflow with barriers', jobs: list };
}

export interface CreateFigures {
  jobs: number;
  createSeconds: number;
  initializeSeconds: number;
  peakRssBytes: number;
  specBytes: number;
  /** Server CPU seconds for create + initialize. */
  serverCpuSeconds: number;
}

export async function measureWeft(jobs: number): Promise<CreateFigures> {
  const bodyMb = Math.max(64, Math.ceil(jobs / 5_000));
  const server = await startServerProcess(['--body-limit-mb', String(bodyMb)]);
  try {
    const base = server.url;
    const text = JSON.stringify(stagedSpec(jobs));
    const cpu0 = server.cpuSeconds();
    const t0 = performance.now();
    const wf = (await ok(`${base}/workflow_specifications`, 'POST', text))._key as string;
    const t1 = performance.now();
    await ok(`${base}/workflows/${wf}/initialize_jobs`, 'POST');
    const t2 = performance.now();
    const serverCpuSeconds = server.cpuSeconds() - cpu0;
    const perStage = Math.ceil(jobs / STAGES);
    const ready = (await ok(`${base}/workflows/${wf}/jobs/find_by_status/ready?limit=1`, 'GET')).total_count;
    if (ready !== perStage) throw new Error(`expected ${perStage} ready jobs (stage 0) after initialization, got ${ready}`);
    return { jobs: perStage * STAGES + STAGES, createSeconds: (t1 - t0) / 1000, initializeSeconds: (t2 - t1) / 1000, peakRssBytes: server.peakRss(), specBytes: Buffer.byteLength(text), serverCpuSeconds };
  } finally {
    await server.stop();
  }
}

export function measureBaseline(jobs: number): { seconds: number; cpuSeconds: number } {
  const plain = plainDatabase();
  try {
    const db = plain.db;
    db.exec('CREATE TABLE jobs (id INTEGER PRIMARY KEY, workflow TEXT, status TEXT GENERATED ALWAYS AS (json_extract(body, \'$.status\')) VIRTUAL, body TEXT NOT NULL)');
    db.exec('CREATE INDEX jobs_status ON jobs (workflow, status)');
    db.exec('CREATE TABLE blocks (id INTEGER PRIMARY KEY, workflow TEXT, efrom TEXT NOT NULL, eto TEXT NOT NULL, body TEXT NOT NULL)');
    db.exec('CREATE INDEX blocks_from ON blocks (efrom)');
    db.exec('CREATE INDEX blocks_to ON blocks (eto)');
    const perStage = Math.ceil(jobs / STAGES);
    const insertJob = db.prepare('INSERT INTO jobs (id, workflow, body) VALUES (?, ?, ?)');
    const insertEdge = db.prepare('INSERT INTO blocks (workflow, efrom, eto, body) VALUES (?, ?, ?, ?)');
    const setStatus = db.prepare("UPDATE jobs SET body = json_set(body, '$.status', ?) WHERE id = ?");
    const cpu0 = ownCpuSeconds();
    const t0 = performance.now();
    db.transaction(() => {
      let id = 0;
      let previousBarrier = -1;
      for (let s = 0; s < STAGES; s++) {
        const first = id;
        for (let i = 0; i < perStage; i++, id++) {
          insertJob.run(id, 'w', plainJobBody(id, 'uninitialized'));
          if (previousBarrier >= 0) insertEdge.run('w', `jobs/${previousBarrier}`, `jobs/${id}`, '{}');
        }
        const barrier = id++;
        insertJob.run(barrier, 'w', plainJobBody(barrier, 'uninitialized'));
        for (let j = first; j < barrier; j++) insertEdge.run('w', `jobs/${j}`, `jobs/${barrier}`, '{}');
        previousBarrier = barrier;
      }
    })();
    db.transaction(() => {
      const total = perStage * STAGES + STAGES;
      for (let id = 0; id < total; id++) setStatus.run(id < perStage ? 'ready' : 'blocked', id);
    })();
    return { seconds: (performance.now() - t0) / 1000, cpuSeconds: ownCpuSeconds() - cpu0 };
  } finally {
    plain.close();
  }
}

export async function main(): Promise<void> {
  const jobs = numberArg('jobs', 100_000);
  console.log(`== create + initialize a workflow of ${jobs} jobs in ${STAGES} stages with barriers, from one spec; load average ${loadavg()[0]!.toFixed(1)}`);
  const base = measureBaseline(jobs);
  console.log(`baseline plain SQLite rows (jobs + edges + status update): ${fmt(base.seconds, 2).padStart(8)} s   (CPU ${fmt(base.cpuSeconds, 2)} s)`);
  const w = await measureWeft(jobs);
  const total = w.createSeconds + w.initializeSeconds;
  console.log(`weft POST /workflow_specifications (${fmt(w.specBytes / 2 ** 20)} MiB spec):     ${fmt(w.createSeconds, 2).padStart(8)} s`);
  console.log(`weft POST initialize_jobs:                                ${fmt(w.initializeSeconds, 2).padStart(8)} s`);
  console.log(
    `weft total for ${w.jobs} jobs:                             ${fmt(total, 2).padStart(8)} s   (server CPU ${fmt(w.serverCpuSeconds, 2)} s)   ratio to baseline ${(total / base.seconds).toFixed(2)}x (CPU ${(w.serverCpuSeconds / base.cpuSeconds).toFixed(2)}x)` +
      (jobs <= 100_000 ? `   goal < 10 s: ${total < 10 ? 'met' : 'MISSED'} (server CPU ${w.serverCpuSeconds < 10 ? 'within' : 'over'} 10 s)` : ''),
  );
  console.log(`weft server peak RSS:                                     ${fmt(w.peakRssBytes / 2 ** 20, 0).padStart(8)} MiB` + (jobs >= 1_000_000 ? `   goal < 2 GB: ${w.peakRssBytes < 2e9 ? 'met' : 'MISSED'}` : ''));
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
