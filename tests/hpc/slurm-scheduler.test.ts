import { existsSync, mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../schedulers/local-executor.js';
import { SshExecutor } from '../../schedulers/ssh-executor.js';
import { buildSbatchScript, parseSlurmWalltime, sbatchDirectives } from '../../schedulers/sbatch-script.js';
import { mapSlurmState, parseSbatchOutput, parseSlurmExitCode, SlurmScheduler } from '../../schedulers/slurm-scheduler.js';
import type { CommandExecutor } from '../../schedulers/executor.js';
import { isFinalState } from '../../schedulers/port.js';
import { slurmUnavailableReason, startSlurm, type SlurmCluster } from '../helpers/slurm.js';
import { sshdUnavailableReason, startSshd, type TestSshd } from '../helpers/sshd.js';
import { waitFor } from '../helpers/wait.js';

const HOSTILE = `x'; touch /tmp/pwned; echo '`;

/**
 * Stands in for the weft CLI on the compute node: records its argv and Slurm environment, and as a
 * "worker" sleeps WEFT_FAKE_SLEEP seconds. The real worker runs in tests/hpc/slurm-flow.test.ts.
 */
const FAKE_WEFT = `
const fs = require('fs');
const rec = { argv: process.argv.slice(1), job: process.env.SLURM_JOB_ID, step: process.env.SLURM_STEP_ID, nodes: process.env.SLURM_JOB_NODELIST, end: process.env.WEFT_END_TIME, url: process.env.WEFT_URL };
fs.appendFileSync(process.env.WEFT_FAKE_LOG, JSON.stringify(rec) + '\\n');
if (rec.argv[0] === 'worker') setTimeout(() => process.exit(Number(process.env.WEFT_FAKE_EXIT || 0)), 1000 * Number(process.env.WEFT_FAKE_SLEEP || 0));
`;

const baseConfig = { _id: 'slurm_schedulers/7', _key: '7', name: 'short', account: 'acct', nodes: 1, qos: 'normal', walltime: '00:10:00' };
const worker = { url: 'http://127.0.0.1:8080/torc-service', workflow: '12', scheduledComputeNodeKey: '99' };

describe('sbatch request formation', () => {
  it('writes one directive per field, a per-node srun launch for multi-node allocations, and quotes every user value', () => {
    const script = buildSbatchScript({
      config: { ...baseConfig, nodes: 4, partition: 'gpu', gres: 'gpu:2', mem: '240G', tmp: '1T', ntasks_per_node: 2, extra: `--constraint="lbw & hbw" --comment='a;b' --exclusive`, qos: 'high' },
      jobName: HOSTILE,
      workDir: '/scratch/run dir',
      worker,
      weftCommand: ['/usr/bin/node', '/opt/weft app/dist/cli/main.js'],
      startOneWorkerPerNode: true,
    });
    const directives = script.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(directives).toEqual([
      `#SBATCH --job-name="x'; touch /tmp/pwned; echo '"`,
      '#SBATCH --account=acct',
      '#SBATCH --time=00:10:00',
      '#SBATCH --chdir="/scratch/run dir"',
      '#SBATCH --output="/scratch/run dir/slurm_%j.o"',
      '#SBATCH --error="/scratch/run dir/slurm_%j.e"',
      '#SBATCH --nodes=4',
      '#SBATCH --partition=gpu',
      '#SBATCH --qos=high',
      '#SBATCH --gres=gpu:2',
      '#SBATCH --mem=240G',
      '#SBATCH --tmp=1T',
      '#SBATCH --ntasks-per-node=2',
      '#SBATCH "--constraint=lbw & hbw"',
      '#SBATCH "--comment=a;b"',
      '#SBATCH --exclusive',
    ]);
    expect(script).toContain(
      `srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 /usr/bin/node '/opt/weft app/dist/cli/main.js' worker --url http://127.0.0.1:8080/torc-service --workflow 12 --scheduled-compute-node-key 99 \${weft_args[@]+"\${weft_args[@]}"}`,
    );
    expect(script).toContain(`'/opt/weft app/dist/cli/main.js' hpc node-status --url http://127.0.0.1:8080/torc-service --workflow 12 --key 99 --status active`);
    // Without the flag: one worker, on the first node, that sees every node of the allocation.
    const single = buildSbatchScript({ config: { ...baseConfig, nodes: 4 }, jobName: 'j', workDir: '/w', worker, weftCommand: ['weft'] });
    expect(single).not.toContain('srun');
    expect(single).toContain('weft worker --url');
  });

  it('refuses fields that could break out of a directive, with the field named', () => {
    expect(() => sbatchDirectives({ ...baseConfig, account: 'a\n#SBATCH --wrap=id' }, 'j', '/w')).toThrow(/account must not contain newlines/);
    expect(() => sbatchDirectives({ ...baseConfig, extra: 'hostname' }, 'j', '/w')).toThrow(/extra may hold only sbatch options; "hostname"/);
    expect(() => sbatchDirectives({ ...baseConfig, walltime: '2 hours' }, 'j', '/w')).toThrow(/walltime "2 hours" is not a Slurm time/);
  });

  it('parses Slurm times, states, exit codes and sbatch output', () => {
    expect(parseSlurmWalltime('30')).toBe(1800);
    expect(parseSlurmWalltime('4:30')).toBe(270);
    expect(parseSlurmWalltime('04:00:00')).toBe(14400);
    expect(parseSlurmWalltime('1-2')).toBe(93600);
    expect(parseSlurmWalltime('1-02:30')).toBe(95400);
    expect(parseSlurmWalltime('2-00:00:10')).toBe(172810);
    expect(parseSlurmWalltime('UNLIMITED')).toBeNull();
    expect(mapSlurmState('PENDING')).toBe('pending');
    expect(mapSlurmState('COMPLETING')).toBe('running');
    expect(mapSlurmState('CANCELLED by 0')).toBe('canceled');
    expect(mapSlurmState('TIMEOUT')).toBe('failed');
    expect(parseSlurmExitCode('2:0')).toBe(2);
    expect(parseSlurmExitCode('0:15')).toBe(143);
    expect(parseSbatchOutput('123\n')).toBe('123');
    expect(parseSbatchOutput('456;cluster\n')).toBe('456');
    expect(() => parseSbatchOutput('Submitted nothing')).toThrow(/printed no job id/);
  });
});

const slurmSkip = slurmUnavailableReason();
if (slurmSkip) console.warn(`SKIPPED real-Slurm part of tests/hpc/slurm-scheduler.test.ts: ${slurmSkip}`);
const sshSkip = slurmSkip ?? sshdUnavailableReason();
if (sshSkip && !slurmSkip) console.warn(`SKIPPED Slurm-over-SSH part of tests/hpc/slurm-scheduler.test.ts: ${sshSkip}`);

function readLog(path: string): { argv: string[]; job: string; step?: string; nodes: string; end: string; url: string }[] {
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

function suite(label: string, makeExecutor: (cluster: SlurmCluster) => Promise<{ executor: CommandExecutor; cleanup: () => Promise<void> }>) {
  let cluster: SlurmCluster;
  let executor: CommandExecutor;
  let cleanup: () => Promise<void>;
  let work: string;
  beforeAll(async () => {
    cluster = await startSlurm();
    ({ executor, cleanup } = await makeExecutor(cluster));
    work = mkdtempSync(join(tmpdir(), `weft-sl-${label}-`));
    chmodSync(work, 0o755);
  });
  afterAll(async () => {
    await cleanup?.();
    await cluster?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const scheduler = (over: Record<string, unknown> = {}, env: Record<string, string> = {}): SlurmScheduler =>
    new SlurmScheduler({
      executor,
      config: { ...baseConfig, partition: cluster.partition, ...over },
      workDir: join(work, 'slurm out'),
      weftCommand: [process.execPath, '-e', FAKE_WEFT],
      workerEnv: { WEFT_FAKE_LOG: join(work, `${label}.log`), ...env },
      retryDelayMs: 100,
    });

  it('submits with sbatch --parsable, runs the worker command in the allocation, and follows it to complete', async () => {
    const s = scheduler();
    const handle = await s.submit({ worker, name: 'weft_ok' });
    expect(handle.id).toMatch(/^\d+$/);
    const final = await waitFor('completion', async () => {
      const st = await s.status(handle);
      return isFinalState(st.state) ? st : undefined;
    });
    expect(final).toMatchObject({ state: 'complete', exitCode: 0 });
    const records = readLog(join(work, `${label}.log`)).filter((r) => r.job === handle.id);
    expect(records.map((r) => r.argv.slice(0, 3))).toEqual([
      ['hpc', 'node-status', '--url'],
      ['worker', '--url', worker.url],
      ['hpc', 'node-status', '--url'],
    ]);
    const w = records[1]!;
    expect(w.argv).toEqual(expect.arrayContaining(['--scheduler-config-id', 'slurm_schedulers/7', '--scheduled-compute-node-key', '99', '--num-cpus']));
    const end = Number(w.argv[w.argv.indexOf('--end-time') + 1]);
    expect(end).toBeGreaterThan(Date.now() / 1000 + 500); // a 10-minute walltime
    expect(end).toBeLessThan(Date.now() / 1000 + 610);
    expect(w.nodes).toBe(cluster.nodeName);
    expect(records[2]!.argv).toEqual(expect.arrayContaining(['--status', 'complete', '--allocation-id', handle.id]));
    // The script was removed after submission; Slurm's own output file exists.
    expect(existsSync(handle.scriptPath)).toBe(false);
    expect(existsSync(join(work, 'slurm out', `slurm_${handle.id}.o`))).toBe(true);
  });

  it('starts the worker through srun, one per node, when asked', async () => {
    const s = new SlurmScheduler({
      executor,
      config: { ...baseConfig, partition: cluster.partition },
      workDir: join(work, 'slurm out'),
      weftCommand: [process.execPath, '-e', FAKE_WEFT],
      workerEnv: { WEFT_FAKE_LOG: join(work, `${label}.log`) },
      startOneWorkerPerNode: true,
    });
    const handle = await s.submit({ worker, name: 'weft_per_node' });
    const final = await waitFor('completion', async () => {
      const st = await s.status(handle);
      return isFinalState(st.state) ? st : undefined;
    });
    expect(final).toMatchObject({ state: 'complete', exitCode: 0 });
    const w = readLog(join(work, `${label}.log`)).filter((r) => r.job === handle.id && r.argv[0] === 'worker');
    expect(w).toHaveLength(1); // one node here
    expect(w[0]!.step).toBe('0'); // inside a job step: srun started it
  });

  it('reports a failing worker as failed with its exit code', async () => {
    const s = scheduler({}, { WEFT_FAKE_EXIT: '3' });
    const handle = await s.submit({ worker, name: 'weft_fail' });
    const final = await waitFor('failure', async () => {
      const st = await s.status(handle);
      return isFinalState(st.state) ? st : undefined;
    });
    expect(final).toMatchObject({ state: 'failed', exitCode: 3 });
  });

  it('submits a name full of shell metacharacters as-is and runs nothing it should not', async () => {
    rmSync('/tmp/pwned', { force: true });
    const s = scheduler({ name: HOSTILE, account: `acct'; touch /tmp/pwned; echo '`, extra: `--comment="$(touch /tmp/pwned)"` });
    const handle = await s.submit({ worker: { ...worker, workflow: `12'; touch /tmp/pwned; '` }, name: HOSTILE });
    await waitFor('completion', async () => (isFinalState((await s.status(handle)).state) ? true : undefined));
    const row = cluster.exec(['squeue', '-h', '--states=all', '-j', handle.id, '-o', '%j|%a|%k']).trim();
    expect(row).toBe(`${HOSTILE}|acct'; touch /tmp/pwned; echo '|$(touch /tmp/pwned)`);
    const w = readLog(join(work, `${label}.log`)).find((r) => r.job === handle.id && r.argv[0] === 'worker');
    expect(w?.argv.slice(0, 5)).toEqual(['worker', '--url', worker.url, '--workflow', `12'; touch /tmp/pwned; '`]);
    expect(existsSync('/tmp/pwned')).toBe(false);
  });

  it('cancels a running allocation with scancel', async () => {
    const s = scheduler({}, { WEFT_FAKE_SLEEP: '300' });
    const handle = await s.submit({ worker, name: 'weft_long' });
    await waitFor('running', async () => ((await s.status(handle)).state === 'running' ? true : undefined));
    await s.cancel(handle);
    const final = await waitFor('canceled', async () => {
      const st = await s.status(handle);
      return isFinalState(st.state) ? st : undefined;
    });
    expect(final.state).toBe('canceled');
    await s.cancel(handle); // cancelling an ended allocation is not an error
  });

  it('reports sbatch refusing a request as a clear error', async () => {
    const s = scheduler({ partition: 'no_such_partition' });
    await expect(s.submit({ worker })).rejects.toThrow(/sbatch failed on .* with exit status 1: .*invalid partition/i);
  });
}

describe.skipIf(slurmSkip !== null)('SlurmScheduler on a real Slurm on this host', () => {
  suite('local', async (cluster) => ({ executor: new LocalExecutor({ env: cluster.env }), cleanup: async () => undefined }));
});

describe.skipIf(sshSkip !== null)('SlurmScheduler on a real Slurm through a real sshd', () => {
  let sshd: TestSshd;
  suite('ssh', async (cluster) => {
    sshd = await startSshd();
    const executor = new SshExecutor({ host: sshd.host, port: sshd.port, username: sshd.username, privateKeyPath: sshd.userKeyPath, knownHostsPath: sshd.knownHostsPath, env: cluster.env });
    return {
      executor,
      cleanup: async () => {
        await executor.close();
        await sshd.stop();
      },
    };
  });
});
