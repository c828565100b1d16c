/**
 * `weft hpc aws ...` through the real CLI binary and a real server, against the local
 * EC2-compatible endpoint (the SDK's endpoint override). Instance user data really runs: the real
 * `weft hpc node-status` marks the record, and a stand-in records the worker's argv.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCliPath } from '../../schedulers/index.js';
import { ensureBuilt, runWeft, type RunResult } from '../helpers/cli.js';
import { startFakeEc2, type FakeEc2 } from '../helpers/fake-ec2.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const CLI = defaultCliPath();

const WRAPPER = `
import { appendFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const args = process.argv.slice(2);
if (args[0] === 'worker') {
  appendFileSync(process.env.WEFT_FAKE_LOG, JSON.stringify({ argv: args, instance: process.env.WEFT_FAKE_EC2_INSTANCE_ID }) + '\\n');
  if (existsSync(process.env.WEFT_FAKE_LOG + '.sleep')) await new Promise((r) => setTimeout(r, 300_000));
} else {
  process.exit(spawnSync(process.execPath, [${JSON.stringify(CLI)}, ...args], { stdio: 'inherit' }).status ?? 1);
}
`;

/** `weft ...args` with this process's environment plus `env`. */
function weft(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runWeft(args, { env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret', ...env }, timeoutMs: 60_000 });
}

describe('weft hpc aws through the CLI, a real server and a local EC2 endpoint', () => {
  let server: TestServer;
  let ec2: FakeEc2;
  let dir: string;
  let wf: string;
  let log: string;
  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'weft-aws-cli-'));
    log = join(dir, 'worker.log');
    writeFileSync(join(dir, 'wrapper.mjs'), WRAPPER);
    server = await startTestServer();
    ec2 = await startFakeEc2({ env: { WEFT_FAKE_LOG: log } });
    wf = (await api(server.baseUrl, 'POST', '/workflows', { name: 'aws', user: 'test' })).body._key;
  });
  afterAll(async () => {
    await ec2?.stop();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const common = () => ['-w', wf, '-u', server.baseUrl];
  const records = async () => (await api(server.baseUrl, 'GET', `/workflows/${wf}/scheduled_compute_nodes`)).body.items as { _key: string; status: string; scheduler_id: string }[];

  it('adds a config, starts instances that run the worker, follows them to complete, and cancels a running one', async () => {
    const add = await weft(['hpc', 'aws', 'add-config', ...common(), '-N', 'cloud', '--ami-id', 'ami-1', '--instance-type', 'c5.large', '--region', 'us-west-2', '--tag', 'team=hpc', '--weft-command', `${process.execPath} ${join(dir, 'wrapper.mjs')}`, '--json']);
    expect(add.stderr).toBe('');
    const sub = await weft(['hpc', 'aws', 'schedule-nodes', ...common(), '-s', 'cloud', '-n', '2', '--force', '--aws-endpoint', ec2.url, '--json']);
    expect(sub.stderr).toBe('');
    const { job_ids: ids, keys } = JSON.parse(sub.stdout) as { job_ids: string[]; keys: string[] };
    expect(ids.every((i) => i.startsWith('i-'))).toBe(true);
    await waitFor('both complete', async () => ((await records()).filter((r) => keys.includes(r._key)).every((r) => r.status === 'complete') ? true : undefined));
    const workers = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; instance: string });
    expect(workers.map((w) => w.instance).sort()).toEqual([...ids].sort());
    expect(ec2.instances.get(ids[0]!)?.tags).toMatchObject({ team: 'hpc', 'weft:workflow': wf });
    const list = await weft(['hpc', 'aws', 'list', ...common(), '--aws-endpoint', ec2.url, '--json']);
    expect((JSON.parse(list.stdout) as { live: { detail: string } }[]).map((v) => v.live.detail)).toEqual(['from the record', 'from the record']);
    expect(ids.map((i) => ec2.instances.get(i)?.state)).toEqual(['terminated', 'terminated']);

    // A long-running instance: canceled by a process that knows only the record (endpoint recorded with it).
    writeFileSync(`${log}.sleep`, '');
    const long = await weft(['hpc', 'aws', 'schedule-nodes', ...common(), '-s', 'cloud', '-n', '1', '--force', '--aws-endpoint', ec2.url, '--json']);
    const { job_ids: [id], keys: [key] } = JSON.parse(long.stdout) as { job_ids: string[]; keys: string[] };
    await waitFor('active', async () => ((await records()).find((r) => r._key === key)?.status === 'active' ? true : undefined));
    await waitFor('the worker', async () => (readFileSync(log, 'utf8').includes(id!) ? true : undefined));
    const cancel = await weft(['hpc', 'cancel', ...common()]);
    expect(cancel.stderr).toBe('');
    expect(cancel.stdout).toContain(`canceled aws allocation ${id}`);
    expect((await records()).find((r) => r._key === key)?.status).toBe('canceled');
    await waitFor('terminated', async () => (ec2.instances.get(id!)?.state === 'terminated' ? true : undefined));
    expect(ec2.actions).toContain('TerminateInstances');
  });
});
