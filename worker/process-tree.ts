/**
 * CPU and memory of each job's whole process tree: the job's process, everything it started
 * (followed by parent pid), and anything in its session (a job runs in its own session, so a child
 * that daemonized and was re-parented to init still counts).
 *
 * One sampler serves every running job: each tick reads the process table once (`/proc` on Linux,
 * `ps` elsewhere) and adds one sample per tracked job. CPU% is CPU time used since the previous
 * sample over wall time (100 = one core busy); memory is the sum of resident set sizes in bytes.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** One letter: R, S, D, Z (zombie: dead, not yet reaped), ... */
  state: string;
  session: number;
  /** User + system CPU time in seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

let sysconf: { clkTck: number; pageSize: number } | undefined;
function sysconfValues(): { clkTck: number; pageSize: number } {
  if (!sysconf) {
    const get = (name: string, dflt: number): number => {
      try {
        const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 5_000 }).trim());
        return Number.isFinite(v) && v > 0 ? v : dflt;
      } catch {
        return dflt;
      }
    };
    sysconf = { clkTck: get('CLK_TCK', 100), pageSize: get('PAGESIZE', 4096) };
  }
  return sysconf;
}

/** Parse one `/proc/<pid>/stat` line (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string, clkTck: number, pageSize: number): ProcessInfo | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): ppid 4, session 6, utime 14, stime 15, rss 24.
  const ppid = Number(f[1]);
  const session = Number(f[3]);
  const ticks = Number(f[11]) + Number(f[12]);
  const rssPages = Number(f[21]);
  if (![pid, ppid, session, ticks, rssPages].every(Number.isFinite)) return null;
  return { pid, ppid, state: f[0] ?? '?', session, cpuSeconds: ticks / clkTck, rssBytes: rssPages * pageSize };
}

/** Every process of this machine, from /proc. */
async function readProcTable(): Promise<Map<number, ProcessInfo>> {
  const { clkTck, pageSize } = sysconfValues();
  const names = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  const table = new Map<number, ProcessInfo>();
  await Promise.all(
    names.map(async (n) => {
      try {
        const info = parseProcStat(await readFile(`/proc/${n}/stat`, 'utf8'), clkTck, pageSize);
        if (info) table.set(info.pid, info);
      } catch {
        /* the process exited between readdir and read */
      }
    }),
  );
  return table;
}

/** `[[dd-]hh:]mm:ss` of ps's cputime, in seconds. */
export function parsePsCpuTime(text: string): number {
  const [days, rest] = text.includes('-') ? text.split('-') : ['0', text];
  const parts = (rest ?? '').split(':').map(Number);
  let s = 0;
  for (const p of parts) s = s * 60 + (Number.isFinite(p) ? p : 0);
  return Number(days) * 86_400 + s;
}

/** Every process of this machine, from `ps` (systems without /proc). */
function readPsTable(): Promise<Map<number, ProcessInfo>> {
  return new Promise((resolve) => {
    execFile('ps', ['-A', '-o', 'pid=,ppid=,sess=,rss=,time='], { encoding: 'utf8', timeout: 10_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      const table = new Map<number, ProcessInfo>();
      if (!err) {
        for (const line of stdout.split('\n')) {
          const [pid, ppid, sess, rss, time] = line.trim().split(/\s+/);
          if (pid === undefined || time === undefined) continue;
          table.set(Number(pid), { pid: Number(pid), ppid: Number(ppid), state: '?', session: Number(sess), rssBytes: Number(rss) * 1024, cpuSeconds: parsePsCpuTime(time) });
        }
      }
      resolve(table);
    });
  });
}

/** The process table of this machine. */
export async function readProcessTable(): Promise<Map<number, ProcessInfo>> {
  if (process.platform === 'linux') {
    try {
      return await readProcTable();
    } catch {
      /* /proc not mounted: fall back to ps */
    }
  }
  return readPsTable();
}

/** The pids of `root`'s tree: itself, its descendants by parent pid, and its session's members. */
export function treePids(table: ReadonlyMap<number, ProcessInfo>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of table.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const seen = new Set<number>();
  const stack = [root];
  for (const p of table.values()) if (p.session === root) stack.push(p.pid);
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid) || !table.has(pid)) continue;
    seen.add(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return [...seen];
}

/** Aggregates of one job's samples, with the field names of job_process_stats. */
export interface TreeStatsSummary {
  num_samples: number;
  avg_cpu_percent: number;
  max_cpu_percent: number;
  avg_rss: number;
  max_rss: number;
}

interface Tracked {
  root: number;
  lastAt: number;
  /** CPU seconds of each pid at the previous sample. */
  lastCpu: Map<number, number>;
  n: number;
  cpuSum: number;
  cpuMax: number;
  rssSum: number;
  rssMax: number;
}

export interface SamplerOptions {
  /** Sampling period in ms (default 1000). */
  intervalMs?: number;
  /** Where the process table comes from (tests). */
  readTable?: () => Promise<Map<number, ProcessInfo>>;
}

/** Samples the process trees of the tracked jobs on a timer while any is tracked. */
export class ProcessTreeSampler {
  private readonly jobs = new Map<string, Tracked>();
  private readonly intervalMs: number;
  private readonly readTable: () => Promise<Map<number, ProcessInfo>>;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;

  constructor(opts: SamplerOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.readTable = opts.readTable ?? readProcessTable;
  }

  /** Start sampling the tree rooted at `pid` under `id`. */
  track(id: string, pid: number): void {
    this.jobs.set(id, { root: pid, lastAt: Date.now(), lastCpu: new Map(), n: 0, cpuSum: 0, cpuMax: 0, rssSum: 0, rssMax: 0 });
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(() => void this.sampleOnce(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Stop tracking `id` and return its aggregates (null when it was never sampled). */
  untrack(id: string): TreeStatsSummary | null {
    const t = this.jobs.get(id);
    this.jobs.delete(id);
    if (this.jobs.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (!t || t.n === 0) return null;
    return {
      num_samples: t.n,
      avg_cpu_percent: round2(t.cpuSum / t.n),
      max_cpu_percent: round2(t.cpuMax),
      avg_rss: Math.round(t.rssSum / t.n),
      max_rss: t.rssMax,
    };
  }

  /** Take one sample of every tracked tree now (the timer calls this; tests may too). */
  sampleOnce(): Promise<void> {
    // One read at a time: a slow /proc scan must not pile up.
    this.sampling ??= this.doSample().finally(() => {
      this.sampling = undefined;
    });
    return this.sampling;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.jobs.clear();
  }

  private async doSample(): Promise<void> {
    if (this.jobs.size === 0) return;
    const table = await this.readTable();
    const now = Date.now();
    for (const t of this.jobs.values()) {
      if (!table.has(t.root)) continue; // exited (or not yet visible): nothing to add
      const pids = treePids(table, t.root);
      let cpuDelta = 0;
      let rss = 0;
      const cpuNow = new Map<number, number>();
      for (const pid of pids) {
        const p = table.get(pid)!;
        cpuNow.set(pid, p.cpuSeconds);
        cpuDelta += Math.max(0, p.cpuSeconds - (t.lastCpu.get(pid) ?? 0));
        rss += p.rssBytes;
      }
      const wall = Math.max(0.001, (now - t.lastAt) / 1000);
      const cpu = (cpuDelta / wall) * 100;
      t.lastCpu = cpuNow;
      t.lastAt = now;
      t.n += 1;
      t.cpuSum += cpu;
      t.cpuMax = Math.max(t.cpuMax, cpu);
      t.rssSum += rss;
      t.rssMax = Math.max(t.rssMax, rss);
    }
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
