/**
 * The orphan reaper: a small bash process, started once per worker in its own session, that
 * kills every job process group still registered when the worker's pipe to it closes. The worker
 * registers a group when a job starts and removes it when the job ends; if the worker dies (even
 * by SIGKILL, which it cannot catch) the kernel closes the pipe and the reaper SIGKILLs the
 * groups that were running. `setpriv --pdeathsig` covers only the job's first process; this covers
 * everything the job started. Used where the job launcher does not do this itself (the bash
 * launcher, jobs spawned by the worker); the perl launcher does (launcher.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `
declare -A g
while read -r op pg; do
  case "$op" in
    +) g[$pg]=1 ;;
    -) unset "g[$pg]" ;;
  esac
done
for pg in "\${!g[@]}"; do kill -KILL -- "-$pg" 2>/dev/null; done
exit 0
`;

export class OrphanReaper {
  private child: ChildProcess | undefined;

  get started(): boolean {
    return this.child !== undefined;
  }

  /** Start the reaper; a no-op where bash cannot start (the worker still works, with less protection). */
  start(): void {
    if (this.child) return;
    try {
      this.child = spawn('bash', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      this.child.on('error', () => {
        this.child = undefined;
      });
      this.child.stdin?.on('error', () => {
        /* the reaper died: nothing to write to */
      });
      this.child.unref();
      (this.child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    } catch {
      this.child = undefined;
    }
  }

  add(pgid: number): void {
    this.child?.stdin?.write(`+ ${pgid}\n`);
  }

  remove(pgid: number): void {
    this.child?.stdin?.write(`- ${pgid}\n`);
  }

  /** Close the pipe: the reaper kills what is still registered (normally nothing) and exits. */
  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5_000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      c.stdin?.end();
    });
  }
}
