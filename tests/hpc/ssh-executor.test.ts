import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshExecutor } from '../../schedulers/ssh-executor.js';
import { LocalExecutor } from '../../schedulers/local-executor.js';
import { startSshd, sshdUnavailableReason, type TestSshd } from '../helpers/sshd.js';

const skipReason = sshdUnavailableReason();
if (skipReason) console.warn(`SKIPPED tests/hpc/ssh-executor.test.ts: ${skipReason}`);

describe('LocalExecutor', () => {
  it('passes argv without a shell and reports exit codes and missing programs', async () => {
    const ex = new LocalExecutor({ env: { WEFT_T: 'v' } });
    const r = await ex.run(['/bin/sh', '-c', 'printf "%s|%s" "$1" "$WEFT_T"; exit 3', 'sh', `x'; touch /tmp/pwned-local; echo '`]);
    expect(r).toMatchObject({ code: 3, stdout: `x'; touch /tmp/pwned-local; echo '|v` });
    expect(existsSync('/tmp/pwned-local')).toBe(false);
    await expect(ex.run(['weft-no-such-program'])).rejects.toThrow(/weft-no-such-program was not found on this host/);
    await expect(ex.run(['/bin/sleep', '5'], { timeoutMs: 200 })).rejects.toThrow(/did not finish within 200 ms/);
  });
});

describe.skipIf(skipReason !== null)('SshExecutor against a real OpenSSH sshd on 127.0.0.1', () => {
  let sshd: TestSshd;
  let work: string;
  beforeAll(async () => {
    sshd = await startSshd();
    work = mkdtempSync(join(tmpdir(), 'weft-ssh-work-'));
  });
  afterAll(async () => {
    await sshd?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const make = (over: Partial<ConstructorParameters<typeof SshExecutor>[0]> = {}): SshExecutor =>
    new SshExecutor({ host: sshd.host, port: sshd.port, username: sshd.username, privateKeyPath: sshd.userKeyPath, knownHostsPath: sshd.knownHostsPath, readyTimeoutMs: 10_000, ...over });

  it('runs hostile argv exactly, with env and cwd, over one reused connection', async () => {
    const ex = make({ env: { WEFT_REMOTE: `a b'c` } });
    try {
      const hostile = `x'; touch /tmp/pwned-ssh; echo '`;
      const r1 = await ex.run(['printf', '%s\\0', hostile, '$(id)', '`id`', '']);
      expect(r1.code).toBe(0);
      expect(r1.stdout.split('\0').slice(0, -1)).toEqual([hostile, '$(id)', '`id`', '']);
      expect(existsSync('/tmp/pwned-ssh')).toBe(false);
      const r2 = await ex.run(['/bin/sh', '-c', 'pwd; printf %s "$WEFT_REMOTE"; echo oops >&2; exit 4'], { cwd: work });
      expect(r2).toMatchObject({ code: 4, stdout: `${work}\na b'c`, stderr: 'oops\n' });
      expect(ex.connectCount).toBe(1);
    } finally {
      await ex.close();
    }
  });

  it('uploads, reads back and makes directories over SFTP', async () => {
    const ex = make();
    try {
      const dir = join(work, 'a b', `c'd`);
      await ex.mkdirp(dir);
      const path = join(dir, 'script.sh');
      await ex.writeFile(path, '#!/bin/sh\necho uploaded\n', 0o750);
      expect(await ex.readFile(path)).toBe('#!/bin/sh\necho uploaded\n');
      expect(await ex.readFile(join(dir, 'missing'))).toBeNull();
      expect((await ex.run([path])).stdout).toBe('uploaded\n');
      expect(ex.connectCount).toBe(1);
    } finally {
      await ex.close();
    }
  });

  it('refuses a changed host key, naming the fingerprint and the known_hosts file', async () => {
    const ex = make({ knownHostsPath: sshd.wrongKnownHostsPath });
    await expect(ex.run(['true'])).rejects.toMatchObject({
      code: 'SSH_HOST_KEY_REJECTED',
      message: expect.stringMatching(new RegExp(`host key of 127\\.0\\.0\\.1:${sshd.port} has CHANGED: the server presented SHA256:.*${sshd.wrongKnownHostsPath.replace(/[.]/g, '\\.')}`)),
    });
  });

  it('refuses a host that is not in known_hosts', async () => {
    const ex = make({ knownHostsPath: sshd.emptyKnownHostsPath });
    await expect(ex.run(['true'])).rejects.toMatchObject({ code: 'SSH_HOST_KEY_REJECTED', message: expect.stringMatching(/is not in .*refusing to connect to an unknown host/) });
  });

  it('reports a key the server does not accept as an authentication failure', async () => {
    const ex = make({ privateKeyPath: sshd.wrongUserKeyPath });
    await expect(ex.run(['true'])).rejects.toMatchObject({
      code: 'SSH_AUTH_FAILED',
      message: expect.stringMatching(new RegExp(`SSH authentication as ${sshd.username} to 127\\.0\\.0\\.1:${sshd.port} failed.*wrong_user_key`)),
    });
  });

  it('reports a port with nothing listening, and a handshake that never comes, as connection failures', async () => {
    const { freePort } = await import('../helpers/ports.js');
    const closed = await freePort();
    await expect(make({ port: closed }).run(['true'])).rejects.toMatchObject({ code: 'SSH_CONNECTION_FAILED', message: expect.stringMatching(/ECONNREFUSED/) });
    // A TCP server that never speaks SSH: the handshake times out.
    const net = await import('node:net');
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      await expect(make({ port, readyTimeoutMs: 500 }).run(['true'])).rejects.toMatchObject({ code: 'SSH_CONNECTION_FAILED', message: expect.stringMatching(/did not complete the SSH handshake within 500 ms/) });
    } finally {
      silent.close();
    }
  });
});
