/**
 * AwsScheduler: an allocation is one EC2 instance whose user data starts `weft worker` against
 * the server, marks its scheduled compute node active and complete, and shuts the instance down
 * (which terminates it) when the worker exits. Built on the official SDK (@aws-sdk/client-ec2):
 * credentials and region come from the SDK's usual chain unless given; the endpoint can be
 * overridden (a local EC2-compatible endpoint in the tests).
 */
import type { EC2Client, EC2ClientConfig, Instance, RunInstancesCommandInput, Tag } from '@aws-sdk/client-ec2';
import { WeftError } from '../graph/errors.js';
import type { AwsScheduler as AwsSchedulerDoc } from '../graph/model.js';
import { workerArgs, type AllocationHandle, type AllocationState, type AllocationStatus, type Scheduler, type SchedulerCapabilities, type SubmitRequest, type WorkerLaunchOptions } from './port.js';
import { assertNoControlChars, shellJoin, shellQuote, splitArgs } from './shell-quote.js';

type Ec2Sdk = typeof import('@aws-sdk/client-ec2');
let sdkLoading: Promise<Ec2Sdk> | undefined;
/** The SDK is loaded on first use: it takes about half a second, which every other weft command would pay. */
function loadSdk(): Promise<Ec2Sdk> {
  return (sdkLoading ??= import('@aws-sdk/client-ec2'));
}

export interface AwsSchedulerOptions {
  /** The aws_schedulers document. */
  config: AwsSchedulerDoc;
  /** EC2 endpoint URL (default: the SDK's, from region). */
  endpoint?: string;
  /** Region (default: config.region, then the SDK chain: AWS_REGION, profile). */
  region?: string;
  /** Explicit credentials (default: the SDK chain). */
  credentials?: EC2ClientConfig['credentials'];
  /** Environment exported in the user data before the worker starts. */
  workerEnv?: Readonly<Record<string, string>>;
  /** Shut the instance down (terminating it) when the worker exits. Default true. */
  shutdownOnExit?: boolean;
}

export interface AwsAllocationHandle extends AllocationHandle {
  readonly kind: 'aws';
  /** The instance id. */
  readonly id: string;
}

/** Tag keys Weft puts on its instances. */
export const WEFT_TAGS = {
  scheduler: 'weft:scheduler',
  workflow: 'weft:workflow',
  scheduledComputeNode: 'weft:scheduled-compute-node',
} as const;

/** The user data script for one instance (plain text; the SDK call base64-encodes it). */
export function buildUserData(config: AwsSchedulerDoc, worker: WorkerLaunchOptions, options: { env?: Readonly<Record<string, string>>; shutdownOnExit?: boolean } = {}): string {
  const weft = config.weft_command ? splitArgs(config.weft_command, 'weft_command') : ['weft'];
  if (weft.length === 0) throw new WeftError('VALIDATION_FAILED', 'weft_command must name a program', { details: [{ path: ['weft_command'], message: 'is empty', rule: 'min' }] });
  const lines = ['#!/bin/bash', '# Written by Weft. Every value below that came from a user is single-quoted.'];
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new WeftError('VALIDATION_FAILED', `Invalid environment variable name ${JSON.stringify(k)}`);
    assertNoControlChars(v, `env.${k}`);
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(`export WEFT_URL=${shellQuote(worker.url)}`, `export WEFT_WORKFLOW_KEY=${shellQuote(worker.workflow)}`);
  if (config.setup_script) lines.push('', '# setup_script of the aws_schedulers document, as the user wrote it', config.setup_script, '');
  lines.push('set -u');
  const key = worker.scheduledComputeNodeKey;
  const mark = (status: string): string =>
    `${shellJoin([...weft, 'hpc', 'node-status', '--url', worker.url, '--workflow', worker.workflow, '--key', key ?? '', '--status', status])} || echo "weft: could not mark the scheduled compute node ${status}" >&2`;
  if (key !== undefined) lines.push(mark('active'));
  lines.push(shellJoin([...weft, ...workerArgs(worker)]), 'weft_status=$?');
  if (key !== undefined) lines.push(mark('complete'));
  if (options.shutdownOnExit ?? true) lines.push('shutdown -h now');
  lines.push('exit "$weft_status"', '');
  return lines.join('\n');
}

/** EC2 instance state (and why it stopped) → allocation state. */
export function mapInstanceState(instance: Instance): AllocationState {
  const name = instance.State?.Name;
  const reason = instance.StateReason?.Code ?? '';
  switch (name) {
    case 'pending':
      return 'pending';
    case 'running':
      return 'running';
    case 'stopping':
    case 'stopped':
    case 'shutting-down':
    case 'terminated':
      if (reason.includes('InstanceInitiatedShutdown')) return 'complete';
      if (reason.includes('UserInitiatedShutdown')) return 'canceled';
      return reason === '' ? 'complete' : 'failed';
    default:
      return 'unknown';
  }
}

export class AwsScheduler implements Scheduler<AwsAllocationHandle> {
  readonly capabilities: SchedulerCapabilities = { kind: 'aws', canCancel: true, reportsExitCode: false, multiNode: false };
  readonly config: AwsSchedulerDoc;
  private client: EC2Client | undefined;
  private readonly options: AwsSchedulerOptions;

  constructor(options: AwsSchedulerOptions) {
    this.options = options;
    this.config = options.config;
    const region = options.region ?? options.config.region ?? undefined;
    // The SDK warns on every Node 20 process about its future Node 22 floor; Weft supports Node 20,
    // and the warning would land in every `weft hpc aws` command's output. A user's own setting wins.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    this.clientConfig = {
      ...(region ? { region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: 3,
    };
  }

  private readonly clientConfig: EC2ClientConfig;

  /** The RunInstances input `submit` sends (for dry runs and tests). */
  runInstancesInput(request: SubmitRequest): RunInstancesCommandInput {
    const c = this.config;
    if (!c.ami_id) throw new WeftError('VALIDATION_FAILED', `aws_schedulers ${c.name ?? c._key ?? ''} has no ami_id`, { details: [{ path: ['ami_id'], message: 'required to start instances', rule: 'required' }] });
    if (!c.instance_type) throw new WeftError('VALIDATION_FAILED', `aws_schedulers ${c.name ?? c._key ?? ''} has no instance_type`, { details: [{ path: ['instance_type'], message: 'required to start instances', rule: 'required' }] });
    const worker = { ...request.worker, schedulerConfigId: request.worker.schedulerConfigId ?? c._id };
    const userData = buildUserData(c, worker, { env: this.options.workerEnv, shutdownOnExit: this.options.shutdownOnExit });
    const tags: Tag[] = [
      { Key: 'Name', Value: request.name ?? `weft_${worker.workflow}` },
      { Key: WEFT_TAGS.workflow, Value: worker.workflow },
      ...(c._id ? [{ Key: WEFT_TAGS.scheduler, Value: c._id }] : []),
      ...(worker.scheduledComputeNodeKey ? [{ Key: WEFT_TAGS.scheduledComputeNode, Value: worker.scheduledComputeNodeKey }] : []),
      ...Object.entries(c.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
    ];
    return {
      ImageId: c.ami_id,
      InstanceType: c.instance_type as RunInstancesCommandInput['InstanceType'],
      MinCount: 1,
      MaxCount: 1,
      KeyName: c.key_name ?? undefined,
      SubnetId: c.subnet_id ?? undefined,
      SecurityGroupIds: c.security_group_ids ?? undefined,
      IamInstanceProfile: c.iam_instance_profile ? (c.iam_instance_profile.startsWith('arn:') ? { Arn: c.iam_instance_profile } : { Name: c.iam_instance_profile }) : undefined,
      UserData: Buffer.from(userData, 'utf8').toString('base64'),
      InstanceInitiatedShutdownBehavior: 'terminate',
      InstanceMarketOptions: c.market === 'spot' ? { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } } : undefined,
      TagSpecifications: [{ ResourceType: 'instance', Tags: tags }],
    };
  }

  /** Instances of this scheduler that are pending or running. */
  async activeInstances(): Promise<Instance[]> {
    if (!this.config._id) return [];
    const id = this.config._id;
    const out = await this.call('DescribeInstances', (c, sdk) =>
      c.send(
        new sdk.DescribeInstancesCommand({
          Filters: [
            { Name: `tag:${WEFT_TAGS.scheduler}`, Values: [id] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      ),
    );
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  }

  /** RunInstances for one instance; refuses beyond max_instances. */
  async submit(request: SubmitRequest): Promise<AwsAllocationHandle> {
    const input = this.runInstancesInput(request);
    const max = this.config.max_instances;
    if (max !== undefined && max !== null) {
      const active = await this.activeInstances();
      if (active.length >= max) {
        throw new WeftError('SCHEDULER_FAILED', `aws_schedulers ${this.config.name ?? this.config._key ?? ''} already has ${active.length} instances pending or running (max_instances ${max})`);
      }
    }
    const out = await this.call('RunInstances', (c, sdk) => c.send(new sdk.RunInstancesCommand(input)));
    const id = out.Instances?.[0]?.InstanceId;
    if (!id) throw new WeftError('SCHEDULER_FAILED', 'RunInstances returned no instance id');
    return { kind: 'aws', id, name: request.name };
  }

  async status(handle: AwsAllocationHandle): Promise<AllocationStatus> {
    let instance: Instance | undefined;
    try {
      const out = await this.call('DescribeInstances', (c, sdk) => c.send(new sdk.DescribeInstancesCommand({ InstanceIds: [handle.id] })));
      instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === handle.id);
    } catch (err) {
      if (err instanceof WeftError && /InvalidInstanceID/.test(err.message)) return { state: 'unknown', detail: `EC2 does not know instance ${handle.id}` };
      throw err;
    }
    if (instance === undefined) return { state: 'unknown', detail: `EC2 does not list instance ${handle.id}` };
    const reason = instance.StateReason?.Code ? ` (${instance.StateReason.Code})` : '';
    return { state: mapInstanceState(instance), exitCode: null, detail: `${instance.State?.Name ?? 'unknown'}${reason}` };
  }

  /** TerminateInstances; an instance that is already gone is not an error. */
  async cancel(handle: AwsAllocationHandle): Promise<void> {
    try {
      await this.call('TerminateInstances', (c, sdk) => c.send(new sdk.TerminateInstancesCommand({ InstanceIds: [handle.id] })));
    } catch (err) {
      if (err instanceof WeftError && /InvalidInstanceID\.NotFound/.test(err.message)) return;
      throw err;
    }
  }

  /** Release the SDK's sockets. */
  close(): void {
    this.client?.destroy();
    this.client = undefined;
  }

  private async call<T>(action: string, fn: (client: EC2Client, sdk: Ec2Sdk) => Promise<T>): Promise<T> {
    const sdk = await loadSdk();
    this.client ??= new sdk.EC2Client(this.clientConfig);
    try {
      return await fn(this.client, sdk);
    } catch (err) {
      const e = err as Error & { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
      const code = e.Code ?? e.name ?? 'Error';
      if (/Region is missing/i.test(e.message)) {
        throw new WeftError('VALIDATION_FAILED', 'No AWS region: set region in the aws_schedulers document, AWS_REGION, or an AWS profile', { cause: err, details: [{ path: ['region'], message: 'missing', rule: 'required' }] });
      }
      if (/credential/i.test(e.message) && e.$metadata?.httpStatusCode === undefined) {
        throw new WeftError('SCHEDULER_FAILED', `No AWS credentials for ${action}: ${e.message}`, { cause: err });
      }
      throw new WeftError('SCHEDULER_FAILED', `EC2 ${action} failed: ${code}: ${e.message}`, { cause: err });
    }
  }
}
