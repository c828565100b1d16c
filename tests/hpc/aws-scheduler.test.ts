import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsScheduler, buildUserData, mapInstanceState } from '../../schedulers/aws-scheduler.js';
import { isFinalState } from '../../schedulers/port.js';
import { startFakeEc2, type FakeEc2 } from '../helpers/fake-ec2.js';
import { waitFor } from '../helpers/wait.js';

const HOSTILE = `x'; touch /tmp/pwned-aws; echo '`;

// Stands in for weft on the instance: records its argv; as a worker, sleeps WEFT_FAKE_SLEEP seconds.
const FAKE_WEFT = `
import { appendFileSync } from 'node:fs';
appendFileSync(process.env.WEFT_FAKE_LOG, JSON.stringify({ argv: process.argv.slice(2), pid: process.pid, instance: process.env.WEFT_FAKE_EC2_INSTANCE_ID }) + '\\n');
if (process.argv[2] === 'worker') setTimeout(() => {}, 1000 * Number(process.env.WEFT_FAKE_SLEEP || 0));
`;

/** True when the process exists and is not a zombie waiting to be reaped. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('AwsScheduler through a local EC2-compatible endpoint', () => {
  let ec2: FakeEc2;
  let dir: string;
  let log: string;
  const saved = { ...process.env };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-aws-'));
    log = join(dir, 'weft.log');
    writeFileSync(join(dir, 'fake-weft.mjs'), FAKE_WEFT);
    ec2 = await startFakeEc2();
    // Credentials come from the SDK's usual chain: here, the environment.
    process.env['AWS_ACCESS_KEY_ID'] = 'AKIDTEST';
    process.env['AWS_SECRET_ACCESS_KEY'] = 'secret';
    delete process.env['AWS_PROFILE'];
  });
  afterAll(async () => {
    await ec2?.stop();
    process.env = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (over: Record<string, unknown> = {}) => ({
    _id: 'aws_schedulers/3',
    _key: '3',
    name: 'cloud',
    region: 'us-east-1',
    instance_type: 'c5.large',
    ami_id: 'ami-0123456789',
    key_name: 'mykey',
    subnet_id: 'subnet-1',
    security_group_ids: ['sg-1', 'sg-2'],
    tags: { project: 'weft tests' },
    weft_command: `${process.execPath} ${join(dir, 'fake-weft.mjs')}`,
    ...over,
  });
  const make = (over: Record<string, unknown> = {}, env: Record<string, string> = {}) =>
    new AwsScheduler({ config: config(over), endpoint: ec2.url, workerEnv: { WEFT_FAKE_LOG: log, ...env } });
  const worker = { url: 'http://127.0.0.1:8080/torc-service', workflow: '5', scheduledComputeNodeKey: '77' };
  const records = (instance: string) =>
    (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []).filter(Boolean).map((l) => JSON.parse(l) as { argv: string[]; pid: number; instance: string }).filter((r) => r.instance === instance);

  it('starts an instance whose user data runs the worker, which then shuts the instance down', async () => {
    const s = make();
    try {
      const handle = await s.submit({ worker, name: 'weft_5_a' });
      expect(handle.id).toMatch(/^i-/);
      const final = await waitFor('instance end', async () => {
        const st = await s.status(handle);
        return isFinalState(st.state) ? st : undefined;
      });
      expect(final).toMatchObject({ state: 'complete', detail: 'terminated (Client.InstanceInitiatedShutdown)' });
      expect(records(handle.id).map((r) => r.argv.slice(0, 2))).toEqual([
        ['hpc', 'node-status'],
        ['worker', '--url'],
        ['hpc', 'node-status'],
      ]);
      expect(records(handle.id)[1]!.argv).toEqual(['worker', '--url', worker.url, '--workflow', '5', '--scheduler-config-id', 'aws_schedulers/3', '--scheduled-compute-node-key', '77']);
      const inst = ec2.instances.get(handle.id)!;
      expect(inst).toMatchObject({ imageId: 'ami-0123456789', instanceType: 'c5.large', keyName: 'mykey', subnetId: 'subnet-1', securityGroupIds: ['sg-1', 'sg-2'], shutdownBehavior: 'terminate' });
      expect(inst.tags).toEqual({ Name: 'weft_5_a', 'weft:workflow': '5', 'weft:scheduler': 'aws_schedulers/3', 'weft:scheduled-compute-node': '77', project: 'weft tests' });
    } finally {
      s.close();
    }
  });

  it('terminates a running instance on cancel, killing its worker', async () => {
    const s = make({}, { WEFT_FAKE_SLEEP: '300' });
    try {
      const handle = await s.submit({ worker });
      const rec = await waitFor('worker start', async () => records(handle.id).find((r) => r.argv[0] === 'worker'));
      expect((await s.status(handle)).state).toBe('running');
      await s.cancel(handle);
      const final = await waitFor('terminated', async () => {
        const st = await s.status(handle);
        return isFinalState(st.state) ? st : undefined;
      });
      expect(final.state).toBe('canceled');
      await waitFor('instance terminated', async () => ((await s.status(handle)).detail?.startsWith('terminated') ? true : undefined));
      expect(isAlive(rec.pid)).toBe(false);
      await s.cancel(handle); // terminating again is fine
    } finally {
      s.close();
    }
  });

  it('asks for spot instances and an instance profile when the document says so, and respects max_instances', async () => {
    const s = make({ market: 'spot', iam_instance_profile: 'weft-node', max_instances: 1 }, { WEFT_FAKE_SLEEP: '300' });
    try {
      const input = s.runInstancesInput({ worker });
      expect(input.InstanceMarketOptions).toEqual({ MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } });
      expect(input.IamInstanceProfile).toEqual({ Name: 'weft-node' });
      const first = await s.submit({ worker });
      expect(ec2.instances.get(first.id)).toMatchObject({ market: 'spot', iamInstanceProfile: 'weft-node' });
      await expect(s.submit({ worker })).rejects.toThrow(/already has 1 instances pending or running \(max_instances 1\)/);
      await s.cancel(first);
    } finally {
      s.close();
    }
  });

  it('quotes hostile names and keys in the user data; nothing runs that should not', async () => {
    rmSync('/tmp/pwned-aws', { force: true });
    const s = make({ name: HOSTILE, tags: { [HOSTILE]: HOSTILE } });
    try {
      const handle = await s.submit({ worker: { ...worker, workflow: HOSTILE, url: `http://127.0.0.1:1/$(touch /tmp/pwned-aws)` }, name: HOSTILE });
      await waitFor('instance end', async () => (isFinalState((await s.status(handle)).state) ? true : undefined));
      const w = records(handle.id).find((r) => r.argv[0] === 'worker');
      expect(w?.argv.slice(0, 5)).toEqual(['worker', '--url', 'http://127.0.0.1:1/$(touch /tmp/pwned-aws)', '--workflow', HOSTILE]);
      expect(ec2.instances.get(handle.id)!.tags[HOSTILE]).toBe(HOSTILE);
      expect(existsSync('/tmp/pwned-aws')).toBe(false);
    } finally {
      s.close();
    }
  });

  it('gives clear errors: unknown instance, missing ami_id, EC2 refusing a request, no region', async () => {
    const s = make();
    try {
      expect(await s.status({ kind: 'aws', id: 'i-doesnotexist' })).toMatchObject({ state: 'unknown' });
      await s.cancel({ kind: 'aws', id: 'i-doesnotexist' });
      expect(() => make({ ami_id: null }).runInstancesInput({ worker })).toThrow(/has no ami_id/);
      expect(() => buildUserData(config({ weft_command: `'unterminated` }), worker)).toThrow(/weft_command has an unterminated ' quote/);
    } finally {
      s.close();
    }
    const noRegion = new AwsScheduler({ config: config({ region: null }), endpoint: undefined });
    const savedRegion = [process.env['AWS_REGION'], process.env['AWS_DEFAULT_REGION']];
    delete process.env['AWS_REGION'];
    delete process.env['AWS_DEFAULT_REGION'];
    process.env['AWS_CONFIG_FILE'] = join(dir, 'no-config');
    try {
      await expect(noRegion.submit({ worker })).rejects.toThrow(/No AWS region/);
    } finally {
      noRegion.close();
      if (savedRegion[0]) process.env['AWS_REGION'] = savedRegion[0];
      if (savedRegion[1]) process.env['AWS_DEFAULT_REGION'] = savedRegion[1];
    }
  });

  it('maps instance states', () => {
    expect(mapInstanceState({ State: { Name: 'pending' } })).toBe('pending');
    expect(mapInstanceState({ State: { Name: 'terminated' }, StateReason: { Code: 'Server.SpotInstanceTermination' } })).toBe('failed');
    expect(mapInstanceState({ State: { Name: 'shutting-down' }, StateReason: { Code: 'Client.UserInitiatedShutdown' } })).toBe('canceled');
  });
});
