/**
 * What the server's requests leave behind for the garbage collector: bytes promoted to V8's old
 * generation per request, under 64 keep-alive clients in a closed loop, read from the server's
 * own `--trace-gc-nvp` lines (each scavenge prints what it allocated and promoted).
 *
 * A request's objects should die young: a scavenge then copies little and promotes almost nothing,
 * and the old generation grows only slowly (each Mark-Compact is a pause of every request in
 * flight). Three constructs broke that, each by keeping every request's objects alive through
 * scavenges until the next Mark-Compact: an object literal with getters made per request (the
 * handler's request), `Object.defineProperty` of a getter on a per-request object (Koa's
 * `ctx.state`), and zod's `superRefine` (the key parameters). See HandlerRequest in
 * server/api-router.ts and keyOrId in server/validate.ts.
 *
 * Baseline, measured in the same run: a bare node:http server answering the same small JSON, under
 * the same flags and load. Figures per route: requests/s, scavenges, MB allocated and promoted,
 * promoted bytes per request, and that as a share of what was allocated.
 *
 *   npm run build && node dist/bench/promotion.js [--requests 60000]
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawHttpConnection, call, numberArg, startServerProcess } from './engine-common.js';

const CLIENTS = 64;

interface Scavenges {
  count: number;
  allocated: number;
  promoted: number;
}

/** The scavenges logged in `text` (nvp lines with gc=s). */
function scavenges(text: string): Scavenges {
  const out: Scavenges = { count: 0, allocated: 0, promoted: 0 };
  for (const line of text.split('\n')) {
    if (!line.includes(' gc=s ')) continue;
    const a = /\ballocated=(\d+)/.exec(line);
    const p = /\bpromoted=(\d+)/.exec(line);
    if (!a || !p) continue;
    out.count++;
    out.allocated += Number(a[1]);
    out.promoted += Number(p[1]);
  }
  return out;
}

/** `requests` GETs of `url` from CLIENTS keep-alive connections, each sending its next on its answer. */
async function load(base: string, url: string, requests: number): Promise<number> {
  const conns = await Promise.all(Array.from({ length: CLIENTS }, () => RawHttpConnection.open(base)));
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (c) => {
      while (sent < requests) {
        sent++;
        const r = await c.request('GET', url);
        if (r.status !== 200) throw new Error(`GET ${url} → ${r.status}`);
      }
    }),
  );
  const rate = requests / ((performance.now() - t0) / 1000);
  for (const c of conns) c.close();
  return rate;
}

/** Run `load` while `logFile` collects the server's GC lines; the scavenges of that window only. */
async function measure(label: string, base: string, url: string, logFile: string, requests: number): Promise<void> {
  await load(base, url, Math.min(5_000, requests)); // warm-up: compiled code, grown young generation
  const before = readFileSync(logFile, 'utf8').length;
  const rate = await load(base, url, requests);
  await new Promise((r) => setTimeout(r, 200)); // the last lines reach the file
  const s = scavenges(readFileSync(logFile, 'utf8').slice(before));
  const perRequest = s.promoted / requests;
  const share = s.allocated > 0 ? (100 * s.promoted) / s.allocated : 0;
  console.log(
    `${label.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(7)} req/s  ${String(s.count).padStart(3)} scavenges  ` +
      `allocated ${(s.allocated / 1048576).toFixed(0).padStart(4)} MB  promoted ${(s.promoted / 1048576).toFixed(2).padStart(6)} MB  ` +
      `${perRequest.toFixed(0).padStart(5)} B/request  (${share.toFixed(2)}% of allocated)`,
  );
}

/** The bare node:http server of the baseline, with the same flags; resolves with its URL. */
async function startBaseline(logFile: string): Promise<{ url: string; stop: () => void }> {
  const source =
    "const http = require('node:http');" +
    "const s = http.createServer((req, res) => { const b = '{\"message\":\"weft service is running\"}'; res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': b.length }); res.end(b); });" +
    "s.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + s.address().port));";
  const child = spawn(process.execPath, ['--trace-gc-nvp', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      appendFileSync(logFile, d);
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`baseline server exited with ${code}`)));
  });
  return { url, stop: () => child.kill() };
}

async function main(): Promise<void> {
  const requests = numberArg('requests', 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'weft-promotion-'));
  try {
    console.log(`== young-generation promotion per request: ${CLIENTS} keep-alive clients, closed loop, ${requests} requests per route`);
    const baseLog = join(dir, 'baseline.log');
    appendFileSync(baseLog, '');
    const baseline = await startBaseline(baseLog);
    try {
      await measure('baseline: bare node:http, GET', baseline.url, `${baseline.url}/ping`, baseLog, requests);
    } finally {
      baseline.stop();
    }

    // The server's GC lines: its thread's (the server runs in a worker thread) and its main thread's.
    const log = join(dir, 'server.log');
    appendFileSync(log, '');
    process.env.WEFT_BENCH_NODE_ARGS = '--trace-gc-nvp';
    process.env.WEFT_BENCH_SERVER_OUT = log;
    const server = await startServerProcess();
    try {
      const wf = (await call(`${server.url}/workflows`, 'POST', { name: 'promotion', user: 'bench' })).body as { _key: string };
      const node = (await call(`${server.url}/workflows/${wf._key}/compute_nodes`, 'POST', { hostname: 'h', pid: 1, start_time: new Date().toISOString(), resources: { num_cpus: 1, memory_gb: 1, num_gpus: 0, num_nodes: 1 } })).body as { _key: string };
      await measure('weft GET /ping', server.url, `${server.url}/ping`, log, requests);
      await measure('weft GET /workflows/{key}', server.url, `${server.url}/workflows/${wf._key}`, log, requests);
      await measure('weft GET /workflows/{workflow}/compute_nodes/{key}', server.url, `${server.url}/workflows/${wf._key}/compute_nodes/${node._key}`, log, requests);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
