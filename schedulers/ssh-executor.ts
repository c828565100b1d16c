/**
 * SshExecutor: scheduler commands on a remote login node over SSH (ssh2).
 *
 * - Authentication by private key (file or text, optional passphrase) or by ssh-agent.
 * - The host key is checked against known_hosts like `ssh -o StrictHostKeyChecking=yes`: an
 *   unknown host and a changed key are both refused with SSH_HOST_KEY_REJECTED.
 * - One connection (and one SFTP session) is opened on first use and reused by every call; it is
 *   reopened if the server drops it.
 * - Remote commands are built from argv with the POSIX single-quote escaper; nothing from the
 *   caller reaches the remote shell unquoted. Scripts are uploaded over SFTP.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { WeftError } from '../graph/errors.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, type CommandExecutor, type ExecOptions, type ExecResult } from './executor.js';
import { algorithmsForKeyType, knownKeyTypes, parseKnownHosts, verifyHostKey, type HostKeyVerdict } from './known-hosts.js';
import { shellJoin, shellQuote } from './shell-quote.js';

export interface SshExecutorOptions {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** Path of a private key file. */
  privateKeyPath?: string;
  /** Private key text (instead of a path). */
  privateKey?: string | Buffer;
  passphrase?: string;
  /** ssh-agent socket. Default: `SSH_AUTH_SOCK` when no private key is given. */
  agent?: string;
  /** known_hosts file. Default `~/.ssh/known_hosts`. */
  knownHostsPath?: string;
  /** Milliseconds to wait for the SSH handshake and authentication. Default 20 000. */
  readyTimeoutMs?: number;
  /** Default command timeout in milliseconds. Default 60 000. */
  commandTimeoutMs?: number;
  /** Environment set for every remote command (through `env`), e.g. SLURM_CONF. */
  env?: Readonly<Record<string, string>>;
  /** Run commands through `bash -lc` so the login profile sets PATH (module systems). Default false. */
  loginShell?: boolean;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** SHA256:... as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export class SshExecutor implements CommandExecutor {
  readonly description: string;
  private readonly options: SshExecutorOptions;
  private readonly port: number;
  private readonly knownHostsPath: string;
  private connection: Promise<Client> | null = null;
  private sftpSession: Promise<SFTPWrapper> | null = null;
  /** Why the last host key was refused (set by the verifier, read when the handshake fails). */
  private hostKeyRejection: string | null = null;
  /** Connections opened so far (tests check reuse). */
  connectCount = 0;

  constructor(options: SshExecutorOptions) {
    this.options = options;
    this.port = options.port ?? 22;
    this.knownHostsPath = options.knownHostsPath ?? join(homedir(), '.ssh', 'known_hosts');
    this.description = `ssh ${options.username}@${options.host}:${this.port}`;
    for (const name of Object.keys(options.env ?? {})) {
      if (!ENV_NAME.test(name)) throw new WeftError('VALIDATION_FAILED', `Invalid environment variable name for remote commands: ${JSON.stringify(name)}`);
    }
  }

  /** The remote shell line for argv (exported for tests and for logs). */
  commandLine(argv: readonly string[], options: ExecOptions = {}): string {
    const env = { ...this.options.env, ...options.env };
    for (const name of Object.keys(env)) {
      if (!ENV_NAME.test(name)) throw new WeftError('VALIDATION_FAILED', `Invalid environment variable name: ${JSON.stringify(name)}`);
    }
    const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const words = pairs.length > 0 ? ['env', ...pairs, ...argv] : [...argv];
    let line = shellJoin(words);
    if (options.cwd !== undefined) line = `cd ${shellQuote(options.cwd)} && ${line}`;
    return this.options.loginShell ? shellJoin(['bash', '-lc', line]) : line;
  }

  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new WeftError('VALIDATION_FAILED', 'An empty command cannot be run');
    const client = await this.connect();
    const line = this.commandLine(argv, options);
    const timeoutMs = options.timeoutMs ?? this.options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      client.exec(line, (err, stream) => (err ? reject(this.channelError(err)) : resolve(stream)));
    });
    return new Promise<ExecResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      const timer = setTimeout(() => {
        channel.close();
        reject(new WeftError('SCHEDULER_FAILED', `${argv[0] ?? ''} did not finish within ${timeoutMs} ms on ${this.description}`));
      }, timeoutMs);
      channel.on('data', (d: Buffer) => out.push(d));
      channel.stderr.on('data', (d: Buffer) => errOut.push(d));
      channel.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s;
      });
      channel.on('close', () => {
        clearTimeout(timer);
        resolve({
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errOut).toString('utf8'),
          code: code ?? (signal !== undefined ? 128 + (SIGNALS[signal] ?? 0) : -1),
        });
      });
    });
  }

  async writeFile(path: string, content: string, mode = 0o644): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) => {
      sftp.writeFile(path, content, { mode }, (err) => (err ? reject(sftpError('write', path, this.description, err)) : resolve()));
    });
    await new Promise<void>((resolve, reject) => {
      sftp.chmod(path, mode, (err) => (err ? reject(sftpError('chmod', path, this.description, err)) : resolve()));
    });
  }

  async readFile(path: string): Promise<string | null> {
    const sftp = await this.sftp();
    return new Promise<string | null>((resolve, reject) => {
      sftp.readFile(path, (err: (Error & { code?: number }) | undefined, data: Buffer) => {
        if (err) {
          // SFTP status 2 is NO_SUCH_FILE.
          if (err.code === 2) resolve(null);
          else reject(sftpError('read', path, this.description, err));
        } else {
          resolve(data.toString('utf8'));
        }
      });
    });
  }

  async mkdirp(path: string): Promise<void> {
    const r = await this.run(['mkdir', '-p', '--', path]);
    if (r.code !== 0) throw new WeftError('SCHEDULER_FAILED', `mkdir -p ${path} failed on ${this.description}: ${r.stderr.trim()}`);
  }

  async close(): Promise<void> {
    const pending = this.connection;
    this.connection = null;
    this.sftpSession = null;
    if (pending === null) return;
    const client = await pending.catch(() => null);
    if (client === null) return;
    await new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      client.end();
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    if (this.sftpSession === null) {
      const session = this.connect().then(
        (client) =>
          new Promise<SFTPWrapper>((resolve, reject) => {
            client.sftp((err, sftp) => (err ? reject(this.channelError(err)) : resolve(sftp)));
          }),
      );
      session.catch(() => {
        if (this.sftpSession === session) this.sftpSession = null;
      });
      this.sftpSession = session;
    }
    return this.sftpSession;
  }

  /** The shared connection, opened on first use. */
  private connect(): Promise<Client> {
    if (this.connection === null) {
      const attempt = this.open();
      attempt.catch(() => {
        if (this.connection === attempt) this.connection = null;
      });
      this.connection = attempt;
    }
    return this.connection;
  }

  private loadKnownHosts(): ReturnType<typeof parseKnownHosts> {
    try {
      return parseKnownHosts(readFileSync(this.knownHostsPath, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new WeftError('SSH_HOST_KEY_REJECTED', `Cannot read known_hosts file ${this.knownHostsPath}: ${(err as Error).message}`, { cause: err });
    }
  }

  private authConfig(): Pick<ConnectConfig, 'privateKey' | 'passphrase' | 'agent'> {
    const o = this.options;
    let privateKey: string | Buffer | undefined = o.privateKey;
    if (privateKey === undefined && o.privateKeyPath !== undefined) {
      try {
        privateKey = readFileSync(o.privateKeyPath);
      } catch (err) {
        throw new WeftError('SSH_AUTH_FAILED', `Cannot read the SSH private key ${o.privateKeyPath}: ${(err as Error).message}`, { cause: err });
      }
    }
    const agent = o.agent ?? (privateKey === undefined ? process.env['SSH_AUTH_SOCK'] : undefined);
    if (privateKey === undefined && agent === undefined) {
      throw new WeftError('SSH_AUTH_FAILED', `No SSH credentials for ${this.description}: give a private key or run an ssh-agent (SSH_AUTH_SOCK)`);
    }
    return { privateKey, passphrase: o.passphrase, agent };
  }

  private open(): Promise<Client> {
    const host = this.options.host;
    const entries = this.loadKnownHosts();
    const auth = this.authConfig();
    const preferred = knownKeyTypes(entries, host, this.port).flatMap(algorithmsForKeyType);
    this.hostKeyRejection = null;
    const readyTimeout = this.options.readyTimeoutMs ?? 20_000;
    const client = new Client();
    this.connectCount += 1;
    return new Promise<Client>((resolve, reject) => {
      let settled = false;
      client.once('ready', () => {
        settled = true;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (!settled) {
          settled = true;
          reject(this.connectError(err, readyTimeout));
        }
      });
      client.on('close', () => {
        if (!settled) {
          settled = true;
          reject(new WeftError('SSH_CONNECTION_FAILED', `${this.description} closed the connection during the handshake`));
        }
        this.connection = null;
        this.sftpSession = null;
      });
      try {
        client.connect({
          host,
          port: this.port,
          username: this.options.username,
          ...auth,
          readyTimeout,
          keepaliveInterval: 15_000,
          algorithms: preferred.length > 0 ? { serverHostKey: { prepend: preferred } as never } : undefined,
          hostVerifier: (key: Buffer) => {
            const verdict = verifyHostKey(entries, host, this.port, key);
            this.hostKeyRejection = this.describeVerdict(verdict, key);
            return verdict.verdict === 'match';
          },
        });
      } catch (err) {
        settled = true;
        reject(new WeftError('SSH_AUTH_FAILED', `Cannot use the SSH credentials for ${this.description}: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  private describeVerdict(verdict: HostKeyVerdict, key: Buffer): string | null {
    const where = `${this.options.host}:${this.port}`;
    switch (verdict.verdict) {
      case 'match':
        return null;
      case 'revoked':
        return `The host key of ${where} (${fingerprint(key)}) is marked @revoked in ${this.knownHostsPath}: refusing to connect`;
      case 'mismatch':
        return `The host key of ${where} has CHANGED: the server presented ${fingerprint(key)}, which differs from the key in ${this.knownHostsPath}. Refusing to connect (the host may have been reinstalled, or someone may be intercepting the connection); remove the old entry only if you trust the new key`;
      case 'unknown':
        return `${where} is not in ${this.knownHostsPath} (server key ${fingerprint(key)}): refusing to connect to an unknown host; add its key first (ssh-keyscan -p ${this.port} ${this.options.host})`;
    }
  }

  private connectError(err: Error & { level?: string; code?: string }, readyTimeout: number): WeftError {
    if (this.hostKeyRejection !== null) return new WeftError('SSH_HOST_KEY_REJECTED', this.hostKeyRejection, { cause: err });
    if (err.level === 'client-authentication') {
      const how = [this.options.privateKeyPath ? `key ${this.options.privateKeyPath}` : this.options.privateKey ? 'the given key' : null, this.options.agent || (!this.options.privateKey && !this.options.privateKeyPath) ? 'ssh-agent' : null]
        .filter(Boolean)
        .join(' and ');
      return new WeftError('SSH_AUTH_FAILED', `SSH authentication as ${this.options.username} to ${this.options.host}:${this.port} failed: the server accepted none of the offered credentials (${how})`, { cause: err });
    }
    if (err.level === 'client-timeout') {
      return new WeftError('SSH_CONNECTION_FAILED', `${this.description} did not complete the SSH handshake within ${readyTimeout} ms`, { cause: err });
    }
    if (err.message.includes('privateKey') || err.message.includes('private key') || err.message.includes('passphrase')) {
      return new WeftError('SSH_AUTH_FAILED', `Cannot use the SSH private key for ${this.description}: ${err.message}`, { cause: err });
    }
    return new WeftError('SSH_CONNECTION_FAILED', `Cannot connect to ${this.description}: ${err.message}`, { cause: err });
  }

  private channelError(err: Error): WeftError {
    return new WeftError('SSH_CONNECTION_FAILED', `${this.description} refused a channel: ${err.message}`, { cause: err });
  }
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, TERM: 15, SEGV: 11, PIPE: 13, ABRT: 6 };

function sftpError(op: string, path: string, where: string, err: Error): WeftError {
  return new WeftError('SCHEDULER_FAILED', `SFTP ${op} of ${path} failed on ${where}: ${err.message}`, { cause: err });
}
