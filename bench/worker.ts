/**
 * End-to-end worker throughput: N no-op jobs (`true`) through a real server (over a SQLite file)
 * and one `weft worker` process on this machine, against the same N commands run by
 * `xargs -P <cores> -n 1 bash -c` in the same run (the raw rate: the same shell per command, no
 * orchestration). The worker offers <cores> CPUs, so both run <cores> jobs at a time.
 *
 *   npm run build && node dist/bench/worker.js [jobs=10000] [cores=availableParallelism] [rounds=3]
 *
 * Rounds: xargs, then Weft, `rounds` times; each round's ratio is Weft's rate over the xargs rate
 * measured just before it, and the result is the median ratio. (The build VM's speed drifts by
 * tens of percent within minutes, and the CPU a job's two output files cost the kernel varies
 * more: one pair of runs is a sample of the moment, the median of three is steadier, and neither
 * side gets the better of two tries.)
 *
 * Every round's files (its SQLite file, its 20,000 job output files) stay until the bench ends.
 * On an ext4 without a journal (this build VM's root file system) the kernel will not reuse an
 * inode freed in the last minute or so (60 s; 360 s while its inode table block is dirty), and
 * each create walks past every such inode (recently_deleted() under find_inode_bit): from a
 * second to about four minutes after 20,000 files were removed, a create cost 0.2-0.74 ms of CPU
 * instead of ~0.02 ms. Removing a round's folder before the next round made each round pay for the
 * last one (rounds 0.60, 0.48, 0.36). So the bench keeps them until it exits, waits before its
 * first round until the window has passed (6 minutes after its own last removal, or after a probe
 * found creates dear; printed: a run right after another run of this bench or after the tests
 * waits; see waitForNormalCreates), and each round prints what a create cost just before it.
 *
 * Prints both rates (jobs per second, wall clock from the worker's start to its exit), the ratio (the
 * goal is at least 0.5), and where the CPU went per job, from /proc (Linux):
 * - server: this process (it runs nothing else while the worker runs);
 * - worker: the worker's own utime+stime (its last /proc/<pid>/stat sample, taken every 50 ms);
 * - launcher+jobs: everything else the worker started (this process's cutime+cstime once the worker
 *   is reaped, less the worker's own), split as the launcher's own CPU and its reaped jobs'
 *   (its last sample);
 * - xargs: xargs and its `bash -c` children (this process's cutime+cstime across the run).
 *
 * WEFT_BENCH_WORKER_PROF=dir profiles the worker child (node --cpu-prof into dir).
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WeftClient } from '../client/index.js';
import { startServer } from '../server/main.js';

const jobs = Number(process.argv[2] ?? 10_000);
const cores = Number(process.argv[3] ?? availableParallelism());
const rounds = Math.max(1, Number(process.argv[4] ?? 3));

const CLK_TCK = 100; // USER_HZ: 100 on every Linux that Node runs on

/** utime+stime and cutime+cstime (ms) of a process from /proc/<pid>/stat, or null when it is gone (or not Linux). */
function procCpu(pid: number | 'self'): { own: number; children: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3; utime 14, stime 15, cutime 16, cstime 17.
    const ms = (i: number): number => (Number(f[i]) * 1000) / CLK_TCK;
    return { own: ms(11) + ms(12), children: ms(13) + ms(14) };
  } catch {
    return null;
  }
}

/** The child pids of `pid` (Linux 3.5+). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function xargsRate(n: number): { rate: number; cpuMsPerJob: number | null } {
  const input = 'true\n'.repeat(n);
  const c0 = procCpu('self');
  const t0 = performance.now();
  execFileSync('xargs', ['-d', '\n', '-P', String(cores), '-n', '1', 'bash', '-c'], { input, stdio: ['pipe', 'ignore', 'inherit'] });
  const rate = n / ((performance.now() - t0) / 1000);
  const c1 = procCpu('self');
  return { rate, cpuMsPerJob: c0 && c1 ? (c1.children - c0.children) / n : null };
}

interface Split {
  worker: number;
  launcher: number;
  /** The worker's other helpers (the orphan reaper). */
  helpers: number;
  jobs: number;
}

/**
 * The CPU (ms) one empty-file create costs in `dir` now: 1,000 creates in a new folder there, kept
 * until the bench ends (removing them would slow what comes next, see the top of this file).
 */
function createCost(dir: string, n = 1000): number {
  mkdirSync(dir);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) closeSync(openSync(join(dir, `f${i}`), 'a'));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / n;
}

/** A create costs more than this (ms of CPU) only in the minutes after a mass delete (see the top; normally 0.02-0.04). */
const SLOW_CREATE_MS = 0.06;
/** How long an inode freed on such a file system makes creates dear: RECENTCY_MIN + RECENTCY_DIRTY. */
const RECENT_S = 360;
/** Where this bench notes when it last removed its files (ms since the epoch). */
const REMOVED_MARK = join(tmpdir(), 'weft-bench-worker.removed');

/**
 * Before the first round: wait until file creates cost what they normally do, so what was removed
 * just before (by the last run of this bench, whose files go at its exit, or by anything else, the
 * tests for one) is not measured as Weft's cost. A probe cannot tell when that is over: each new
 * folder lands in one block group, and only some groups hold the freed inodes (a run that waited
 * until probes looked cheap found creates dear again in its later rounds). So the bench waits out
 * the whole window: until RECENT_S after its own last removal (REMOVED_MARK), or RECENT_S from a
 * probe (1,000 creates in 4 new folders) that found creates dear. Prints why and how long.
 */
async function waitForNormalCreates(base: string): Promise<void> {
  const t0 = Date.now();
  // An inode freed in this very second does not count as recent yet (dtime must be before now):
  // right after a delete, creates are cheap for a moment and dear a second later.
  await new Promise((r) => setTimeout(r, 2_000));
  let until = 0;
  let why = '';
  try {
    const removed = Number(readFileSync(REMOVED_MARK, 'utf8'));
    if (removed + RECENT_S * 1000 > Date.now()) {
      until = removed + RECENT_S * 1000;
      why = `this bench removed its files ${((Date.now() - removed) / 1000).toFixed(0)} s ago`;
    }
  } catch {
    // no mark: no earlier run here
  }
  /** The dearest create of 250 in each of 4 new folders (each may land in another block group). */
  const probe = (name: string): number => Math.max(...[0, 1, 2, 3].map((d) => createCost(join(base, `${name}-${d}`), 250)));
  const cost = probe('wait');
  if (cost > SLOW_CREATE_MS) {
    until = Date.now() + RECENT_S * 1000;
    why = `a file create in ${tmpdir()} cost up to ${cost.toFixed(3)} ms of CPU (normally 0.02-0.04: files were removed there in the last minutes)`;
  }
  if (until > Date.now()) {
    console.log(`${why}; waiting ${((until - Date.now()) / 1000).toFixed(0)} s, until the kernel reuses freed inodes without a walk`);
    await new Promise((r) => setTimeout(r, until - Date.now()));
    const after = probe('waited');
    console.log(`waited ${((Date.now() - t0) / 1000).toFixed(0)} s; a create now costs up to ${after.toFixed(3)} ms`);
  }
}

async function workerRate(n: number, dir: string): Promise<{ rate: number; seconds: number; serverCpuMsPerJob: number; split: Split | null }> {
  mkdirSync(dir);
  const server = await startServer({ flags: { host: '127.0.0.1', port: 0, db: join(dir, 'weft.db'), store: 'sqlite', logLevel: 'silent' }, env: {} });
  try {
    const client = new WeftClient(server.url);
    const wf = (await client.createWorkflowFromSpec({ name: 'bench-worker', jobs: Array.from({ length: n }, (_, i) => ({ name: `noop_${i}`, command: 'true' })) }))._key;
    const st = await client.getWorkflowStatus(wf);
    await client.putWorkflowStatus(wf, { ...st, run_id: st.run_id + 1 });
    await client.initializeJobs(wf);
    const cli = resolve(import.meta.dirname, '../cli/main.js');
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const prof = process.env['WEFT_BENCH_WORKER_PROF'];
    const c0 = procCpu('self');
    const child = spawn(process.execPath, [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), cli, 'worker', '--url', server.url, '--workflow', wf, '--output-dir', join(dir, 'out'), '--num-cpus', String(cores), '--memory-gb', '8', '--log-level', 'warn'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    // Sample the worker and its launcher (the child of the worker whose own children are the jobs).
    let workerLast: { own: number; children: number } | null = null;
    const launcherLast = new Map<number, { own: number; children: number }>();
    const sampler = setInterval(() => {
      if (child.pid === undefined) return;
      const w = procCpu(child.pid);
      if (!w) return;
      workerLast = w;
      for (const pid of childPids(child.pid)) {
        const c = procCpu(pid);
        if (c) launcherLast.set(pid, c);
      }
    }, 50);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearInterval(sampler);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const c1 = procCpu('self');
    let split: Split | null = null;
    if (c0 && c1 && workerLast) {
      const total = c1.children - c0.children;
      const worker = (workerLast as { own: number }).own;
      // The launcher is the child with the most reaped CPU (the other is the orphan reaper).
      const [launcher = { own: 0, children: 0 }, ...others] = [...launcherLast.values()].sort((a, b) => b.children - a.children);
      const helpers = others.reduce((a, c) => a + c.own + c.children, 0);
      const jobs = Math.max(0, total - worker - launcher.own - helpers);
      split = { worker: worker / n, launcher: launcher.own / n, helpers: helpers / n, jobs: jobs / n };
    }
    if (code !== 0) throw new Error(`the worker exited with ${code}`);
    const done = (await client.list(wf, 'results', { return_code: 0 })).length;
    if (done !== n) throw new Error(`expected ${n} results with return code 0, found ${done}`);
    return { rate: n / seconds, seconds, serverCpuMsPerJob: (cpu.user + cpu.system) / 1000 / n, split };
  } finally {
    await server.close();
  }
}

const ms = (x: number): string => x.toFixed(2);
console.log(`jobs=${jobs} cores=${cores} rounds=${rounds}`);
const base = mkdtempSync(join(tmpdir(), 'weft-bench-worker-'));
process.on('exit', () => {
  rmSync(base, { recursive: true, force: true });
  writeFileSync(REMOVED_MARK, String(Date.now()));
});
// Ctrl-C: exit through the handler above, so 60,000 files do not stay behind.
process.once('SIGINT', () => process.exit(130));
await waitForNormalCreates(base);
const results: { x: ReturnType<typeof xargsRate>; w: Awaited<ReturnType<typeof workerRate>>; ratio: number }[] = [];
for (let r = 1; r <= rounds; r++) {
  const x = xargsRate(jobs);
  const create = createCost(join(base, `probe-${r}`));
  const w = await workerRate(jobs, join(base, `round-${r}`));
  const ratio = w.rate / x.rate;
  results.push({ x, w, ratio });
  const xcpu = x.cpuMsPerJob !== null ? `, CPU ${ms(x.cpuMsPerJob)} ms per job` : '';
  console.log(`round ${r}: xargs -P ${cores} ${x.rate.toFixed(0)} jobs/s${xcpu}; weft worker ${w.rate.toFixed(0)} jobs/s (${w.seconds.toFixed(1)} s); ratio ${ratio.toFixed(2)}`);
  console.log(`  an empty-file create in ${tmpdir()} cost ${create.toFixed(3)} ms of CPU just before this round's Weft run (each job creates two)`);
  const s = w.split;
  if (s) {
    const total = w.serverCpuMsPerJob + s.worker + s.launcher + s.helpers + s.jobs;
    console.log(`  CPU per job: server ${ms(w.serverCpuMsPerJob)} + worker ${ms(s.worker)} + launcher ${ms(s.launcher)} + reaper ${ms(s.helpers)} + jobs ${ms(s.jobs)} = ${ms(total)} ms (${cores} cores allow ${((cores * 1000) / total).toFixed(0)} jobs/s)`);
  }
}
const sorted = [...results].sort((a, b) => a.ratio - b.ratio);
const median = sorted[(sorted.length - 1) >> 1]!;
console.log(`xargs -P ${cores}: ${median.x.rate.toFixed(0)} jobs/s; weft worker: ${median.w.rate.toFixed(0)} jobs/s (the median round; server in this process, worker a child process)`);
console.log(`server CPU per job: ${median.w.serverCpuMsPerJob.toFixed(2)} ms (claim + start + complete; the server alone could not go past ${(1000 / median.w.serverCpuMsPerJob).toFixed(0)} jobs/s on one core)`);
console.log(`ratio: ${median.ratio.toFixed(2)} (median of ${rounds}; rounds ${results.map((r) => r.ratio.toFixed(2)).join(', ')}) (goal >= 0.5)`);
