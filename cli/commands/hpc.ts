/**
 * `weft hpc ...`: put workers where the compute is.
 *
 *   weft hpc slurm add-config | list-configs | schedule-nodes | list | status | cancel
 *   weft hpc aws add-config | schedule-nodes | list | cancel
 *   weft hpc list | cancel          (every scheduler type)
 *   weft hpc watch                  (the reconcile loop)
 *   weft hpc node-status            (run inside allocations: marks the scheduled compute node)
 *
 * The server URL comes from --url, then WEFT_URL, then http://127.0.0.1:8080/torc-service.
 */
import { Command, Option } from 'commander';
import { WeftError } from '../../graph/errors.js';
import {
  AllocationManager,
  createFetchRequest,
  runReconcileLoop,
  reconcileOnce,
  schedulerTypeOf,
  splitArgs,
  type AllocationRecord,
  type AllocationView,
  type RequestFn,
  type SchedulerContext,
  type SchedulerType,
  type WorkerLaunchOptions,
} from '../../schedulers/index.js';

const DEFAULT_URL = 'http://127.0.0.1:8080/torc-service';

interface CommonOptions {
  url?: string;
  workflow: string;
  json?: boolean;
}

interface ContextOptions {
  sshHost?: string;
  sshPort?: string;
  sshUser?: string;
  sshKey?: string;
  sshAgent?: string;
  knownHosts?: string;
  slurmEnv?: string[];
  workDir?: string;
  weftCommand?: string;
  keepSubmissionScripts?: boolean;
  awsEndpoint?: string;
  awsRegion?: string;
}

interface WorkerOptions {
  maxParallelJobs?: string;
  pollIntervalSeconds?: string;
  waitForNewJobsSeconds?: string;
  workerOutputDir?: string;
}

function urlOf(opts: { url?: string }, cmd: Command): string {
  const globals = cmd.optsWithGlobals() as { url?: string };
  return opts.url ?? globals.url ?? process.env['WEFT_URL'] ?? DEFAULT_URL;
}

function requestFor(url: string): RequestFn {
  return createFetchRequest(url);
}

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new WeftError('VALIDATION_FAILED', `--${name} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function envPairs(pairs: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new WeftError('VALIDATION_FAILED', `--slurm-env takes NAME=VALUE, got ${JSON.stringify(p)}`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

function contextOf(o: ContextOptions): SchedulerContext {
  const sshHost = o.sshHost ?? process.env['WEFT_SSH_HOST'];
  const sshUser = o.sshUser ?? process.env['WEFT_SSH_USER'] ?? process.env['USER'] ?? 'root';
  const sshKey = o.sshKey ?? process.env['WEFT_SSH_KEY'];
  const env = envPairs(o.slurmEnv);
  if (process.env['SLURM_CONF'] && env['SLURM_CONF'] === undefined && sshHost) env['SLURM_CONF'] = process.env['SLURM_CONF'];
  return {
    slurm: {
      ...(sshHost
        ? {
            ssh: {
              host: sshHost,
              port: int('ssh-port', o.sshPort ?? process.env['WEFT_SSH_PORT']) ?? 22,
              username: sshUser,
              ...(sshKey ? { privateKeyPath: sshKey } : {}),
              ...(o.sshAgent ? { agent: o.sshAgent } : {}),
              ...((o.knownHosts ?? process.env['WEFT_SSH_KNOWN_HOSTS']) ? { knownHostsPath: o.knownHosts ?? process.env['WEFT_SSH_KNOWN_HOSTS'] } : {}),
            },
          }
        : {}),
      env,
      ...(o.workDir ? { workDir: o.workDir.startsWith('/') ? o.workDir : `${process.cwd()}/${o.workDir}` } : {}),
      ...(o.weftCommand ? { weftCommand: splitArgs(o.weftCommand, 'weft-command') } : {}),
      keepScripts: o.keepSubmissionScripts ?? false,
    },
    aws: {
      ...((o.awsEndpoint ?? process.env['WEFT_AWS_ENDPOINT']) ? { endpoint: o.awsEndpoint ?? process.env['WEFT_AWS_ENDPOINT'] } : {}),
      ...(o.awsRegion ? { region: o.awsRegion } : {}),
    },
  };
}

function addCommon(cmd: Command): Command {
  return cmd
    .requiredOption('-w, --workflow <key>', 'workflow key')
    .option('-u, --url <url>', `server URL including the base path (env WEFT_URL, default ${DEFAULT_URL})`)
    .option('--json', 'print JSON');
}

function addContext(cmd: Command): Command {
  return cmd
    .option('--ssh-host <host>', 'run Slurm commands on this login node over SSH (env WEFT_SSH_HOST)')
    .option('--ssh-port <port>', 'SSH port (default 22)')
    .option('--ssh-user <user>', 'SSH user (default $USER)')
    .option('--ssh-key <path>', 'SSH private key (default: ssh-agent)')
    .option('--ssh-agent <socket>', 'ssh-agent socket (default $SSH_AUTH_SOCK)')
    .option('--known-hosts <path>', 'known_hosts file (default ~/.ssh/known_hosts)')
    .addOption(new Option('--slurm-env <NAME=VALUE...>', 'environment for Slurm commands, e.g. SLURM_CONF=/etc/slurm/other.conf'))
    .option('-o, --work-dir <dir>', 'absolute directory on the cluster for sbatch scripts and Slurm output (default ./weft-slurm)')
    .option('--weft-command <words>', 'how compute nodes run weft (default: this node binary and this weft)')
    .option('-k, --keep-submission-scripts', 'keep the sbatch scripts')
    .option('--aws-endpoint <url>', 'EC2 endpoint override (env WEFT_AWS_ENDPOINT)')
    .option('--aws-region <region>', 'AWS region (default: the document, then the SDK chain)');
}

function addWorker(cmd: Command): Command {
  return cmd
    .option('-m, --max-parallel-jobs <n>', 'most jobs each worker runs at once')
    .option('-p, --poll-interval-seconds <s>', 'worker poll interval')
    .option('--wait-for-new-jobs-seconds <s>', 'how long an idle worker waits for new jobs before exiting')
    .option('--worker-output-dir <dir>', 'the workers\' output directory (on the compute nodes)');
}

/** The worker flags of an hpc command, as launch options (the workflow and allocation fields are added per allocation). */
function workerOf(url: string, o: WorkerOptions): Pick<WorkerLaunchOptions, 'url' | 'maxParallelJobs' | 'pollIntervalSeconds' | 'waitForNewJobsSeconds' | 'outputDir'> {
  return {
    url,
    ...(o.maxParallelJobs ? { maxParallelJobs: int('max-parallel-jobs', o.maxParallelJobs) } : {}),
    ...(o.pollIntervalSeconds ? { pollIntervalSeconds: int('poll-interval-seconds', o.pollIntervalSeconds) } : {}),
    ...(o.waitForNewJobsSeconds ? { waitForNewJobsSeconds: int('wait-for-new-jobs-seconds', o.waitForNewJobsSeconds) } : {}),
    ...(o.workerOutputDir ? { outputDir: o.workerOutputDir } : {}),
  };
}

function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

function viewLine(v: AllocationView): string {
  const r = v.record;
  return [r._key.padEnd(8), String(r.scheduler_type ?? schedulerTypeOf(r.scheduler_config_id)).padEnd(6), String(r.scheduler_id ?? '-').padEnd(14), r.status.padEnd(10), r.scheduler_config_id.padEnd(22), v.status.detail ?? ''].join(' ');
}

/** Refuse unless some job is ready or scheduled (as `torc hpc slurm schedule-nodes` does). */
async function requireReadyJobs(manager: AllocationManager): Promise<void> {
  for (const status of ['ready', 'scheduled']) {
    const page = await manager.api.request<{ items?: unknown[] }>('GET', `/workflows/${encodeURIComponent(manager.workflow)}/jobs`, { query: { status, limit: 1 } });
    if ((page.items ?? []).length > 0) return;
  }
  throw new WeftError('STATE_CONFLICT', `Workflow ${manager.workflow} has no ready or scheduled jobs: nothing for new compute nodes to do. Did you run 'weft workflows start'?`);
}

async function withManager<T>(url: string, workflow: string, context: SchedulerContext, fn: (m: AllocationManager) => Promise<T>): Promise<T> {
  const manager = new AllocationManager(requestFor(url), workflow, context);
  try {
    return await fn(manager);
  } finally {
    await manager.close();
  }
}

function scheduleNodesCommand(type: 'slurm' | 'aws'): Command {
  const cmd = new Command('schedule-nodes').description(
    type === 'slurm' ? 'submit N Slurm allocations (sbatch) that run weft worker for this workflow' : 'start N EC2 instances that run weft worker for this workflow',
  );
  addWorker(addContext(addCommon(cmd)))
    .requiredOption('-s, --scheduler <name-or-key>', `${type}_schedulers document (name, key or id)`)
    .requiredOption('-n, --num-hpc-jobs <n>', 'number of allocations')
    .option('-j, --job-prefix <prefix>', 'allocation name prefix', 'worker')
    .option('-S, --start-one-worker-per-node', 'start a worker on every node of the allocation (srun)')
    .option('--force', 'submit even when no job is ready or scheduled')
    .option('--dry-run', 'print the sbatch script (or RunInstances input) and submit nothing')
    .action(async (o: CommonOptions & ContextOptions & WorkerOptions & { scheduler: string; numHpcJobs: string; jobPrefix: string; startOneWorkerPerNode?: boolean; force?: boolean; dryRun?: boolean }, c: Command) => {
      const url = urlOf(o, c);
      const count = int('num-hpc-jobs', o.numHpcJobs) ?? 1;
      await withManager(url, o.workflow, contextOf(o), async (m) => {
        const doc = await m.api.scheduler(`${type}_schedulers`, o.scheduler);
        const worker = workerOf(url, o);
        if (o.dryRun) {
          const sched = m.schedulerFor(doc, {}, o.startOneWorkerPerNode);
          const request = { worker: { ...worker, workflow: o.workflow, scheduledComputeNodeKey: 'KEY', schedulerConfigId: doc._id }, name: `${o.jobPrefix}_KEY` };
          const preview = 'script' in sched ? (sched as { script: (r: typeof request) => string }).script(request) : JSON.stringify((sched as unknown as { runInstancesInput: (r: typeof request) => unknown }).runInstancesInput(request), null, 2);
          process.stdout.write(`${preview}\n`);
          return;
        }
        if (!o.force) await requireReadyJobs(m);
        const records = await m.scheduleNodes({ scheduler: doc, count, worker, namePrefix: o.jobPrefix, startOneWorkerPerNode: o.startOneWorkerPerNode, reason: `weft hpc ${type} schedule-nodes -n ${count}` });
        print(o.json, { job_ids: records.map((r) => r.scheduler_id), keys: records.map((r) => r._key) }, () =>
          records.map((r) => `submitted ${type} allocation ${r.scheduler_id ?? ''} (scheduled compute node ${r._key})`).join('\n'),
        );
      });
    });
  return cmd;
}

function listCommand(type?: SchedulerType): Command {
  const cmd = new Command('list').description(`list the workflow's ${type ?? ''} allocations with their live state`.replace('  ', ' '));
  addContext(addCommon(cmd))
    .option('--open', 'only allocations that are queued or running')
    .action(async (o: CommonOptions & ContextOptions & { open?: boolean }, c: Command) => {
      await withManager(urlOf(o, c), o.workflow, contextOf(o), async (m) => {
        const views = await m.list({ ...(type ? { type } : {}), ...(o.open ? { open: true } : {}) });
        print(o.json, views.map((v) => ({ ...v.record, live: v.status })), () =>
          views.length === 0 ? 'no allocations' : ['key      type   id             status     scheduler              detail', ...views.map(viewLine)].join('\n'),
        );
      });
    });
  return cmd;
}

function pick(records: AllocationRecord[], refs: string[]): AllocationRecord[] {
  if (refs.length === 0) return records;
  return refs.map((ref) => {
    const r = records.find((x) => x._key === ref || x._id === ref || x.scheduler_id === ref);
    if (!r) throw new WeftError('DOCUMENT_NOT_FOUND', `No allocation with scheduled compute node key or scheduler id ${JSON.stringify(ref)}`);
    return r;
  });
}

function statusCommand(type?: SchedulerType): Command {
  const cmd = new Command('status').description('show allocations (by record key or scheduler id; all when none given)').argument('[refs...]');
  addContext(addCommon(cmd)).action(async (refs: string[], o: CommonOptions & ContextOptions, c: Command) => {
    await withManager(urlOf(o, c), o.workflow, contextOf(o), async (m) => {
      const views: AllocationView[] = [];
      for (const r of pick(await m.records(type ? { type } : {}), refs)) views.push(await m.refresh(r));
      print(o.json, views.map((v) => ({ ...v.record, live: v.status })), () => (views.length === 0 ? 'no allocations' : views.map(viewLine).join('\n')));
    });
  });
  return cmd;
}

function cancelCommand(type?: SchedulerType): Command {
  const cmd = new Command('cancel').description('cancel allocations (by record key or scheduler id; every open one when none given)').argument('[refs...]');
  addContext(addCommon(cmd)).action(async (refs: string[], o: CommonOptions & ContextOptions, c: Command) => {
    await withManager(urlOf(o, c), o.workflow, contextOf(o), async (m) => {
      const targets = pick(await m.records({ open: true, ...(type ? { type } : {}) }), refs);
      const canceled: AllocationRecord[] = [];
      for (const r of targets) canceled.push(await m.cancel(r, 'canceled with weft hpc cancel'));
      print(o.json, canceled, () => (canceled.length === 0 ? 'nothing to cancel' : canceled.map((r) => `canceled ${r.scheduler_type ?? ''} allocation ${r.scheduler_id ?? ''} (scheduled compute node ${r._key})`).join('\n')));
    });
  });
  return cmd;
}

function slurmAddConfigCommand(): Command {
  const cmd = new Command('add-config').description('add a slurm_schedulers document to the workflow');
  addCommon(cmd)
    .requiredOption('-N, --name <name>', 'scheduler name')
    .requiredOption('-a, --account <account>', 'Slurm account')
    .option('-g, --gres <gres>')
    .option('-m, --mem <mem>')
    .option('-n, --nodes <n>', 'nodes per allocation', '1')
    .option('-p, --partition <partition>')
    .option('-q, --qos <qos>', 'QoS', 'normal')
    .option('-t, --tmp <tmp>')
    .option('-W, --walltime <time>', 'Slurm time limit', '04:00:00')
    .option('--ntasks-per-node <n>')
    .option('-e, --extra <options>', 'further sbatch options, e.g. "--constraint=lbw --exclusive"')
    .action(async (o: CommonOptions & Record<string, string | undefined>, c: Command) => {
      const request = requestFor(urlOf(o, c));
      const body: Record<string, unknown> = { name: o['name'], account: o['account'], nodes: int('nodes', o['nodes']), qos: o['qos'], walltime: o['walltime'] };
      for (const k of ['gres', 'mem', 'partition', 'tmp', 'extra']) if (o[k] !== undefined) body[k] = o[k];
      if (o['ntasksPerNode'] !== undefined) body['ntasks_per_node'] = int('ntasks-per-node', o['ntasksPerNode']);
      if (body['extra']) splitArgs(String(body['extra']), 'extra');
      const doc = await request<{ _key: string; _id: string }>('POST', `/workflows/${encodeURIComponent(o.workflow)}/slurm_schedulers`, { body });
      print(o.json, doc, () => `added slurm_schedulers ${doc._key} (${String(o['name'])})`);
    });
  return cmd;
}

function configsCommand(collection: 'slurm_schedulers' | 'aws_schedulers'): Command {
  const cmd = new Command('list-configs').description(`list the workflow's ${collection} documents`);
  addCommon(cmd).action(async (o: CommonOptions, c: Command) => {
    const m = new AllocationManager(requestFor(urlOf(o, c)), o.workflow);
    const docs = await m.api.listAll(collection);
    print(o.json, docs, () => (docs.length === 0 ? `no ${collection}` : docs.map((d) => `${d._key}\t${String(d['name'] ?? '')}\t${JSON.stringify(d)}`).join('\n')));
  });
  return cmd;
}

function awsAddConfigCommand(): Command {
  const cmd = new Command('add-config').description('add an aws_schedulers document to the workflow');
  addCommon(cmd)
    .requiredOption('-N, --name <name>')
    .requiredOption('--ami-id <ami>')
    .requiredOption('--instance-type <type>')
    .option('--region <region>')
    .option('--key-name <name>')
    .option('--subnet-id <id>')
    .option('--security-group-ids <ids>', 'comma-separated')
    .option('--max-instances <n>')
    .option('--spot', 'spot instances')
    .option('--weft-command <words>', 'how the instance runs weft (default: weft)')
    .option('--setup-script <text>', 'shell lines run before the worker (e.g. installing weft)')
    .option('--iam-instance-profile <name-or-arn>')
    .addOption(new Option('--tag <KEY=VALUE...>', 'instance tags'))
    .action(async (o: CommonOptions & Record<string, unknown>, c: Command) => {
      const request = requestFor(urlOf(o, c));
      const tags: Record<string, string> = {};
      for (const t of (o['tag'] as string[] | undefined) ?? []) {
        const i = t.indexOf('=');
        if (i <= 0) throw new WeftError('VALIDATION_FAILED', `--tag takes KEY=VALUE, got ${JSON.stringify(t)}`);
        tags[t.slice(0, i)] = t.slice(i + 1);
      }
      const body: Record<string, unknown> = {
        name: o['name'],
        ami_id: o['amiId'],
        instance_type: o['instanceType'],
        ...(o['region'] ? { region: o['region'] } : {}),
        ...(o['keyName'] ? { key_name: o['keyName'] } : {}),
        ...(o['subnetId'] ? { subnet_id: o['subnetId'] } : {}),
        ...(o['securityGroupIds'] ? { security_group_ids: String(o['securityGroupIds']).split(',').filter(Boolean) } : {}),
        ...(o['maxInstances'] ? { max_instances: int('max-instances', String(o['maxInstances'])) } : {}),
        market: o['spot'] ? 'spot' : 'on-demand',
        ...(o['weftCommand'] ? { weft_command: o['weftCommand'] } : {}),
        ...(o['setupScript'] ? { setup_script: o['setupScript'] } : {}),
        ...(o['iamInstanceProfile'] ? { iam_instance_profile: o['iamInstanceProfile'] } : {}),
        ...(Object.keys(tags).length > 0 ? { tags } : {}),
      };
      const doc = await request<{ _key: string }>('POST', `/workflows/${encodeURIComponent(o.workflow)}/aws_schedulers`, { body });
      print(o.json, doc, () => `added aws_schedulers ${doc._key} (${String(o['name'])})`);
    });
  return cmd;
}

function nodeStatusCommand(): Command {
  return new Command('node-status')
    .description('set the status of a scheduled compute node (run by allocations themselves)')
    .requiredOption('-w, --workflow <key>', 'workflow key')
    .option('-u, --url <url>', 'server URL (env WEFT_URL)')
    .requiredOption('--key <key>', 'scheduled_compute_nodes key')
    .addOption(new Option('--status <status>', 'new status').choices(['active', 'complete', 'failed']).makeOptionMandatory())
    .option('--allocation-id <id>', 'the scheduler id of this allocation (checked against the record)')
    .action(async (o: { workflow: string; url?: string; key: string; status: string; allocationId?: string }, c: Command) => {
      const m = new AllocationManager(requestFor(urlOf(o, c)), o.workflow);
      const record = await m.api.get<AllocationRecord>('scheduled_compute_nodes', o.key);
      if (o.allocationId && record.scheduler_id && record.scheduler_id !== o.allocationId && !record.scheduler_id.startsWith(`${o.allocationId}:`)) {
        throw new WeftError('STATE_CONFLICT', `Scheduled compute node ${o.key} belongs to allocation ${record.scheduler_id}, not ${o.allocationId}`);
      }
      // A record that is already closed (canceled, complete) stays closed.
      if (['canceled', 'complete', 'failed'].includes(record.status) || record.status === o.status) return;
      await m.updateRecord(record, { status: o.status, ...(o.status === 'active' ? { started_at: Math.floor(Date.now() / 1000) } : { ended_at: Math.floor(Date.now() / 1000) }) });
    });
}

function watchCommand(): Command {
  const cmd = new Command('watch').description(
    'reconcile loop: submit allocations when ready jobs need a scheduler that has none queued or running, cancel queued allocations no remaining job needs',
  );
  addWorker(addContext(addCommon(cmd)))
    .option('-i, --interval-seconds <s>', 'seconds between passes', '30')
    .option('--once', 'run one pass and exit')
    .option('--keep-running', 'keep watching after the workflow is complete')
    .option('-j, --job-prefix <prefix>', 'allocation name prefix', 'worker')
    .action(async (o: CommonOptions & ContextOptions & WorkerOptions & { intervalSeconds: string; once?: boolean; keepRunning?: boolean; jobPrefix: string }, c: Command) => {
      const url = urlOf(o, c);
      const manager = new AllocationManager(requestFor(url), o.workflow, contextOf(o));
      const log = (msg: string): void => {
        process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
      };
      const options = { manager, worker: workerOf(url, o), namePrefix: o.jobPrefix, log };
      try {
        if (o.once) {
          const r = await reconcileOnce(options);
          print(o.json, { submitted: r.submitted.map((x) => x._key), canceled: r.canceled.map((x) => x._key), newly_scheduled: r.newlyScheduled, finished: r.finished }, () =>
            `submitted ${r.submitted.length}, canceled ${r.canceled.length}, newly scheduled jobs ${r.newlyScheduled}${r.finished ? ', workflow finished' : ''}`,
          );
          return;
        }
        const controller = new AbortController();
        const stop = (): void => controller.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await runReconcileLoop({ ...options, intervalMs: (int('interval-seconds', o.intervalSeconds) ?? 30) * 1000, signal: controller.signal, stopWhenFinished: !o.keepRunning });
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      } finally {
        await manager.close();
      }
    });
  return cmd;
}

/** The `hpc` command tree. */
export function createHpcCommand(): Command {
  const hpc = new Command('hpc').description('compute nodes on Slurm (here or over SSH), AWS EC2 and this host');
  const slurm = new Command('slurm').description('Slurm allocations');
  slurm.addCommand(slurmAddConfigCommand());
  slurm.addCommand(configsCommand('slurm_schedulers'));
  slurm.addCommand(scheduleNodesCommand('slurm'));
  slurm.addCommand(listCommand('slurm'));
  slurm.addCommand(statusCommand('slurm'));
  slurm.addCommand(cancelCommand('slurm'));
  const aws = new Command('aws').description('AWS EC2 instances');
  aws.addCommand(awsAddConfigCommand());
  aws.addCommand(configsCommand('aws_schedulers'));
  aws.addCommand(scheduleNodesCommand('aws'));
  aws.addCommand(listCommand('aws'));
  aws.addCommand(statusCommand('aws'));
  aws.addCommand(cancelCommand('aws'));
  hpc.addCommand(slurm);
  hpc.addCommand(aws);
  hpc.addCommand(listCommand());
  hpc.addCommand(statusCommand());
  hpc.addCommand(cancelCommand());
  hpc.addCommand(watchCommand());
  hpc.addCommand(nodeStatusCommand());
  return hpc;
}

/** Register `weft hpc ...` on the program. */
export function registerHpcCommand(program: Command): void {
  program.addCommand(createHpcCommand());
}
