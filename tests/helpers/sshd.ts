/**
 * A real OpenSSH server on 127.0.0.1 for tests: its own host key, user key, authorized_keys and
 * sshd_config in a temporary directory, on a free port. `stop()` ends exactly the sshd it started.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface TestSshd {
  host: string;
  port: number;
  username: string;
  dir: string;
  /** Private key accepted by the server. */
  userKeyPath: string;
  /** Private key the server does not accept. */
  wrongUserKeyPath: string;
  /** known_hosts with the server's real host key. */
  knownHostsPath: string;
  /** known_hosts that names this host with some other key (as after a reinstall or an attack). */
  wrongKnownHostsPath: string;
  /** known_hosts that does not mention this host. */
  emptyKnownHostsPath: string;
  /** sshd's own log (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

/** Why the sshd suite cannot run here, or null when it can. */
export function sshdUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root to run sshd (privilege separation); run as root as CI does';
  if (!existsSync(SSHD)) return `${SSHD} is not installed (apt-get install -y openssh-server, as .ci/run does)`;
  if (!existsSync('/usr/bin/ssh-keygen')) return '/usr/bin/ssh-keygen is not installed (apt-get install -y openssh-client)';
  return null;
}

function keygen(path: string, comment: string): void {
  execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { stdio: 'ignore' });
}

function publicKey(path: string): string {
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

async function waitForBanner(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with status ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Start sshd. Throws with sshd's log when it does not come up. */
export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-sshd-'));
  const hostKey = join(dir, 'host_key');
  const otherHostKey = join(dir, 'other_host_key');
  const userKey = join(dir, 'user_key');
  const wrongUserKey = join(dir, 'wrong_user_key');
  keygen(hostKey, 'weft-test-host');
  keygen(otherHostKey, 'weft-test-other-host');
  keygen(userKey, 'weft-test-user');
  keygen(wrongUserKey, 'weft-test-stranger');
  writeFileSync(join(dir, 'authorized_keys'), `${publicKey(userKey)}\n`, { mode: 0o600 });
  const port = await freePort();
  const hostName = `[127.0.0.1]:${port}`;
  const hostPub = publicKey(hostKey).split(/\s+/).slice(0, 2).join(' ');
  const otherPub = publicKey(otherHostKey).split(/\s+/).slice(0, 2).join(' ');
  writeFileSync(join(dir, 'known_hosts'), `${hostName} ${hostPub}\n`);
  writeFileSync(join(dir, 'wrong_known_hosts'), `${hostName} ${otherPub}\n`);
  writeFileSync(join(dir, 'empty_known_hosts'), `[127.0.0.1]:1 ${hostPub}\n`);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'MaxSessions 50',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  // sshd needs its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const logPath = join(dir, 'sshd.log');
  const child = spawn(SSHD, ['-D', '-e', '-f', config, '-E', logPath], { stdio: 'ignore' });
  const log = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  try {
    await waitForBanner(port, child, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${log()}`);
  }
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    username: userInfo().username,
    dir,
    userKeyPath: userKey,
    wrongUserKeyPath: wrongUserKey,
    knownHostsPath: join(dir, 'known_hosts'),
    wrongKnownHostsPath: join(dir, 'wrong_known_hosts'),
    emptyKnownHostsPath: join(dir, 'empty_known_hosts'),
    log,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
