/**
 * The job launcher: one small process per worker that starts the jobs.
 *
 * Why: `child_process.spawn` forks the whole worker (tens of MB of page tables) and blocks the
 * event loop until the child has exec'ed, 2-10 ms a job on a busy node; a small launcher forks in
 * a fraction of that and does it beside the worker. For short jobs this is most of the worker's cost.
 *
 * Protocol: the worker writes four NUL-terminated fields per job on the launcher's stdin (id,
 * stdout path, stderr path, script); the launcher answers `S <id> <pid>` once the job runs and
 * `E <id> <status>` when it ends (one short line each, so concurrent writes never interleave).
 * Its first line is `R` (ready): it checked what it needs (python: a bash started the way jobs
 * are; perl: POSIX; bash: `setsid -w`); without it, it exits instead, and JobLauncher.open tries
 * the next kind, so nothing is probed beforehand on the worker's event loop.
 * The job runs as `bash -c <script>` in its own session and process group, with the pid the
 * launcher reports. No `setpriv --pdeathsig` here: the job's parent is the launcher, not the
 * worker, so it would not fire when the worker dies; the python and perl launchers kill the job
 * groups of a worker that died themselves (stdin ends without the orderly-stop record), with the
 * bash one the orphan reaper (reaper.ts) does. The exit status is what `wait` gives: 128+N when
 * signal N ended it (reported as -N, the convention of the reference worker).
 *
 * Three implementations of the same protocol, the first that runs here (CPU per `true` job with
 * its two stdio files, launcher + job, on the 2-core dev VM):
 * - python 3.8+: posix_spawn (vfork) with setsid and the redirections as spawn attributes, so
 *   nothing is copied; ~0.2 + 1.25 ms.
 * - perl (POSIX): per job one fork of the small launcher, setsid() and the redirections in the
 *   child, one exec of bash; ~0.33 + 1.5 ms.
 * - bash + util-linux `setsid -w`: per job a subshell fork, a setsid exec and a bash exec, and
 *   `read -d ''` reads its pipe one byte at a time: ~3.8 ms of CPU per `true` job. On a node whose
 *   cores are all busy running jobs, that CPU is taken from them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Which launcher runs here. */
export type LauncherKind = 'python' | 'perl' | 'bash';

/** python3 -I (no PYTHON* variables, no user site) -S (no site module: a faster start). */
const PYTHON_ARGS = ['-I', '-S'];
/** How each kind is started (the scripts are below). */
function commandOf(as: LauncherKind): [string, string[]] {
  return as === 'python' ? ['python3', [...PYTHON_ARGS, '-c', PYTHON_SCRIPT]] : as === 'perl' ? ['perl', ['-e', PERL_SCRIPT]] : ['bash', ['-c', BASH_SCRIPT]];
}

/** Every launcher this machine can run: each started once with nothing on its stdin, to see it say it is ready (tests). */
export function launcherKinds(): LauncherKind[] {
  return (['python', 'perl', 'bash'] as const).filter((as) => {
    const [file, args] = commandOf(as);
    const r = spawnSync(file, args, { input: '', encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 && r.stdout.startsWith('R\n');
  });
}

// SIGCHLD is handled without SA_RESTART, so a wait in select() returns (EINTR) and perl runs the
// (deferred) handler, which keeps $! for that check; the handler runs between statements, never
// inside a print. SIGCHLD is blocked while the main loop records a job or prints, so the
// handler's lines never interleave with the loop's and an `E` never comes before its `S`; the
// child unblocks it (the mask survives exec).
// `S` is held back for up to S_DELAY seconds: a job that ends by then gets `S` and `E` in one
// write (one wake-up of the worker instead of two, for the short jobs where that is most of the
// cost); a longer job's pid reaches the worker S_DELAY late (signals wait for it there).
// When a job ends, whatever it left in its process group (background children) is SIGKILLed.
// Four empty fields ask for an orderly stop: at the end of stdin the launcher waits for its jobs.
// The end of stdin without them means the worker died (even by SIGKILL: the kernel closes the
// pipe): the launcher SIGKILLs every job's process group it still runs, so no job outlives its
// worker (this launcher is the orphan reaper; it runs in its own session, so a signal to the
// worker's process group does not reach it). SIGPIPE has a handler that does nothing, so a dead
// worker's pipe cannot kill it first (exec gives the jobs the default back, as it does for SIGCHLD).
// A job's child does as little as it can before exec (POSIX open/dup2, no PerlIO): each perl
// statement there writes to pages it shares with the launcher, and copying them is most of its cost.
const PERL_SCRIPT = `
use strict; use warnings; use POSIX (); use Time::HiRes ();
$| = 1;
$SIG{PIPE} = sub {};
my $S_DELAY = 0.05;
my $null = POSIX::open('/dev/null', POSIX::O_RDONLY());
my $append = POSIX::O_WRONLY() | POSIX::O_APPEND() | POSIX::O_CREAT();
# bash found once: exec of a bare name tries every PATH entry before it, per job.
my $bash = 'bash';
for my $d (split /:/, ($ENV{PATH} // '')) { my $p = ($d eq '' ? '.' : $d) . '/bash'; if (-f $p && -x _) { $bash = $p; last; } }
my %id_of; my %s_due;
# Ready: POSIX and Time::HiRes loaded (a perl without them died before this line).
print "R\\n";
my $orderly = 0;
my $chld = POSIX::SigSet->new(POSIX::SIGCHLD());
sub ended { my ($p, $s) = @_; my $id = delete $id_of{$p}; return unless defined $id;
  kill('KILL', -$p);
  my $st = ($s & 127) ? 128 + ($s & 127) : ($s >> 8);
  my $started = delete $s_due{$p} ? "S $id $p\\n" : '';
  print $started . "E $id $st\\n"; }
sub reap { local ($!, $?); while ((my $p = waitpid(-1, POSIX::WNOHANG())) > 0) { ended($p, $?); } }
sub flush_s { my ($all) = @_; my $now = Time::HiRes::time(); my $next; my $out = '';
  for my $p (keys %s_due) {
    if ($all || $s_due{$p} <= $now) { delete $s_due{$p}; $out .= "S $id_of{$p} $p\\n"; }
    elsif (!defined $next || $s_due{$p} < $next) { $next = $s_due{$p}; }
  }
  print $out if $out ne '';
  return defined $next ? $next - $now : undef; }
POSIX::sigaction(POSIX::SIGCHLD(), POSIX::SigAction->new(\\&reap, POSIX::SigSet->new(), 0));
my $buf = ''; my @f;
READ: for (;;) {
  POSIX::sigprocmask(POSIX::SIG_BLOCK(), $chld);
  my $timeout = %s_due ? flush_s(0) : undef;
  # A SIGCHLD that lands just before select() blocks is seen within a second.
  $timeout = 1 if %id_of && (!defined $timeout || $timeout > 1);
  POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld);
  my $rin = ''; vec($rin, 0, 1) = 1;
  my $ready = select(my $rout = $rin, undef, undef, $timeout);
  if ($ready < 0) { next READ if $!{EINTR}; last READ; }
  if ($ready == 0) { POSIX::sigprocmask(POSIX::SIG_BLOCK(), $chld); reap(); POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld); next READ; }
  my $n = sysread(STDIN, $buf, 65536, length $buf);
  if (!defined $n) { next READ if $!{EINTR}; last READ; }
  last READ if $n == 0;
  while ((my $i = index($buf, "\\0")) >= 0) {
    push @f, substr($buf, 0, $i); substr($buf, 0, $i + 1) = '';
    next if @f < 4;
    my ($id, $out, $err, $script) = splice(@f, 0, 4);
    if ($id eq '') { $orderly = 1; next; }
    POSIX::sigprocmask(POSIX::SIG_BLOCK(), $chld);
    my $pid = fork();
    if (!defined $pid) { print "E $id 127\\n"; }
    elsif ($pid == 0) {
      POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld);
      POSIX::setsid();
      POSIX::dup2($null, 0) // POSIX::_exit(1);
      my $fd = POSIX::open($out, $append, 0666) // POSIX::_exit(1);
      POSIX::dup2($fd, 1) // POSIX::_exit(1);
      POSIX::close($fd);
      $fd = POSIX::open($err, $append, 0666) // POSIX::_exit(1);
      POSIX::dup2($fd, 2) // POSIX::_exit(1);
      POSIX::close($fd);
      exec { $bash } 'bash', '-c', $script or POSIX::_exit(127);
    } else { $id_of{$pid} = $id; $s_due{$pid} = Time::HiRes::time() + $S_DELAY; }
    POSIX::sigprocmask(POSIX::SIG_UNBLOCK(), $chld);
  }
}
POSIX::sigaction(POSIX::SIGCHLD(), POSIX::SigAction->new('DEFAULT'));
reap();
flush_s(1);
if (!$orderly) { kill('KILL', -$_) for keys %id_of; }
while (%id_of) { my $p = waitpid(-1, 0); last if $p <= 0; ended($p, $?); }
`;

// The python launcher: the same protocol and rules as the perl one, but each job is started with
// posix_spawn (vfork: no copy of the launcher's page tables, nothing run in a copy of it before
// exec), with setsid and the redirections as spawn attributes. ~0.3-0.5 ms less CPU per job than
// perl's fork. SIGCHLD wakes select() through a wake-up pipe (set_wakeup_fd), so no end is
// missed; everything else runs in the main loop. Python ignores SIGPIPE and SIGXFSZ: jobs get
// the defaults back (setsigdef).
const PYTHON_SCRIPT = `
import os, select, signal, sys, time
# Before anything an older python lacks (RHEL 8's python3 is 3.6): exit quietly, perl is next.
if sys.version_info < (3, 8) or not hasattr(os, 'posix_spawn'):
    sys.exit(3)
S_DELAY = 0.05
NULL = os.open('/dev/null', os.O_RDONLY)
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT
wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False)
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
signal.signal(signal.SIGCHLD, lambda s, f: None)
id_of = {}
s_due = {}
orderly = False
ENV = os.environ

def find_bash():
    # Found once: posix_spawnp of a bare name tries every PATH entry before it, per job.
    for d in ENV.get('PATH', os.defpath).split(os.pathsep):
        p = os.path.abspath(os.path.join(d or '.', 'bash'))
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.fsencode(p)
    return None
BASH = find_bash()

def usable():
    # What launch() uses, once (python 3.8+ with posix_spawn's setsid, setsigdef and file actions):
    # a bash that exits 0 under them.
    try:
        pid = os.posix_spawn(BASH, [b'bash', b'-c', b'exit 0'], ENV, setsid=True, setsigdef=(signal.SIGPIPE,),
            file_actions=[(os.POSIX_SPAWN_DUP2, NULL, 0), (os.POSIX_SPAWN_OPEN, 1, '/dev/null', os.O_WRONLY, 0)])
        return os.waitpid(pid, 0)[1] == 0
    except Exception:
        return False
if BASH is None or not usable():
    sys.exit(3)

def out(data):
    # All of it (a signal can cut a write to a pipe short); a dead worker's pipe (EPIPE) is ignored.
    try:
        while data:
            data = data[os.write(1, data):]
    except OSError:
        pass

def status_of(st):
    return 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)

def reap(block=False):
    lines = []
    while id_of:
        try:
            pid, st = os.waitpid(-1, 0 if block and not lines else os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        jid = id_of.pop(pid, None)
        if jid is None:
            continue
        try:
            os.kill(-pid, signal.SIGKILL)
        except OSError:
            pass
        if s_due.pop(pid, None) is not None:
            lines.append(b'S %s %d\\n' % (jid, pid))
        lines.append(b'E %s %d\\n' % (jid, status_of(st)))
    if lines:
        out(b''.join(lines))

def flush_s(all_=False):
    now = time.monotonic()
    nxt = None
    lines = []
    for pid, due in list(s_due.items()):
        if all_ or due <= now:
            del s_due[pid]
            lines.append(b'S %s %d\\n' % (id_of[pid], pid))
        elif nxt is None or due < nxt:
            nxt = due
    if lines:
        out(b''.join(lines))
    return None if nxt is None else max(0.0, nxt - now)

def launch(jid, path_out, path_err, script):
    try:
        pid = (os.posix_spawn if BASH else os.posix_spawnp)(BASH or b'bash', [b'bash', b'-c', script], ENV, setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            file_actions=[(os.POSIX_SPAWN_DUP2, NULL, 0), (os.POSIX_SPAWN_OPEN, 1, path_out, APPEND, 0o666), (os.POSIX_SPAWN_OPEN, 2, path_err, APPEND, 0o666)])
    except OSError:
        # An output file that cannot be opened is 1 (as a failed redirection); no bash is 127.
        ok = all(os.path.isdir(os.path.dirname(p) or b'.') for p in (path_out, path_err))
        out(b'E %s %d\\n' % (jid, 127 if ok else 1))
        return
    id_of[pid] = jid
    s_due[pid] = time.monotonic() + S_DELAY

out(b'R\\n')
buf = b''
fields = []
while True:
    timeout = flush_s() if s_due else None
    try:
        ready, _, _ = select.select([0, wake_r], [], [], timeout)
    except InterruptedError:
        continue
    if wake_r in ready:
        try:
            while os.read(wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        reap()
    if 0 in ready:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buf += chunk
        parts = buf.split(b'\\0')
        buf = parts.pop()
        fields.extend(parts)
        while len(fields) >= 4:
            jid, po, pe, script = fields[:4]
            del fields[:4]
            if jid == b'':
                orderly = True
                continue
            launch(jid, po, pe, script)
reap()
flush_s(True)
if not orderly:
    for pid in list(id_of):
        try:
            os.kill(-pid, signal.SIGKILL)
        except OSError:
            pass
while id_of:
    reap(block=True)
`;

const BASH_SCRIPT = `
set +m
setsid -w bash -c : </dev/null >/dev/null 2>&1 || exit 3
printf 'R\\n'
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

/** How long open() waits for a launcher's ready line before it tries the next kind. */
const READY_TIMEOUT_MS = 10_000;

interface Pending {
  onStart: (pid: number) => void;
  /** `groupKilled`: the launcher has SIGKILLed the job's process group already. */
  onExit: (status: number, groupKilled: boolean) => void;
}

export class JobLauncher {
  private child: ChildProcess | undefined;
  private buf = '';
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private dead = false;
  /** Settles once the launcher printed its ready line (true) or exited before it (false). */
  private ready: Promise<boolean> = Promise.resolve(false);
  private onReady: (ok: boolean) => void = () => {};

  /**
   * Whether this launcher kills its jobs' process groups when the worker dies, and a job's group
   * when the job ends (python and perl do; see PERL_SCRIPT).
   */
  reapsOrphans = false;

  /** Start the launcher with the environment every job starts from (`ready` settles once it answered or died). */
  start(env: NodeJS.ProcessEnv, as: LauncherKind): void {
    const [file, args] = commandOf(as);
    this.reapsOrphans = as !== 'bash';
    this.dead = false;
    this.buf = '';
    this.ready = new Promise<boolean>((resolve) => (this.onReady = resolve));
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'inherit'], detached: this.reapsOrphans });
    this.child = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onData(chunk));
    child.stdin!.on('error', () => {
      /* handled by exit */
    });
    child.once('exit', () => this.onDead(child));
    child.once('error', () => this.onDead(child));
  }

  /**
   * Start the first launcher that runs here (python, perl, bash; WEFT_JOB_LAUNCHER=kind|direct
   * picks one) and resolve with its kind once it said it is ready, or null when none did (jobs are
   * then spawned directly). Each launcher checks what it needs itself and exits if it lacks it, so
   * nothing is probed beforehand: the worker starts it while it sets up (python takes ~70 ms to
   * start here; the probe that ran before it took as long again, on the event loop).
   * (Python was briefly off by default: tests/worker/server-restart.test.ts hung in about one run
   * in five with it. The cause was the test server's close() waiting for a keep-alive connection
   * the worker kept busy, not the launcher; see server/main.ts.)
   */
  async open(env: NodeJS.ProcessEnv): Promise<LauncherKind | null> {
    const forced = process.env['WEFT_JOB_LAUNCHER'];
    if (forced === 'direct') return null;
    const order: LauncherKind[] = forced === 'python' || forced === 'perl' || forced === 'bash' ? [forced] : ['python', 'perl', 'bash'];
    for (const as of order) {
      this.start(env, as);
      // One that neither answers nor exits (a stuck interpreter) is given up on after READY_TIMEOUT_MS.
      const child = this.child!;
      const timer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
      const ok = await this.ready;
      clearTimeout(timer);
      if (ok) return as;
    }
    this.child = undefined;
    this.reapsOrphans = false;
    return null;
  }

  get alive(): boolean {
    return this.child !== undefined && !this.dead;
  }

  /** Start `script`; callbacks receive the job's pid, then its exit status. */
  launch(out: string, err: string, script: string, onStart: (pid: number) => void, onExit: (status: number, groupKilled: boolean) => void): void {
    if (!this.alive) {
      onExit(127, false);
      return;
    }
    const id = String(++this.seq);
    this.pending.set(id, { onStart, onExit });
    if (/\0/.test(out + err + script)) {
      this.pending.delete(id);
      onExit(127, false);
      return;
    }
    this.child!.stdin!.write(`${id}\0${out}\0${err}\0${script}\0`);
  }

  /** Close stdin: the launcher exits once its jobs have ended. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || this.dead) return;
    c.stdin!.end(this.reapsOrphans ? '\0\0\0\0' : undefined);
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
      if (kind === 'R') {
        this.onReady(true);
        continue;
      }
      const p = this.pending.get(id ?? '');
      if (!p) continue;
      if (kind === 'S') p.onStart(Number(value));
      else if (kind === 'E') {
        this.pending.delete(id!);
        p.onExit(Number(value), this.reapsOrphans);
      }
    }
  }

  /** The launcher died (killed from outside): its jobs' ends can no longer be seen; report them killed. */
  private onDead(child: ChildProcess): void {
    if (child !== this.child) return; // one that open() gave up on
    this.dead = true;
    this.onReady(false);
    for (const p of this.pending.values()) p.onExit(128 + 9, false);
    this.pending.clear();
  }
}

/** Quote a string for bash (single quotes). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
