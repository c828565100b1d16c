/**
 * `weft hpc slurm ...` end to end through the real CLI binary, a real server (SQLite file) and a
 * real one-node Slurm, locally and through a real sshd. The allocation's worker is a stand-in that
 * records its argv (the full workflow run with the real worker is in slurm-flow.test.ts); every
 * other weft call inside the allocation (hpc node-status) is the real CLI.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCliPath } from '../../schedulers/index.js';
import { ensureBuilt, runWeft, type RunResult } from '../helpers/cli.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { slurmUnavailableReason, startSlurm, type SlurmCluster } from '../helpers/slurm.js';
import { sshdUnavailableReason, startSshd, type TestSshd } from '../helpers/sshd.js';
import { waitFor } from '../helpers/wait.js';

const CLI = defaultCliPath();
const slurmSkip = slurmUnavailableReason();
const sshSkip = slurmSkip ?? sshdUnavailableReason();
if (slurmSkip) console.warn(`SKIPPED tests/hpc/slurm-cli.test.ts: ${slurmSkip}`);
else if (sshSkip) console.warn(`SKIPPED the SSH part of tests/hpc/slurm-cli.test.ts: ${sshSkip}`);

// weft on the compute node: `worker` is a stand-in (records argv, sleeps WEFT_FAKE_SLEEP s); every other command is the real CLI.
const WRAPPER = `
import { appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const args = process.argv.slice(2);
if (args[0] === 'worker') {
  appendFileSync(process.env.WEFT_FAKE_LOG, JSON.stringify({ argv: args, job: process.env.SLURM_JOB_ID }) + '\\n');
  await new Promise((r) => setTimeout(r, 1000 * Number(process.env.WEFT_FAKE_SLEEP || 0)));
} else {
  const r = spawnSync(process.execPath, [${JSON.stringify(CLI)}, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
`;

/** `weft ...args` with this process's environment plus `env`. */
function weft(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runWeft(args, { env: { ...process.env, ...env }, timeoutMs: 60_000 });
}

describe.skipIf(slurmSkip !== null)('weft hpc slurm through the CLI, a real server and a real Slurm', () => {
  let cluster: SlurmCluster;
  let server: TestServer;
  let sshd: TestSshd | undefined;
  let work: string;
  let wf: string;
  let log: string;
  beforeAll(async () => {
    ensureBuilt();
    cluster = await startSlurm();
    server = await startTestServer();
    work = mkdtempSync(join(tmpdir(), 'weft-slurm-cli-'));
    chmodSync(work, 0o755);
    writeFileSync(join(work, 'weft-wrapper.mjs'), WRAPPER);
    log = join(work, 'worker.log');
    const created = await api(server.baseUrl, 'POST', '/workflows', { name: 'hpc-cli', user: 'test' });
    expect(created.status).toBe(200);
    wf = created.body._key;
    if (sshSkip === null) sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
    await server?.close();
    await cluster?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const common = () => ['--workflow', wf, '--url', server.baseUrl];
  const slurmOpts = (extra: string[] = []) => [
    ...common(),
    '--slurm-env', `SLURM_CONF=${cluster.confPath}`,
    '--work-dir', join(work, 'out'),
    '--weft-command', `${process.execPath} ${join(work, 'weft-wrapper.mjs')}`,
    ...extra,
  ];
  const records = async () => (await api(server.baseUrl, 'GET', `/workflows/${wf}/scheduled_compute_nodes`)).body.items as { _key: string; status: string; scheduler_id: string; name: string; via?: unknown }[];
  const env = () => ({ SLURM_CONF: cluster.confPath, WEFT_FAKE_LOG: log });

  it('adds a config, schedules nodes, and the records go pending → active → complete', async () => {
    const add = await weft(['hpc', 'slurm', 'add-config', ...common(), '-N', 'short', '-a', 'acct', '-p', cluster.partition, '-W', '00:05:00', '--json']);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const sub = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'short', '-n', '2', '--force', '--json'])], { ...env(), WEFT_FAKE_SLEEP: '3' });
    expect(sub.stderr).toBe('');
    const out = JSON.parse(sub.stdout) as { job_ids: string[]; keys: string[] };
    expect(out.job_ids).toHaveLength(2);
    const recs = await records();
    expect(recs.map((r) => r.scheduler_id).sort()).toEqual([...out.job_ids].sort());
    expect(recs.every((r) => ['pending', 'active'].includes(r.status))).toBe(true);
    await waitFor('an active record', async () => ((await records()).some((r) => r.status === 'active') ? true : undefined));
    await waitFor('both complete', async () => ((await records()).every((r) => r.status === 'complete') ? true : undefined));
    const workers = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; job: string });
    for (const [i, id] of out.job_ids.entries()) {
      const w = workers.find((x) => x.job === id);
      expect(w?.argv).toEqual(expect.arrayContaining(['--workflow', wf, '--scheduled-compute-node-key', out.keys[i], '--url', server.baseUrl]));
    }
    const list = await weft(['hpc', 'slurm', 'list', ...slurmOpts(['--json'])], env());
    expect((JSON.parse(list.stdout) as { status: string }[]).map((r) => r.status)).toEqual(['complete', 'complete']);
    const events = (await api(server.baseUrl, 'GET', `/workflows/${wf}/events`)).body.items as { category: string; type: string; message: string }[];
    expect(events.find((e) => e.category === 'scheduler' && e.type === 'submit')?.message).toMatch(/Submitted 2 allocation\(s\) of slurm_schedulers\/\d+ \(short\)/);
  });

  it('cancels a running allocation: Slurm cancels the job and the record says canceled', async () => {
    const sub = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'short', '-n', '1', '--force', '--json'])], { ...env(), WEFT_FAKE_SLEEP: '300' });
    const { job_ids: [id], keys: [key] } = JSON.parse(sub.stdout) as { job_ids: string[]; keys: string[] };
    await waitFor('active', async () => ((await records()).find((r) => r._key === key)?.status === 'active' ? true : undefined));
    const status = await weft(['hpc', 'slurm', 'status', ...slurmOpts(['--json']), key!], env());
    expect(JSON.parse(status.stdout)[0].live.state).toBe('running');
    const cancel = await weft(['hpc', 'slurm', 'cancel', ...slurmOpts([]), id!], env());
    expect(cancel.stdout).toMatch(new RegExp(`canceled slurm allocation ${id}`));
    expect((await records()).find((r) => r._key === key)?.status).toBe('canceled');
    await waitFor('Slurm to cancel', async () => (/CANCELLED/.test(cluster.exec(['squeue', '-h', '--states=all', '-j', id!, '-o', '%T'])) ? true : undefined));
    // The allocation's own "complete" mark after the kill must not reopen or overwrite the cancel.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await records()).find((r) => r._key === key)?.status).toBe('canceled');
  });

  it('refuses to schedule nodes when no job is ready, and names an unknown scheduler', async () => {
    const none = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'short', '-n', '1'])], env());
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no ready or scheduled jobs.*weft workflows start/);
    const unknown = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'nope', '-n', '1', '--force'])], env());
    expect(unknown.stderr).toMatch(/No slurm_schedulers document with key or name "nope"/);
  });

  it.skipIf(sshSkip !== null)('schedules over SSH, follows and cancels through the same login node; refuses a changed host key and a wrong user key', async () => {
    const s = sshd!;
    await weft(['hpc', 'slurm', 'add-config', ...common(), '-N', 'via-ssh', '-a', 'acct', '-p', cluster.partition, '-W', '00:05:00']);
    const sshArgs = ['--ssh-host', s.host, '--ssh-port', String(s.port), '--ssh-user', s.username, '--ssh-key', s.userKeyPath, '--known-hosts', s.knownHostsPath];
    const sub = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'via-ssh', '-n', '1', '--force', '--json', ...sshArgs, '--slurm-env', `WEFT_FAKE_LOG=${log}`])], { SLURM_CONF: '/nonexistent' });
    expect(sub.stderr).toBe('');
    const { job_ids: [id], keys: [key] } = JSON.parse(sub.stdout) as { job_ids: string[]; keys: string[] };
    const rec = (await records()).find((r) => r._key === key);
    expect(rec?.via).toMatchObject({ ssh: { host: s.host, port: s.port, username: s.username }, env: { SLURM_CONF: cluster.confPath, WEFT_FAKE_LOG: log } });
    await waitFor('complete', async () => ((await records()).find((r) => r._key === key)?.status === 'complete' ? true : undefined));
    expect(readFileSync(log, 'utf8')).toContain(`"job":"${id}"`);

    // A long allocation, canceled by a process that knows only the record (and this user's key).
    const long = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'via-ssh', '-n', '1', '--force', '--json', ...sshArgs, '--slurm-env', `WEFT_FAKE_LOG=${log}`, 'WEFT_FAKE_SLEEP=300'])]);
    const { job_ids: [longId], keys: [longKey] } = JSON.parse(long.stdout) as { job_ids: string[]; keys: string[] };
    await waitFor('active', async () => ((await records()).find((r) => r._key === longKey)?.status === 'active' ? true : undefined));
    const cancel = await weft(['hpc', 'cancel', ...common(), longKey!], { WEFT_SSH_KEY: s.userKeyPath, WEFT_SSH_KNOWN_HOSTS: s.knownHostsPath, SLURM_CONF: '/nonexistent' });
    expect(cancel.stderr).toBe('');
    expect(cancel.stdout).toContain(`canceled slurm allocation ${longId}`);
    await waitFor('Slurm to cancel', async () => (/CANCELLED/.test(cluster.exec(['squeue', '-h', '--states=all', '-j', longId!, '-o', '%T'])) ? true : undefined));

    const wrongHost = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'via-ssh', '-n', '1', '--force', ...sshArgs.slice(0, -1), s.wrongKnownHostsPath])]);
    expect(wrongHost.code).not.toBe(0);
    expect(wrongHost.stderr).toMatch(/host key of 127\.0\.0\.1:\d+ has CHANGED.*\[SSH_HOST_KEY_REJECTED\]/);
    const wrongKey = await weft(['hpc', 'slurm', 'schedule-nodes', ...slurmOpts(['-s', 'via-ssh', '-n', '1', '--force', ...sshArgs.slice(0, 7), s.wrongUserKeyPath, '--known-hosts', s.knownHostsPath])]);
    expect(wrongKey.code).not.toBe(0);
    expect(wrongKey.stderr).toMatch(/SSH authentication as .* failed.*\[SSH_AUTH_FAILED\]/);
    // Failed submissions leave no records behind.
    expect((await records()).filter((r) => r.status === 'uninitialized')).toEqual([]);
  });
});
