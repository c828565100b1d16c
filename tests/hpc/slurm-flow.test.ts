/**
 * Whole workflows on a real one-node Slurm with the real server, the real `weft worker` inside
 * the allocations, and the real `weft hpc` commands: schedule-nodes runs a workflow to
 * completion (locally and through a real sshd), the walltime end terminates a long job that
 * supports termination, automatic scheduling submits when jobs become ready and cancels queued
 * allocations no job needs any more, cancelling the workflow cancels its allocations, and names
 * full of shell metacharacters run nothing they should not.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelWorkflowAllocations, createFetchRequest } from '../../schedulers/index.js';
import { ensureBuilt, runWeft, WEFT_BIN } from '../helpers/cli.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { slurmUnavailableReason, startSlurm, type SlurmCluster } from '../helpers/slurm.js';
import { sshdUnavailableReason, startSshd, type TestSshd } from '../helpers/sshd.js';
import { waitFor as pollUntil } from '../helpers/wait.js';

const slurmSkip = slurmUnavailableReason();
const sshSkip = slurmSkip ?? sshdUnavailableReason();
if (slurmSkip) console.warn(`SKIPPED tests/hpc/slurm-flow.test.ts: ${slurmSkip}`);
else if (sshSkip) console.warn(`SKIPPED the SSH flow of tests/hpc/slurm-flow.test.ts: ${sshSkip}`);

const HOSTILE = `x'; touch /tmp/pwned-flow; echo '`;

/** This suite polls every 300 ms, 120 s by default. */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> => pollUntil(what, fn, timeoutMs, 300);

interface JobSpec {
  name: string;
  command: string;
  blocked_by?: string[];
  supports_termination?: boolean;
  schedule_compute_nodes?: Record<string, unknown>;
  bound?: boolean;
  runtime?: string;
}

describe.skipIf(slurmSkip !== null)('workflows on a real Slurm with the real worker', () => {
  let cluster: SlurmCluster;
  let server: TestServer;
  let sshd: TestSshd | undefined;
  let work: string;

  beforeAll(async () => {
    ensureBuilt();
    cluster = await startSlurm({ cpus: 2, realMemoryMb: 2048 });
    server = await startTestServer();
    work = mkdtempSync(join(tmpdir(), 'weft-flow-'));
    chmodSync(work, 0o755);
    if (sshSkip === null) sshd = await startSshd();
  }, 180_000);
  afterAll(async () => {
    await sshd?.stop();
    await server?.close();
    await cluster?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const base = () => server.baseUrl;
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await api(base(), method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  };

  /** A workflow with one Slurm scheduler and the given jobs (bound to it unless bound: false). */
  async function createWorkflow(opts: { name: string; schedulerName?: string; walltime?: string; jobs: JobSpec[]; config?: Record<string, unknown>; mem?: string }) {
    const wf = (await call('POST', '/workflows', { name: opts.name, user: 'test' }))._key as string;
    const sched = await call('POST', `/workflows/${wf}/slurm_schedulers`, {
      name: opts.schedulerName ?? 'short',
      account: 'acct',
      nodes: 1,
      partition: cluster.partition,
      walltime: opts.walltime ?? '00:10:00',
      mem: opts.mem ?? '1000M',
    });
    const rrs = new Map<string, string>();
    for (const runtime of new Set(opts.jobs.map((j) => j.runtime ?? 'P0DT1M'))) {
      rrs.set(runtime, (await call('POST', `/workflows/${wf}/resource_requirements`, { name: `rr_${runtime}`, num_cpus: 1, memory: '100m', runtime }))._id);
    }
    const keys = new Map<string, string>();
    for (const j of opts.jobs) {
      const body: Record<string, unknown> = {
        name: j.name,
        command: j.command,
        resource_requirements: rrs.get(j.runtime ?? 'P0DT1M'),
        ...(j.bound === false ? {} : { scheduler: sched._id }),
        ...(j.blocked_by ? { blocked_by: j.blocked_by.map((n) => keys.get(n)) } : {}),
        ...(j.supports_termination ? { supports_termination: true } : {}),
        ...(j.schedule_compute_nodes ? { schedule_compute_nodes: { scheduler_id: sched._id, num_jobs: 1, ...j.schedule_compute_nodes } } : {}),
      };
      keys.set(j.name, (await call('POST', `/workflows/${wf}/jobs`, body))._key);
    }
    if (opts.config) {
      const cfg = await call('GET', `/workflows/${wf}/config`);
      await call('PUT', `/workflows/${wf}/config`, { ...cfg, ...opts.config });
    }
    return { wf, sched, keys };
  }

  /** Start: run_id + 1, then initialize_jobs (the start sequence of the API contract). */
  async function start(wf: string): Promise<void> {
    const st = await call('GET', `/workflows/${wf}/status`);
    await call('PUT', `/workflows/${wf}/status`, { ...st, run_id: (st.run_id as number) + 1 });
    await call('POST', `/workflows/${wf}/initialize_jobs`, {});
  }

  const slurmArgs = (wf: string, extra: string[] = []) => [
    '--workflow', wf, '--url', base(),
    '--slurm-env', `SLURM_CONF=${cluster.confPath}`,
    '--work-dir', join(work, `wf${wf}`),
    ...extra,
  ];
  const env = () => ({ ...process.env, SLURM_CONF: cluster.confPath });
  const jobs = async (wf: string) => (await call('GET', `/workflows/${wf}/jobs`)).items as { _key: string; name: string; status: string }[];
  const results = async (wf: string) => (await call('GET', `/workflows/${wf}/results`)).items as { job_key: string; return_code: number; status: string }[];
  const records = async (wf: string) => (await call('GET', `/workflows/${wf}/scheduled_compute_nodes`)).items as { _key: string; status: string; scheduler_id: string }[];
  const events = async (wf: string) => (await call('GET', `/workflows/${wf}/events`)).items as { category?: string; type?: string; message?: string }[];
  const complete = async (wf: string) => ((await call('GET', `/workflows/${wf}/is_complete`)).is_complete === true ? true : undefined);

  const diamond = (tag: string): JobSpec[] => [
    { name: `pre ${tag}`, command: `bash -c 'echo pre'` },
    { name: `work1 ${tag}`, command: `bash -c 'sleep 1; echo one'`, blocked_by: [`pre ${tag}`] },
    { name: `work2 ${tag}`, command: `bash -c 'sleep 1; echo two'`, blocked_by: [`pre ${tag}`] },
    { name: `post ${tag}`, command: `bash -c 'echo post'`, blocked_by: [`work1 ${tag}`, `work2 ${tag}`] },
  ];

  it('schedule-nodes runs a workflow to completion inside a Slurm allocation; hostile names run nothing', async () => {
    rmSync('/tmp/pwned-flow', { force: true });
    const { wf } = await createWorkflow({ name: 'diamond', schedulerName: HOSTILE, jobs: diamond(HOSTILE) });
    await start(wf);
    const sub = await runWeft(['hpc', 'slurm', 'schedule-nodes', ...slurmArgs(wf, ['-s', HOSTILE, '-n', '1', '-j', HOSTILE, '--json'])], { env: env(), timeoutMs: 60_000 });
    expect(sub.stderr).toBe('');
    const { job_ids: [jobId] } = JSON.parse(sub.stdout) as { job_ids: string[] };
    await waitFor('the workflow to complete', () => complete(wf));
    const rs = await results(wf);
    expect(rs).toHaveLength(4);
    expect(rs.every((r) => r.return_code === 0)).toBe(true);
    expect((await jobs(wf)).every((j) => j.status === 'done')).toBe(true);
    const nodes = (await call('GET', `/workflows/${wf}/compute_nodes`)).items as unknown[];
    expect(nodes).toHaveLength(1);
    await waitFor('the record to complete', async () => ((await records(wf))[0]?.status === 'complete' ? true : undefined), 60_000);
    // The record is marked complete before the allocation's script exits: wait for Slurm to agree.
    const line = await waitFor('Slurm to see the allocation end', async () => {
      const out = cluster.exec(['squeue', '-h', '--states=all', '-j', jobId!, '-o', '%j|%T']).trim();
      return /\|(COMPLETED|COMPLETING)$/.test(out) ? out : undefined;
    }, 60_000);
    expect(line).toMatch(new RegExp(`^${HOSTILE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_\\d+\\|(COMPLETED|COMPLETING)$`));
    expect(existsSync('/tmp/pwned-flow')).toBe(false);
  });

  it('the walltime end terminates a long job that supports termination', async () => {
    const { wf, keys } = await createWorkflow({
      name: 'walltime',
      walltime: '00:01:00',
      config: { compute_node_expiration_buffer_seconds: 30 },
      jobs: [{ name: 'long', command: `bash -c 'trap "echo got-term; exit 7" TERM; sleep 600 & wait'`, supports_termination: true, runtime: 'PT10S' }],
    });
    await start(wf);
    const t0 = Date.now();
    const sub = await runWeft(['hpc', 'slurm', 'schedule-nodes', ...slurmArgs(wf, ['-s', 'short', '-n', '1', '--json'])], { env: env(), timeoutMs: 60_000 });
    expect(sub.stderr).toBe('');
    await waitFor('the long job to be terminated', async () => ((await jobs(wf)).find((j) => j._key === keys.get('long'))?.status === 'terminated' ? true : undefined), 90_000);
    const elapsed = (Date.now() - t0) / 1000;
    expect(elapsed).toBeLessThan(60); // before Slurm's own time limit
    const r = (await results(wf)).find((x) => x.job_key === keys.get('long'));
    expect(r).toMatchObject({ status: 'terminated', return_code: 7 });
  });

  it('automatic scheduling submits when jobs become ready, and the workflow completes', async () => {
    const { wf } = await createWorkflow({
      name: 'auto',
      jobs: [
        { name: 'first', command: `bash -c 'echo first'`, schedule_compute_nodes: {} },
        { name: 'second', command: `bash -c 'echo second'`, blocked_by: ['first'], schedule_compute_nodes: {} },
      ],
    });
    await start(wf);
    const watch = spawn(process.execPath, [WEFT_BIN, 'hpc', 'watch', ...slurmArgs(wf, ['-i', '2'])], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    watch.stderr.on('data', (d: Buffer) => (log += d.toString()));
    watch.stdout.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => watch.once('exit', (code) => r(code)));
    try {
      await waitFor('the workflow to complete', () => complete(wf));
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))])).toBe(0);
    } finally {
      if (watch.exitCode === null) watch.kill('SIGTERM');
    }
    const submits = (await events(wf)).filter((e) => e.category === 'scheduler' && e.type === 'submit');
    expect(submits.length).toBeGreaterThanOrEqual(1);
    expect(submits[0]!.message).toMatch(/1 ready job\(s\) need slurm_schedulers\/\d+ \(first\) and it has no allocation queued or running/);
    expect(log).toMatch(/submitted 1 allocation/);
    // Never two allocations at once for the same scheduler.
    expect((await records(wf)).length).toBe(submits.length);
  });

  it('automatic scheduling cancels a queued allocation that no remaining job needs', async () => {
    // Keep the node busy so the allocation stays queued.
    const blocker = cluster.exec(['sbatch', '--parsable', `--mem=${cluster.realMemoryMb}M`, '--output=/dev/null', '--wrap', 'sleep 300']).trim();
    try {
      await waitFor('the blocker to run', async () => (/RUNNING/.test(cluster.exec(['squeue', '-h', '-j', blocker, '-o', '%T'])) ? true : undefined), 30_000);
      const { wf } = await createWorkflow({ name: 'unneeded', jobs: [{ name: 'anywhere', command: `bash -c 'echo anywhere'`, schedule_compute_nodes: {}, bound: false }] });
      await start(wf);
      const first = await runWeft(['hpc', 'watch', '--once', '--json', ...slurmArgs(wf)], { env: env(), timeoutMs: 60_000 });
      expect(JSON.parse(first.stdout)).toMatchObject({ submitted: [expect.any(String)] });
      const [rec] = await records(wf);
      expect(rec?.status).toBe('pending');
      // A worker on this host runs the job (it is not bound to the scheduler).
      const w = await runWeft(['worker', '--url', base(), '--workflow', wf, '--output-dir', join(work, `local${wf}`)], { env: env(), timeoutMs: 90_000 });
      expect(w.code).toBe(0);
      await waitFor('the workflow to complete', () => complete(wf), 30_000);
      const second = await runWeft(['hpc', 'watch', '--once', '--json', ...slurmArgs(wf)], { env: env(), timeoutMs: 60_000 });
      expect(JSON.parse(second.stdout)).toMatchObject({ canceled: [rec!._key], finished: true });
      expect((await records(wf))[0]?.status).toBe('canceled');
      expect(cluster.exec(['squeue', '-h', '--states=all', '-j', rec!.scheduler_id, '-o', '%T']).trim()).toBe('CANCELLED');
      const cancels = (await events(wf)).filter((e) => e.category === 'scheduler' && e.type === 'cancel');
      expect(cancels[0]?.message).toMatch(/Why: it is still queued and no remaining job needs slurm_schedulers\/\d+/);
    } finally {
      cluster.exec(['scancel', blocker]);
    }
  });

  it('cancelling the workflow cancels its allocations', async () => {
    const { wf } = await createWorkflow({ name: 'cancel', jobs: [{ name: 'sleepy', command: `bash -c 'sleep 600'` }] });
    await start(wf);
    const sub = await runWeft(['hpc', 'slurm', 'schedule-nodes', ...slurmArgs(wf, ['-s', 'short', '-n', '1', '--json'])], { env: env(), timeoutMs: 60_000 });
    const { job_ids: [jobId] } = JSON.parse(sub.stdout) as { job_ids: string[] };
    await waitFor('the job to run', async () => ((await jobs(wf))[0]?.status === 'submitted' ? true : undefined), 60_000);
    await call('PUT', `/workflows/${wf}/cancel`, {});
    const canceled = await cancelWorkflowAllocations(createFetchRequest(base()), wf, { slurm: { env: { SLURM_CONF: cluster.confPath } } });
    expect(canceled.map((r) => r.scheduler_id)).toEqual([jobId]);
    await waitFor('Slurm to cancel', async () => (/CANCELLED/.test(cluster.exec(['squeue', '-h', '--states=all', '-j', jobId!, '-o', '%T'])) ? true : undefined), 30_000);
    expect((await records(wf))[0]?.status).toBe('canceled');
  });

  it.skipIf(sshSkip !== null)('the same flow through a real sshd: schedule-nodes over SSH runs the workflow to completion', async () => {
    const s = sshd!;
    const { wf } = await createWorkflow({ name: 'ssh', jobs: diamond('ssh') });
    await start(wf);
    const sub = await runWeft(
      ['hpc', 'slurm', 'schedule-nodes', ...slurmArgs(wf, ['-s', 'short', '-n', '1', '--json', '--ssh-host', s.host, '--ssh-port', String(s.port), '--ssh-user', s.username, '--ssh-key', s.userKeyPath, '--known-hosts', s.knownHostsPath])],
      { env: { ...process.env, SLURM_CONF: '/nonexistent' }, timeoutMs: 60_000 },
    );
    expect(sub.stderr).toBe('');
    await waitFor('the workflow to complete', () => complete(wf));
    expect((await results(wf)).every((r) => r.return_code === 0)).toBe(true);
    await waitFor('the record to complete', async () => ((await records(wf))[0]?.status === 'complete' ? true : undefined), 60_000);
  });
});
