/**
 * Allocations and their records: submitting N allocations of one scheduler document with a
 * scheduled_compute_nodes document each, following them (pending → active → complete), and
 * cancelling them. Used by `weft hpc ...`, the reconcile loop and `weft workflows cancel`.
 *
 * A record is written (status `uninitialized`) before the scheduler is asked, so a crash between
 * the two leaves a visible record and never an allocation nobody knows about; a failed submission
 * deletes its record.
 */
import { WeftError } from '../graph/errors.js';
import { collectionOf, type AwsScheduler as AwsSchedulerDoc, type SlurmScheduler as SlurmSchedulerDoc } from '../graph/model.js';
import { ALLOCATION_RECORD_OPEN, SchedulerApi, type AllocationRecord, type AllocationVia, type ApiDoc, type RequestFn } from './api.js';
import { AwsScheduler, type AwsAllocationHandle } from './aws-scheduler.js';
import type { CommandExecutor } from './executor.js';
import { LocalExecutor } from './local-executor.js';
import { LocalScheduler, localHandleFromId, localIdOf, type LocalAllocationHandle, type LocalSchedulerOptions } from './local-scheduler.js';
import { type AllocationHandle, type AllocationState, type AllocationStatus, type Scheduler, type WorkerLaunchOptions } from './port.js';
import { SlurmScheduler, type SlurmAllocationHandle } from './slurm-scheduler.js';
import { SshExecutor, type SshExecutorOptions } from './ssh-executor.js';

/** How to reach each kind of scheduler from this process. */
export interface SchedulerContext {
  slurm?: {
    /** Run Slurm commands on a login node over SSH. Default: on this host. */
    ssh?: Omit<SshExecutorOptions, 'env'>;
    /** Environment for Slurm commands (e.g. SLURM_CONF). */
    env?: Record<string, string>;
    /** Absolute directory on the cluster for scripts and Slurm output. Default `<cwd>/weft-slurm`. */
    workDir?: string;
    /** How compute nodes run weft. Default: this Node binary and this checkout's CLI. */
    weftCommand?: readonly string[];
    keepScripts?: boolean;
    /** Environment exported in the batch script. */
    workerEnv?: Record<string, string>;
  };
  aws?: { endpoint?: string; region?: string; workerEnv?: Record<string, string> };
  local?: LocalSchedulerOptions;
}

export type SchedulerType = 'slurm' | 'aws' | 'local';

/** The scheduler kind a scheduler config id names (`slurm_schedulers/3` → slurm). */
export function schedulerTypeOf(schedulerConfigId: string): SchedulerType {
  const c = collectionOf(schedulerConfigId);
  if (c === 'slurm_schedulers') return 'slurm';
  if (c === 'aws_schedulers') return 'aws';
  if (c === 'local_schedulers') return 'local';
  throw new WeftError('VALIDATION_FAILED', `${JSON.stringify(schedulerConfigId)} is not the id of a slurm_schedulers, aws_schedulers or local_schedulers document`, {
    details: [{ path: ['scheduler_id'], message: 'not a scheduler id', rule: 'scheduler' }],
  });
}

export interface ScheduleNodesRequest {
  /** The scheduler document (with `_id`). */
  scheduler: ApiDoc;
  /** Allocations to submit. */
  count: number;
  /** The worker each allocation runs (url required; workflow and node key are filled in). */
  worker: Omit<WorkerLaunchOptions, 'workflow' | 'scheduledComputeNodeKey'>;
  /** Name prefix; the allocation is named `<prefix>_<record key>`. Default `weft`. */
  namePrefix?: string;
  /** One worker per node (Slurm). */
  startOneWorkerPerNode?: boolean;
  /** Why (recorded on the record and in the event). */
  reason?: string;
}

export interface AllocationView {
  record: AllocationRecord;
  status: AllocationStatus;
}

/**
 * The record status of each allocation state that settles it (a new state must be added here or
 * to the two that do not: pending and unknown).
 */
const RECORD_STATUS_OF_STATE: Readonly<Record<Exclude<AllocationState, 'pending' | 'unknown'>, string>> = {
  running: 'active',
  complete: 'complete',
  canceled: 'canceled',
  failed: 'failed',
};

/** The allocation state a record status means (the other way round); unknown for any other status. */
const STATE_OF_RECORD_STATUS: ReadonlyMap<string, AllocationState> = new Map([
  ['uninitialized', 'pending'],
  ['pending', 'pending'],
  ...Object.entries(RECORD_STATUS_OF_STATE).map(([state, status]) => [status, state as AllocationState] as const),
]);

/** The record status an allocation state means: a pending one moves an uninitialized record to pending. */
function recordStatusFor(state: AllocationState, current: string): string {
  if (state === 'pending') return current === 'uninitialized' ? 'pending' : current;
  if (state === 'unknown') return current;
  return RECORD_STATUS_OF_STATE[state];
}

/** The state of an allocation known only from its record. */
function statusToState(status: string): AllocationState {
  return STATE_OF_RECORD_STATUS.get(status) ?? 'unknown';
}

export class AllocationManager {
  readonly api: SchedulerApi;
  private readonly context: SchedulerContext;
  private readonly executors = new Map<string, CommandExecutor>();
  private readonly awsSchedulers: AwsScheduler[] = [];
  private localScheduler: LocalScheduler | null = null;

  constructor(request: RequestFn, workflow: string, context: SchedulerContext = {}) {
    this.api = new SchedulerApi(request, workflow);
    this.context = context;
  }

  get workflow(): string {
    return this.api.workflow;
  }

  /** Where a new allocation of this type is submitted (recorded so others can follow it). */
  private viaFor(type: SchedulerType, doc?: ApiDoc): AllocationVia {
    if (type === 'slurm') {
      const s = this.context.slurm ?? {};
      return {
        ...(s.ssh ? { ssh: { host: s.ssh.host, port: s.ssh.port ?? 22, username: s.ssh.username } } : {}),
        ...(s.env && Object.keys(s.env).length > 0 ? { env: s.env } : {}),
        work_dir: this.slurmWorkDir(),
      };
    }
    if (type === 'aws') {
      const a = this.context.aws ?? {};
      const region = a.region ?? (doc?.['region'] as string | undefined);
      return { ...(a.endpoint ? { endpoint: a.endpoint } : {}), ...(region ? { region } : {}) };
    }
    return {};
  }

  private slurmWorkDir(): string {
    return this.context.slurm?.workDir ?? `${process.cwd()}/weft-slurm`;
  }

  /** One executor per place, reused (one SSH connection per login node). */
  private executorFor(via: AllocationVia | undefined): CommandExecutor {
    const ssh = via?.ssh;
    const env = via?.env ?? this.context.slurm?.env ?? {};
    const id = ssh ? `ssh:${ssh.username}@${ssh.host}:${ssh.port}:${JSON.stringify(env)}` : `local:${JSON.stringify(env)}`;
    let ex = this.executors.get(id);
    if (ex === undefined) {
      if (ssh) {
        // This user's credentials (given, else WEFT_SSH_KEY / WEFT_SSH_KNOWN_HOSTS / the agent) for the recorded login node.
        const c = this.context.slurm?.ssh;
        const key = c?.privateKeyPath ?? (c?.privateKey === undefined ? process.env['WEFT_SSH_KEY'] : undefined);
        const knownHosts = c?.knownHostsPath ?? process.env['WEFT_SSH_KNOWN_HOSTS'];
        ex = new SshExecutor({
          ...(c ? { privateKey: c.privateKey, passphrase: c.passphrase, agent: c.agent, readyTimeoutMs: c.readyTimeoutMs, commandTimeoutMs: c.commandTimeoutMs, loginShell: c.loginShell } : {}),
          ...(key ? { privateKeyPath: key } : {}),
          ...(knownHosts ? { knownHostsPath: knownHosts } : {}),
          host: ssh.host,
          port: ssh.port,
          username: ssh.username,
          env,
        });
      } else {
        ex = new LocalExecutor({ env });
      }
      this.executors.set(id, ex);
    }
    return ex;
  }

  private local(): LocalScheduler {
    this.localScheduler ??= new LocalScheduler(this.context.local);
    return this.localScheduler;
  }

  /** A scheduler adapter for a scheduler document, reached as `via` says. */
  schedulerFor(doc: ApiDoc, via: AllocationVia, startOneWorkerPerNode?: boolean): Scheduler {
    const type = schedulerTypeOf(doc._id);
    if (type === 'slurm') {
      const s = this.context.slurm ?? {};
      return new SlurmScheduler({
        executor: this.executorFor(via),
        config: doc as unknown as SlurmSchedulerDoc,
        workDir: via.work_dir ?? this.slurmWorkDir(),
        weftCommand: s.weftCommand,
        keepScripts: s.keepScripts,
        workerEnv: s.workerEnv,
        startOneWorkerPerNode,
      });
    }
    if (type === 'aws') {
      const aws = new AwsScheduler({ config: doc as unknown as AwsSchedulerDoc, endpoint: via.endpoint, region: via.region, workerEnv: this.context.aws?.workerEnv });
      this.awsSchedulers.push(aws);
      return aws;
    }
    return this.local();
  }

  /** The handle a record stands for. */
  handleOf(record: AllocationRecord): AllocationHandle {
    const type = (record.scheduler_type as SchedulerType | undefined) ?? schedulerTypeOf(record.scheduler_config_id);
    const id = record.scheduler_id ?? '';
    if (type === 'local') return localHandleFromId(id);
    if (type === 'slurm') {
      const slurm: SlurmAllocationHandle = { kind: 'slurm', id, name: record.name, scriptPath: '' };
      return slurm;
    }
    const aws: AwsAllocationHandle = { kind: 'aws', id, name: record.name };
    return aws;
  }

  /**
   * Submit `count` allocations of one scheduler, each with its scheduled_compute_nodes record,
   * then post one `scheduler/submit` event. Resolves with the records (status `pending`).
   */
  async scheduleNodes(req: ScheduleNodesRequest): Promise<AllocationRecord[]> {
    if (!Number.isInteger(req.count) || req.count < 1) {
      throw new WeftError('VALIDATION_FAILED', `The number of allocations must be a positive integer, got ${String(req.count)}`, {
        details: [{ path: ['num_hpc_jobs'], message: 'must be >= 1', rule: 'min' }],
      });
    }
    const type = schedulerTypeOf(req.scheduler._id);
    const via = this.viaFor(type, req.scheduler);
    const scheduler = this.schedulerFor(req.scheduler, via, req.startOneWorkerPerNode);
    const records: AllocationRecord[] = [];
    for (let i = 0; i < req.count; i++) {
      const draft = await this.api.post<AllocationRecord>('scheduled_compute_nodes', {
        scheduler_config_id: req.scheduler._id,
        status: 'uninitialized',
        scheduler_type: type,
        via,
        ...(req.reason ? { reason: req.reason } : {}),
      });
      const name = `${req.namePrefix ?? 'weft'}_${draft._key}`;
      let handle: AllocationHandle;
      try {
        handle = await scheduler.submit({
          worker: { ...req.worker, workflow: this.workflow, scheduledComputeNodeKey: draft._key, schedulerConfigId: req.scheduler._id },
          name,
          ...(type === 'local' ? { workers: 1 } : {}),
        });
      } catch (err) {
        await this.api.remove('scheduled_compute_nodes', draft._key).catch(() => undefined);
        if (records.length > 0) await this.submitEvent(req, records);
        throw err;
      }
      const schedulerId = type === 'local' ? localIdOf(handle as LocalAllocationHandle) : handle.id;
      // The allocation may already have marked itself active (and may do so while we write):
      // never move it back to pending, and retry on a revision conflict.
      const saved = await this.writeRecord(draft._key, (current) => ({
        scheduler_id: schedulerId,
        status: current.status === 'uninitialized' ? 'pending' : current.status,
        name,
        submitted_at: Math.floor(Date.now() / 1000),
      }));
      records.push(saved);
    }
    await this.submitEvent(req, records);
    return records;
  }

  private async submitEvent(req: ScheduleNodesRequest, records: AllocationRecord[]): Promise<void> {
    const ids = records.map((r) => r.scheduler_id ?? '');
    await this.api.event(
      'submit',
      `Submitted ${records.length} allocation(s) of ${req.scheduler._id}${req.scheduler['name'] ? ` (${String(req.scheduler['name'])})` : ''}: ${ids.join(', ')}${req.reason ? `. Why: ${req.reason}` : ''}`,
      { scheduler_config_id: req.scheduler._id, scheduler_ids: ids, scheduled_compute_node_keys: records.map((r) => r._key), reason: req.reason ?? 'requested' },
    );
  }

  /** The workflow's allocation records, optionally only open ones or one scheduler's. */
  async records(filter: { open?: boolean; schedulerConfigId?: string; type?: SchedulerType } = {}): Promise<AllocationRecord[]> {
    const all = await this.api.listAll<AllocationRecord>('scheduled_compute_nodes', filter.schedulerConfigId ? { scheduler_config_id: filter.schedulerConfigId } : {});
    return all.filter(
      (r) =>
        (!filter.open || (ALLOCATION_RECORD_OPEN as readonly string[]).includes(r.status)) &&
        (!filter.type || ((r.scheduler_type as string | undefined) ?? schedulerTypeOf(r.scheduler_config_id)) === filter.type),
    );
  }

  private async schedulerOfRecord(record: AllocationRecord): Promise<Scheduler> {
    const type = (record.scheduler_type as SchedulerType | undefined) ?? schedulerTypeOf(record.scheduler_config_id);
    if (type === 'local') return this.local();
    const doc = await this.api.get(collectionOf(record.scheduler_config_id) ?? '', record.scheduler_config_id).catch(() => null);
    // A deleted scheduler document still leaves enough to follow or cancel the allocation.
    const fallback: ApiDoc = { _id: record.scheduler_config_id, _key: record.scheduler_config_id.split('/').pop() ?? '', _rev: '', account: 'unknown', nodes: 1 };
    return this.schedulerFor(doc ?? fallback, record.via ?? this.viaFor(type));
  }

  /**
   * Ask the scheduler where an open allocation is and bring its record in line (pending →
   * active → complete | canceled | failed). Closed records are returned as they are.
   */
  async refresh(record: AllocationRecord): Promise<AllocationView> {
    if (!(ALLOCATION_RECORD_OPEN as readonly string[]).includes(record.status) || !record.scheduler_id) {
      return { record, status: { state: statusToState(record.status), detail: 'from the record' } };
    }
    const scheduler = await this.schedulerOfRecord(record);
    const status = await scheduler.status(this.handleOf(record));
    const next = recordStatusFor(status.state, record.status);
    if (next === record.status) return { record, status };
    const updated = await this.updateRecord(record, { status: next, ...(status.exitCode !== undefined && status.exitCode !== null ? { exit_code: status.exitCode } : {}) });
    return { record: updated, status };
  }

  /** All records with their live status (records brought up to date). */
  async list(filter: { open?: boolean; type?: SchedulerType } = {}): Promise<AllocationView[]> {
    const out: AllocationView[] = [];
    for (const r of await this.records(filter)) out.push(await this.refresh(r));
    return out;
  }

  /** Cancel one allocation and mark its record canceled, with an event saying why. */
  async cancel(record: AllocationRecord, reason: string): Promise<AllocationRecord> {
    if (record.scheduler_id) {
      const scheduler = await this.schedulerOfRecord(record);
      await scheduler.cancel(this.handleOf(record));
    }
    const updated = await this.updateRecord(record, { status: 'canceled', reason });
    await this.api.event('cancel', `Canceled allocation ${record.scheduler_id ?? '(not submitted)'} of ${record.scheduler_config_id} (scheduled compute node ${record._key}). Why: ${reason}`, {
      scheduler_config_id: record.scheduler_config_id,
      scheduler_ids: [record.scheduler_id ?? ''],
      scheduled_compute_node_keys: [record._key],
      reason,
    });
    return updated;
  }

  /** Cancel every open allocation of the workflow. */
  async cancelAll(reason: string): Promise<AllocationRecord[]> {
    const out: AllocationRecord[] = [];
    for (const r of await this.records({ open: true })) out.push(await this.cancel(r, reason));
    return out;
  }

  /** Write fields to a record, re-reading it on a revision conflict. */
  async updateRecord(record: AllocationRecord, patch: Record<string, unknown>): Promise<AllocationRecord> {
    return this.writeRecord(record._key, () => patch, record);
  }

  /** Read-modify-write of a record with the `_rev` precondition, retried on 409 (up to 5 times). */
  private async writeRecord(key: string, change: (current: AllocationRecord) => Record<string, unknown>, first?: AllocationRecord): Promise<AllocationRecord> {
    for (let attempt = 0; ; attempt++) {
      const current = attempt === 0 && first ? first : await this.api.get<AllocationRecord>('scheduled_compute_nodes', key);
      try {
        return await this.api.put<AllocationRecord>('scheduled_compute_nodes', key, { ...current, ...change(current) });
      } catch (err) {
        if ((err as { status?: number }).status !== 409 || attempt >= 5) throw err;
      }
    }
  }

  /** Close SSH connections and SDK clients. Local workers started here are left running unless `stopLocal`. */
  async close(stopLocal = false): Promise<void> {
    for (const ex of this.executors.values()) await ex.close();
    this.executors.clear();
    for (const a of this.awsSchedulers.splice(0)) a.close();
    if (stopLocal) await this.localScheduler?.close();
  }
}

/**
 * Cancel every open allocation of a workflow (Slurm jobs, EC2 instances, local workers) and mark
 * their records canceled. `weft workflows cancel` calls this after canceling the workflow.
 * `request` is a WeftClient-style request function; `context` says how to reach the schedulers
 * (default: whatever each record says: this host, or the SSH login node it was submitted through,
 * with the default key/agent and known_hosts).
 */
export async function cancelWorkflowAllocations(request: RequestFn, workflow: string, context: SchedulerContext = {}, reason = 'the workflow was canceled'): Promise<AllocationRecord[]> {
  const manager = new AllocationManager(request, workflow, context);
  try {
    return await manager.cancelAll(reason);
  } finally {
    await manager.close();
  }
}

