/**
 * A real one-node Slurm for tests (Debian's slurm-wlm), as root: its own munged (own key and
 * socket), slurmctld and slurmd in the foreground as children of this process, with a slurm.conf
 * in a temporary directory on free ports. Commands find it through SLURM_CONF (`cluster.env`).
 * `stop()` ends exactly the daemons it started (and the jobs still running under them).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface SlurmCluster {
  dir: string;
  confPath: string;
  /** Environment for Slurm commands: `{ SLURM_CONF }`. */
  env: Record<string, string>;
  nodeName: string;
  partition: string;
  cpus: number;
  realMemoryMb: number;
  /** Run a Slurm command synchronously against this cluster. */
  exec(argv: readonly string[]): string;
  /** The daemons' logs (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

export interface StartSlurmOptions {
  /** CPUs the node advertises. Default 2. */
  cpus?: number;
  /** Node memory in MB. Default 2048. */
  realMemoryMb?: number;
}

const BINARIES = ['/usr/sbin/munged', '/usr/bin/munge', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch', '/usr/bin/squeue', '/usr/bin/scancel', '/usr/bin/sinfo', '/usr/bin/scontrol'];

/** Why the Slurm suites cannot run here, or null when they can. */
export function slurmUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root to start munged, slurmctld and slurmd; run as root as CI (.ci/run) does';
  const missing = BINARIES.filter((b) => !existsSync(b));
  if (missing.length > 0) return `Slurm/munge binaries missing (${missing.join(', ')}): apt-get install -y slurm-wlm munge, as .ci/run does`;
  return null;
}

function daemon(file: string, args: string[], env: NodeJS.ProcessEnv, logPath: string): ChildProcess {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: string[] = [];
  const append = (d: Buffer): void => {
    chunks.push(d.toString());
    writeFileSync(logPath, chunks.join(''));
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return child;
}

async function until(what: string, check: () => boolean, timeoutMs: number, onTimeout: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms\n${onTimeout()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Start munged, slurmctld and slurmd; resolves when the node is idle. */
export async function startSlurm(options: StartSlurmOptions = {}): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-slurm-'));
  chmodSync(dir, 0o755); // munged wants every directory above its socket searchable
  for (const sub of ['state', 'spool', 'log', 'munge']) mkdirSync(join(dir, sub), { mode: 0o755 });
  const keyPath = join(dir, 'munge', 'munge.key');
  writeFileSync(keyPath, randomBytes(1024), { mode: 0o400 });
  const socket = join(dir, 'munge', 'socket');
  const node = hostname();
  const cpus = options.cpus ?? 2;
  const realMemoryMb = options.realMemoryMb ?? 2048;
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const confPath = join(dir, 'slurm.conf');
  writeFileSync(
    confPath,
    [
      `ClusterName=weft${randomBytes(3).toString('hex')}`,
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core_Memory',
      'ReturnToService=2',
      'MpiDefault=none',
      'MinJobAge=600',
      'KillWait=10',
      'OverTimeLimit=0',
      'InactiveLimit=0',
      'SchedulerParameters=sched_interval=2',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${realMemoryMb} State=UNKNOWN`,
      `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: confPath };
  const started: ChildProcess[] = [];
  const logs = (): string =>
    ['munged.out', 'slurmctld.out', 'slurmd.out', 'slurmctld.log', 'slurmd.log']
      .map((f) => join(dir, 'log', f))
      .filter((p) => existsSync(p))
      .map((p) => `--- ${p}\n${readFileSync(p, 'utf8').split('\n').slice(-40).join('\n')}`)
      .join('\n');
  const stopAll = async (): Promise<void> => {
    for (const child of started.reverse()) await stopChild(child);
  };
  const ok = (argv: string[]): boolean => {
    try {
      execFileSync(argv[0] ?? '', argv.slice(1), { env, stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  try {
    started.push(
      daemon('/usr/sbin/munged', ['-F', '-f', `--socket=${socket}`, `--key-file=${keyPath}`, `--pid-file=${join(dir, 'munge', 'pid')}`, `--seed-file=${join(dir, 'munge', 'seed')}`, `--log-file=${join(dir, 'log', 'munged.log')}`], env, join(dir, 'log', 'munged.out')),
    );
    await until('munged did not create its socket', () => existsSync(socket), 10_000, logs);
    started.push(daemon('/usr/sbin/slurmctld', ['-D', '-f', confPath], env, join(dir, 'log', 'slurmctld.out')));
    await until('slurmctld did not answer', () => ok(['/usr/bin/scontrol', 'ping']), 20_000, logs);
    started.push(daemon('/usr/sbin/slurmd', ['-D', '-f', confPath, '-N', node], env, join(dir, 'log', 'slurmd.out')));
    await until(
      'the Slurm node did not become idle',
      () => {
        try {
          return execFileSync('/usr/bin/sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8' }).trim() === 'idle';
        } catch {
          return false;
        }
      },
      30_000,
      logs,
    );
  } catch (err) {
    await stopAll();
    throw err;
  }
  let stopped = false;
  return {
    dir,
    confPath,
    env: { SLURM_CONF: confPath },
    nodeName: node,
    partition: 'debug',
    cpus,
    realMemoryMb,
    exec: (argv) => execFileSync(argv[0] ?? '', argv.slice(1), { env, encoding: 'utf8' }),
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Cancel what is still queued or running so no job outlives its cluster.
      ok(['/usr/bin/scancel', '--full', `--partition=debug`]);
      await until('jobs did not end after scancel', () => {
        try {
          return execFileSync('/usr/bin/squeue', ['-h', '-o', '%i'], { env, encoding: 'utf8' }).trim() === '';
        } catch {
          return true;
        }
      }, 20_000, logs).catch(() => undefined);
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
