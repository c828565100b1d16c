/**
 * The job launcher: one small bash process per worker that starts the jobs.
 *
 * Why: `child_process.spawn` forks the whole worker (tens of MB of page tables) and blocks the
 * event loop until the child has exec'ed, 2-10 ms a job on a busy node; bash forks in a fraction of
 * that and does it beside the worker. For short jobs this is most of the worker's cost.
 *
 * Protocol: the worker writes four NUL-terminated fields per job on the launcher's stdin (id,
 * stdout path, stderr path, script); the launcher answers `S <id> <pid>` once the job runs and
 * `E <id> <status>` when it ends (one short line each, so concurrent writes never interleave).
 * The job runs as `setsid bash -c <script>`: its own session and process group, with the pid the
 * launcher reports. No `setpriv --pdeathsig` here: the job's parent is the launcher's subshell,
 * not the worker, so it would not fire when the worker dies; the orphan reaper (reaper.ts) kills
 * the job groups of a worker that died instead. The exit status is what `wait` gives:
 * 128+N when signal N ended it (reported as -N, the convention of the reference worker).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

let usable: boolean | undefined;
/** Whether this machine has bash and util-linux's `setsid -w` (Linux); elsewhere jobs are spawned directly. */
export function launcherUsable(): boolean {
  usable ??= spawnSync('bash', ['-c', 'setsid -w true'], { stdio: 'ignore', timeout: 5_000 }).status === 0;
  return usable;
}

const SCRIPT = `
set +m
while IFS= read -r -d '' id && IFS= read -r -d '' out && IFS= read -r -d '' err && IFS= read -r -d '' script; do
  {
    setsid -w bash -c "$script" </dev/null >>"$out" 2>>"$err" &
    pid=$!
    printf 'S %s %s\\n' "$id" "$pid"
    wait "$pid"
    printf 'E %s %s\\n' "$id" "$?"
  } &
done
wait
`;

interface Pending {
  onStart: (pid: number) => void;
  onExit: (status: number) => void;
}

export class JobLauncher {
  private child: ChildProcess | undefined;
  private buf = '';
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private dead = false;

  /** Start the launcher with the environment every job starts from. */
  start(env: NodeJS.ProcessEnv): void {
    this.child = spawn('bash', ['-c', SCRIPT], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.onData(chunk));
    this.child.stdin!.on('error', () => {
      /* handled by exit */
    });
    this.child.once('exit', () => this.onDead());
    this.child.once('error', () => this.onDead());
  }

  get alive(): boolean {
    return this.child !== undefined && !this.dead;
  }

  /** Start `script`; callbacks receive the job's pid, then its exit status. */
  launch(out: string, err: string, script: string, onStart: (pid: number) => void, onExit: (status: number) => void): void {
    if (!this.alive) {
      onExit(127);
      return;
    }
    const id = String(++this.seq);
    this.pending.set(id, { onStart, onExit });
    if (/\0/.test(out + err + script)) {
      this.pending.delete(id);
      onExit(127);
      return;
    }
    this.child!.stdin!.write(`${id}\0${out}\0${err}\0${script}\0`);
  }

  /** Close stdin: the launcher exits once its jobs have ended. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || this.dead) return;
    c.stdin!.end();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.kill('SIGKILL');
        resolve();
      }, 5_000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const [kind, id, value] = line.split(' ');
      const p = this.pending.get(id ?? '');
      if (!p) continue;
      if (kind === 'S') p.onStart(Number(value));
      else if (kind === 'E') {
        this.pending.delete(id!);
        p.onExit(Number(value));
      }
    }
  }

  /** The launcher died (killed from outside): its jobs' ends can no longer be seen; report them killed. */
  private onDead(): void {
    this.dead = true;
    for (const p of this.pending.values()) p.onExit(128 + 9);
    this.pending.clear();
  }
}

/** Quote a string for bash (single quotes). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
