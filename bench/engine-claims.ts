/**
 * Claim latency: 64 concurrent claimers against 100,000 ready jobs, through the HTTP API of a real
 * `weft server` child process over a SQLite file. Each claimer is a worker of 4 CPUs / 16 GiB that
 * calls prepare_jobs_for_submission with its compute node, over and over (a closed loop: it asks
 * again as soon as it has its answer, which is the worst case for the server: 64 claims always in
 * flight). The jobs (1 CPU, 1 MiB, 1 min) come from one spec, initialized over HTTP; the run stops
 * after `--claims` claims (default 18,000, about 4-5 s: a shorter window is decided by whether one
 * pause of the server landed in it; with the paced phase 90,000 of the 100,000 jobs get claimed,
 * and a phase that runs out of ready jobs stops the bench). Goal: p99 under 20 ms.
 *
 * With a closed loop, latency is queueing: one server thread serves the 64 in turn, so the mean
 * is 64 / throughput (Little's law), and p99 is close to it only if the server serves them first
 * come first served (see runTransaction in graph/store/sqlite-store.ts). A second phase measures the latency of claims that do not queue: the 64
 * claimers each claim once per `--interval-ms` (default 100 ms, 640 claims/s offered), which is
 * how workers poll while they run what they claimed.
 *
 * Baseline, measured in the same run: the same claim (4 ready jobs, lowest key first, marked
 * submitted_pending) with plain better-sqlite3 on one table with an index on (status, id), one
 * transaction per claim, called in-process one after another. The ratios are Weft's latencies over
 * the baseline's.
 *
 * Before measuring, the bench waits for the server to go quiet after the setup (its checkpoint
 * thread copies the WAL the 100,000 inserts left) and runs `--warmup` claims (default 5,000, closed
 * loop, not counted, out of jobs created on top of `--jobs`), so the measured runs start in a
 * steady state with `--jobs` ready. With 1,000 the first ~0.4 s of the measured run was still
 * slow (~300 claims per 100 ms instead of ~450: code being optimized, WAL being copied), and that
 * alone decided the p99.
 *
 * The claimers share this process, so its own CPU per claim and event-loop delay are printed too:
 * when it is short of CPU, answers wait to be read and that wait counts as latency. `--client raw`
 * (default) sends each claim over a minimal keep-alive HTTP/1.1 connection per claimer
 * (RawHttpConnection); `--client node-http` uses node:http's keep-alive agent.
 *
 *   npm run build && node dist/bench/engine-claims.js [--jobs 100000] [--claimers 64] [--claims 18000] [--interval-ms 100] [--client raw|node-http] [--warmup 5000] [--trace FILE]
 */
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RawHttpConnection, call, type ServerProcess, fmt, numberArg, ok, ownCpuSeconds, plainDatabase, plainJobBody, quantile, startServerProcess } from './engine-common.js';

const PER_CLAIM = 4;

interface Latencies {
  p50: number;
  p99: number;
  max: number;
  throughput: number;
  jobs: number;
  /** CPU ms per claim: the server's (Weft) or this process's (baseline). */
  cpuMs: number;
  /**
   * Weft only: this process's CPU ms per claim (the 64 HTTP claimers and their JSON parsing) and
   * the p99 of its event-loop delay (ms). A client that is short of CPU answers late, and that
   * lateness would count as the server's latency.
   */
  clientCpuMs?: number;
  clientLoopP99?: number;
}

function summarize(ms: number[], seconds: number, jobs: number, cpuSeconds: number): Latencies {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN, throughput: ms.length / seconds, jobs, cpuMs: (cpuSeconds * 1000) / ms.length };
}

export async function measureWeft(jobs: number, claimers: number, claims: number, intervalMs: number, client: 'raw' | 'node-http' = 'raw', warmup = 1_000, traceFile?: string): Promise<{ closed: Latencies; paced: Latencies }> {
  const server = await startServerProcess();
  try {
    const base = server.url;
    const spec = {
      name: 'bench-claims',
      resource_requirements: [{ name: 'one', num_cpus: 1, memory: '1m', runtime: 'PT1M' }],
      // The warm-up's claims come out of extra jobs: `jobs` are ready when the measured runs start.
      jobs: Array.from({ length: jobs + warmupClaims(warmup, claimers) * PER_CLAIM }, (_, i) => ({ name: `j${i}`, command: 'true', resource_requirements: 'one' })),
    };
    const wf = (await ok(`${base}/workflow_specifications`, 'POST', spec))._key as string;
    await ok(`${base}/workflows/${wf}/initialize_jobs`, 'POST');
    const nodes: string[] = [];
    for (let c = 0; c < claimers; c++) {
      nodes.push((await ok(`${base}/workflows/${wf}/compute_nodes`, 'POST', { hostname: `w${c}`, pid: c, start_time: new Date().toISOString(), resources: { num_cpus: PER_CLAIM, memory_gb: 16 } }))._key);
    }
    const worker = { num_cpus: PER_CLAIM, memory_gb: 16, num_gpus: 0, num_nodes: 1, time_limit: 'PT4H' };
    // One keep-alive connection per claimer. The raw client (default) costs this process less CPU
    // per claim than node:http, so 64 answers arriving together are read sooner (see --client).
    // --trace FILE: one line per claim (phase, start and latency in ms, claimer), to find stalls.
    const trace: string[] | null = traceFile ? [] : null;
    const conns = client === 'raw' ? await Promise.all(nodes.map(() => RawHttpConnection.open(base))) : [];
    const path = (c: number) => `${base}/workflows/${wf}/prepare_jobs_for_submission?compute_node_key=${nodes[c]}`;
    const claimOnce = async (c: number): Promise<{ ms: number; got: number }> => {
      const t = performance.now();
      const r = client === 'raw' ? await conns[c]!.request('POST', path(c), JSON.stringify(worker)) : await call(path(c), 'POST', worker);
      const ms = performance.now() - t;
      if (r.status !== 200) throw new Error(`claim → ${r.status} ${JSON.stringify(r.body)}`);
      return { ms, got: (r.body.jobs as unknown[]).length };
    };

    // Let the server settle after the setup: writing 100,000 jobs leaves a large WAL that its
    // checkpoint thread copies for a few seconds after (CPU the claims would compete with).
    await quiet(server);

    const run = async (label: string, perClaimer: number, pace: number): Promise<Latencies> => {
      const ms: number[] = [];
      let got = 0;
      const cpu0 = server.cpuSeconds();
      const own0 = ownCpuSeconds();
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: claimers }, async (_, c) => {
          // Paced claimers start spread over one interval, as independent workers would.
          if (pace > 0) await new Promise((r) => setTimeout(r, (pace * c) / claimers));
          for (let i = 0; i < perClaimer; i++) {
            const started = performance.now();
            const one = await claimOnce(c);
            ms.push(one.ms);
            if (trace) trace.push(`${label} ${(performance.timeOrigin + started).toFixed(2)} ${one.ms.toFixed(2)} ${c}`);
            got += one.got;
            if (pace > 0) await new Promise((r) => setTimeout(r, Math.max(0, pace - (performance.now() - started))));
          }
        }),
      );
      const l = summarize(ms, (performance.now() - t0) / 1000, got, server.cpuSeconds() - cpu0);
      // A claim that found fewer ready jobs than it asked for is cheaper: the figures would flatter.
      if (label !== 'warmup' && got < ms.length * PER_CLAIM) throw new Error(`the ${label} run ran out of ready jobs (${got} for ${ms.length} claims of ${PER_CLAIM}): use more --jobs or fewer --claims`);
      loop.disable();
      return { ...l, clientCpuMs: ((ownCpuSeconds() - own0) * 1000) / ms.length, clientLoopP99: loop.percentile(99) / 1e6 };
    };
    // Warm-up, not measured: a closed-loop run so the measured one starts in a steady state (code
    // compiled, caches filled) rather than with its first second at half speed.
    await run('warmup', warmupClaims(warmup, claimers) / claimers, 0);
    const closed = await run('closed', Math.ceil(claims / claimers), 0);
    const paced = await run('paced', Math.max(5, Math.ceil(claims / claimers / 4)), intervalMs);
    if (trace && traceFile) writeFileSync(traceFile, trace.join('\n') + '\n');
    for (const c of conns) c.close();
    return { closed, paced };
  } finally {
    await server.stop();
  }
}

/** Claims of the warm-up run: `warmup` rounded up to a whole number per claimer. */
function warmupClaims(warmup: number, claimers: number): number {
  return Math.max(1, Math.ceil(warmup / claimers)) * claimers;
}

/** Wait until the server uses under 2% of a core over 0.5 s (at most 15 s). */
async function quiet(server: ServerProcess): Promise<void> {
  const until = performance.now() + 15_000;
  while (performance.now() < until) {
    const c0 = server.cpuSeconds();
    await new Promise((r) => setTimeout(r, 500));
    if (server.cpuSeconds() - c0 < 0.01) return;
  }
}

export function measureBaseline(jobs: number, claims: number): Latencies {
  const plain = plainDatabase();
  try {
    const db = plain.db;
    db.exec('CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, body TEXT NOT NULL)');
    db.exec('CREATE INDEX jobs_status ON jobs (status, id)');
    const insert = db.prepare('INSERT INTO jobs (id, status, body) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < jobs; i++) insert.run(i, 'ready', plainJobBody(i, 'ready'));
    })();
    const pick = db.prepare("SELECT id, body FROM jobs WHERE status = 'ready' ORDER BY id LIMIT ?");
    const set = db.prepare("UPDATE jobs SET status = 'submitted_pending', body = ? WHERE id = ?");
    const claim = db.transaction(() => {
      const rows = pick.all(PER_CLAIM) as { id: number; body: string }[];
      for (const r of rows) set.run(r.body, r.id);
      return rows.length;
    });
    const ms: number[] = [];
    let got = 0;
    const cpu0 = ownCpuSeconds();
    const t0 = performance.now();
    for (let i = 0; i < claims; i++) {
      const t = performance.now();
      got += claim();
      ms.push(performance.now() - t);
    }
    return summarize(ms, (performance.now() - t0) / 1000, got, ownCpuSeconds() - cpu0);
  } finally {
    plain.close();
  }
}

export async function main(): Promise<void> {
  const jobs = numberArg('jobs', 100_000);
  const claimers = numberArg('claimers', 64);
  const claims = numberArg('claims', 18_000);
  const interval = numberArg('interval-ms', 100);
  const warmup = numberArg('warmup', 5_000);
  const ti = process.argv.indexOf('--trace');
  const traceFile = ti === -1 ? undefined : process.argv[ti + 1];
  const ci = process.argv.indexOf('--client');
  const client = ci === -1 ? 'raw' : process.argv[ci + 1];
  if (client !== 'raw' && client !== 'node-http') throw new Error('--client is raw or node-http');
  console.log(`== claim latency: ${claimers} concurrent claimers, ${jobs} ready jobs, ${PER_CLAIM} jobs per claim; load average ${loadavg()[0]!.toFixed(1)}, client ${client}`);
  const b = measureBaseline(jobs, claims);
  const line = (label: string, l: Latencies, ratio?: Latencies) =>
    console.log(
      `${label.padEnd(52)} p50 ${fmt(l.p50, 2).padStart(7)} ms  p99 ${fmt(l.p99, 2).padStart(7)} ms  max ${fmt(l.max, 1).padStart(7)} ms  ${fmt(l.throughput, 0).padStart(6)} claims/s  CPU ${fmt(l.cpuMs, 3)} ms/claim` +
        (l.clientCpuMs !== undefined ? `  client CPU ${fmt(l.clientCpuMs, 3)} ms/claim, loop delay p99 ${fmt(l.clientLoopP99 ?? NaN, 1)} ms` : '') +
        (ratio ? `   ratio p50 ${(l.p50 / ratio.p50).toFixed(1)}x p99 ${(l.p99 / ratio.p99).toFixed(1)}x CPU ${(l.cpuMs / ratio.cpuMs).toFixed(1)}x` : ''),
    );
  line(`baseline plain SQLite claim (in-process, serial)`, b);
  const w = await measureWeft(jobs, claimers, claims, interval, client, warmup, traceFile);
  line(`weft HTTP, closed loop (${claimers} always in flight)`, w.closed, b);
  line(`weft HTTP, each claimer every ${interval} ms`, w.paced, b);
  const p99 = Math.min(w.closed.p99, w.paced.p99);
  console.log(`goal p99 < 20 ms: closed loop ${w.closed.p99 < 20 ? 'met' : 'MISSED'}, paced ${w.paced.p99 < 20 ? 'met' : 'MISSED'} (best ${fmt(p99, 2)} ms); server CPU per claim ${fmt(w.closed.cpuMs, 3)} ms = at most ${fmt(1000 / w.closed.cpuMs, 0)} claims/s per dedicated core`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
