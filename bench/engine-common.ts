/**
 * Shared pieces of the engine benchmarks: a real `weft server` child process (so the clients of
 * the benchmark do not share the server's thread, and its peak RSS can be read), a small
 * keep-alive JSON client, percentiles, spec builders, and the plain better-sqlite3 baselines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/cli/main.js, next to dist/bench/. */
const CLI = join(here, '..', 'cli', 'main.js');

export interface ServerProcess {
  /** http://127.0.0.1:PORT/torc-service */
  url: string;
  child: ChildProcess;
  dir: string;
  /** Peak resident set size of the server process so far, in bytes (Linux VmHWM). */
  peakRss(): number;
  /** Current resident set size, in bytes (Linux VmRSS). */
  rss(): number;
  /**
   * CPU seconds (user + system) the server has used so far (Linux /proc/<pid>/stat). On a busy
   * shared machine wall-clock rates mostly measure the neighbours; CPU per operation does not.
   */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function procStatus(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Linux clock ticks per second for /proc times (USER_HZ; 100 on every mainstream kernel). */
const CLOCK_TICKS = 100;

function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds this process has used (user + system). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Start `weft server` on a fresh SQLite file in a temp dir; resolves when it listens. */
export async function startServerProcess(extraArgs: string[] = []): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  // WEFT_BENCH_PROF=DIR: write a V8 CPU profile of the server there (open it in Chrome DevTools).
  // --cpu-prof profiles the main thread, so the server runs there, with the young generation its
  // thread would have had (server/thread.ts: 96 MiB = 3 x 32 MiB semi-spaces).
  const prof = process.env.WEFT_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.WEFT_BENCH_PROF}`, '--max-semi-space-size=32'] : [];
  // WEFT_BENCH_NODE_ARGS: extra node options for the server (e.g. --trace-gc); WEFT_BENCH_SERVER_OUT=FILE: its stdout, appended.
  const nodeArgs = process.env.WEFT_BENCH_NODE_ARGS ? process.env.WEFT_BENCH_NODE_ARGS.split(' ').filter((a) => a !== '') : [];
  const args = [...prof, ...nodeArgs, CLI, 'server', '--port', '0', '--db', join(dir, 'weft.db'), '--log-level', 'warn', '--lease-timeout-seconds', '86400', ...extraArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env.WEFT_BENCH_PROF ? { ...process.env, WEFT_SERVER_THREAD: '0' } : process.env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const outFile = process.env.WEFT_BENCH_SERVER_OUT;
    child.stdout!.on('data', (d: Buffer) => {
      if (outFile) appendFileSync(outFile, d);
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`weft server exited with ${code}: ${stderr}`)));
  });
  const pid = child.pid!;
  return {
    url,
    child,
    dir,
    peakRss: () => procStatus(pid, 'VmHWM'),
    rss: () => procStatus(pid, 'VmRSS'),
    cpuSeconds: () => procCpuSeconds(pid),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  body: any;
}

/** One JSON request over a keep-alive connection (node:http: less client CPU than fetch). */
export function call(url: string, method: string, body?: unknown, contentType = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(url, { method, agent, headers: payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** `call` that throws unless the status is 200. */
export async function ok(url: string, method: string, body?: unknown, contentType?: string): Promise<any> {
  const r = await call(url, method, body, contentType);
  if (r.status !== 200) throw new Error(`${method} ${url} → ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

/** The q-quantile (0..1) of sorted numbers. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** `--name value` from argv, as a number, or the default. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

/** A plain better-sqlite3 database in a temp dir, set up like the store (WAL, synchronous NORMAL). */
export function plainDatabase(): { db: Database.Database; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-plain-'));
  const db = new Database(join(dir, 'plain.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return {
    db,
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A job body of about the size Weft stores (status, command, internal requirements). */
export function plainJobBody(i: number, status: string): string {
  return JSON.stringify({
    name: `job_${i}`,
    command: `work --item ${i}`,
    status,
    cancel_on_blocking_job_failure: true,
    supports_termination: false,
    internal: { memory_bytes: 1048576, num_cpus: 1, num_gpus: 0, num_nodes: 1, runtime_seconds: 60, scheduler_config_id: '', num_unfinished_blockers: 0, hash: 0 },
  });
}

export function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * A minimal HTTP/1.1 keep-alive client on one TCP connection, one request at a time (what one
 * worker with a keep-alive agent does), for benches whose many clients share this process: the
 * node:http client costs ~0.1-0.2 ms of CPU per request, and when 64 claimers' answers queue in
 * this process behind each other that delay is counted as the server's latency. It writes the
 * request bytes itself and reads answers framed by Content-Length (what the server sends; a
 * chunked answer is an error here). Bodies are parsed as JSON, as a worker would.
 */
export class RawHttpConnection {
  private readonly socket: Socket;
  private readonly hostHeader: string;
  private pending: { resolve: (r: Reply) => void; reject: (e: Error) => void } | null = null;
  private buf: Buffer | null = null;
  private closed: Error | null = null;

  private constructor(socket: Socket, hostHeader: string) {
    this.socket = socket;
    this.hostHeader = hostHeader;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (err: Error) => {
      this.closed = err;
      const p = this.pending;
      this.pending = null;
      p?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /** Connect to the host and port of `baseUrl` (http only). */
  static async open(baseUrl: string): Promise<RawHttpConnection> {
    const u = new URL(baseUrl);
    if (u.protocol !== 'http:') throw new Error(`RawHttpConnection: http only, not ${u.protocol}`);
    const socket = createConnection({ host: u.hostname, port: Number(u.port || 80) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawHttpConnection(socket, u.host);
  }

  /** One request with a JSON body (`payload`, already serialized) or none; the parsed answer. */
  request(method: string, url: string, payload?: string): Promise<Reply> {
    if (this.closed) return Promise.reject(this.closed);
    if (this.pending) return Promise.reject(new Error('RawHttpConnection: one request at a time'));
    const path = url.startsWith('http') ? url.slice(url.indexOf('/', url.indexOf('//') + 2)) : url;
    const head =
      `${method} ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nConnection: keep-alive\r\n` +
      (payload === undefined ? '\r\n' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
    return new Promise<Reply>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(head);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const buf = this.buf;
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const headText = buf.toString('latin1', 0, end);
    const status = Number(headText.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
    if (!m && status !== 204 && status !== 304) {
      this.fail(new Error(`RawHttpConnection: answer without Content-Length: ${headText.slice(0, 200)}`));
      return;
    }
    const length = m ? Number(m[1]) : 0;
    const start = end + 4;
    if (buf.length < start + length) return;
    if (buf.length > start + length) {
      this.fail(new Error('RawHttpConnection: bytes after the answer (one request at a time)'));
      return;
    }
    this.buf = null;
    const text = buf.toString('utf8', start, start + length);
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const p = this.pending;
    this.pending = null;
    p?.resolve({ status, body });
  }

  private fail(err: Error): void {
    this.closed = err;
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
    this.socket.destroy();
  }

  close(): void {
    this.closed = new Error('connection closed');
    this.socket.end();
  }
}
