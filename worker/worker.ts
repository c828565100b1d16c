/**
 * The worker: one compute node's pull loop.
 *
 *   register the compute node, heartbeat it, run the worker startup script; then repeat:
 *     look at the workflow (canceled? complete?) every poll interval, or when idle;
 *     claim jobs that fit the free CPUs, memory, GPUs, slots and time left; start each;
 *     wait for a job to end, a report to land (its dependants may be ready), the poll timer,
 *     the end of the allocation, or a stop request;
 *   and on the way out stop what still runs, report it, deactivate the node.
 *
 * Requests per job (Weft extensions, with a fallback to the per-job calls of a Torc server): a
 * claim starts the jobs it hands out (start_run_id), and the completions of jobs that ended go
 * in one complete_jobs request that also claims for the resources they freed (reporter.ts), so a
 * job costs about one request. The loop claims on its own only when no completion is on its way.
 *
 * Claiming ahead (Weft extension, for short jobs; ahead-queue.ts): when the median run time of
 * the last 20 jobs is under 50 ms, claims do not start the jobs; they fill a local
 * queue of claimed (submitted_pending) jobs, up to the free resources plus k times the node's CPUs
 * and memory, k = floor(50 ms / median run time) between 1 and WEFT_WORKER_CLAIM_AHEAD (default 16),
 * so about 50 ms of work waits queued. A slot that frees starts the next queued job at
 * once, with no round trip; its start goes to the server with the next complete_jobs request
 * (reporter.ts), so a request carries the starts and completions of several jobs. A queued job
 * that waits longer than AHEAD_MAX_WAIT_MS (long jobs hold the slots) is given back (ready), and
 * so is every queued job when the worker stops; a worker killed outright leaves them to the lease
 * pass (its node stops heartbeating). --max-parallel-jobs turns claiming ahead off.
 *
 * Reports retry with backoff for the workflow's compute_node_wait_for_healthy_database_minutes,
 * so none is lost while the server is away (the server makes a retried identical completion a
 * no-op).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { WeftApiError, WeftClient, type CompleteJobsClaim, type Doc, type SortMethod } from '../client/index.js';
import { ComputeNodeRecord, loadDeclaredOutputs } from './compute-node.js';
import { GpuPool } from './gpu-pool.js';
import { giveBackUnstarted, startJobOnce } from './job-calls.js';
import { JobProcess, type JobExit } from './job-process.js';
import { createWorkerLogger } from './log.js';
import type { StopReason, WorkerOptions, WorkerSummary } from './options.js';
import { ProcessTreeSampler } from './process-tree.js';
import { JobLauncher } from './launcher.js';
import { OrphanReaper } from './reaper.js';
import { detectResources, type DetectedResources } from './resources.js';
import { Reporter, type PendingStart } from './reporter.js';
import { AheadQueue, RecentRunTimes, SHORT_JOB_MS, aheadDepth } from './ahead-queue.js';
import { internalOf, type RunningJob } from './running-job.js';
import { runScript } from './scripts.js';
import { formatDuration } from './time.js';

const GIB = 1024 ** 3;
/** A claimed-ahead job not started after this long (ms) is given back (WEFT_WORKER_AHEAD_MAX_WAIT_MS, default 500). */
const AHEAD_MAX_WAIT_MS = positiveEnv('WEFT_WORKER_AHEAD_MAX_WAIT_MS', 500);

/** How long claiming ahead pauses after it returned a job too big for the node (ms). */
const AHEAD_PAUSE_MS = 10_000;
/** Most starts and completions held back to share one request. */
const HOLD_MAX_REPORTS = 64;


/** How long a worker stopped by a signal waits for reports the server has not taken yet. */
const STOP_DRAIN_MS = 30_000;


/** Run a worker until the workflow is complete or canceled, it has idled long enough, its time is up, or it is stopped. */
export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  const w = new Worker(options);
  return w.run();
}

export class Worker {
  private readonly o: WorkerOptions;
  private readonly log: Logger;
  private client: WeftClient;
  private readonly workflow: string;
  private readonly outputDir: string;
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly sampler: ProcessTreeSampler;
  private readonly reaper = new OrphanReaper();
  private readonly launcher = new JobLauncher();
  private readonly running = new Map<string, RunningJob>();
  /** job _id → the files it produces. */
  private outputs = new Map<string, { key: string; path: string }[]>();
  private readonly starting = new Set<Promise<void>>();
  /** The loop's own claim is in flight (claims sent with completions wait for it, and it for them). */
  private claimBusy = false;
  /**
   * Resources offered by claims sent with completions and not answered yet: the next claim
   * offers only the rest, so claims in flight together never offer the same CPU twice.
   */
  private readonly reserved = { cpus: 0, memoryBytes: 0, gpus: 0 };
  private readonly piggybacks = new Map<CompleteJobsClaim, { cpus: number; memoryBytes: number; gpus: number; ahead: boolean }>();
  /** Jobs claimed ahead, in claim order (a queued job that waits too long is given back). */
  private readonly ahead = new AheadQueue(AHEAD_MAX_WAIT_MS, (job) => {
    this.giveBack(job, `claimed ahead and not started within ${AHEAD_MAX_WAIT_MS} ms`);
    this.wake();
  });
  /** Give-backs of claimed-ahead jobs in flight (the worker waits for them before it exits). */
  private readonly givingBack = new Set<Promise<void>>();
  /** No claiming ahead before this time (ms since the epoch): a claim ahead returned a job too big for the node. */
  private aheadPausedUntil = 0;
  private readonly runTimes = new RecentRunTimes();
  /** How many nodes' worth of CPUs and memory may wait claimed ahead (WEFT_WORKER_CLAIM_AHEAD; 0: never). */
  private readonly aheadFactor = claimAheadFactor();
  /** Settles when no claim sent with completions is waiting for its answer. */
  private piggybacksDone: Promise<void> | undefined;
  private piggybacksResolve: (() => void) | undefined;
  /** Claims also start the jobs (start_run_id, a Weft extension) until the server says it does not know it. */
  private claimWithStart = true;
  private reporter!: Reporter;
  private res!: DetectedResources;
  private gpus!: GpuPool;
  private freeCpus = 0;
  private freeMemoryBytes = 0;
  private nodeKey = '';
  private runId = 0;
  private config: Doc = { _key: '', _id: '', _rev: '' };
  private endMs: number | null = null;
  private stopRequested = false;
  private hardStop = false;
  private stoppedBySignal = false;
  private claimAborted = false;
  private readonly stopController = new AbortController();
  private wakeResolve: (() => void) | undefined;
  private wokenEarly = false;
  private node!: ComputeNodeRecord;
  private readonly counts = { started: 0, done: 0, failed: 0, canceled: 0, terminated: 0 };
  private baseEnv: NodeJS.ProcessEnv = {};

  constructor(options: WorkerOptions) {
    this.o = options;
    this.log = options.logger ?? createWorkerLogger();
    this.workflow = options.workflow.includes('/') ? options.workflow.slice(options.workflow.lastIndexOf('/') + 1) : options.workflow;
    this.outputDir = resolve(options.outputDir ?? 'output');
    this.pollMs = Math.max(50, (options.pollIntervalSeconds ?? 5) * 1000);
    this.heartbeatMs = Math.max(100, (options.heartbeatSeconds ?? 10) * 1000);
    const statsMs = (options.statsIntervalSeconds ?? 1) * 1000;
    this.sampler = new ProcessTreeSampler({ intervalMs: statsMs });
    this.client = options.client ?? new WeftClient(options.url, { onRetry: (i) => this.log.warn({ attempt: i.attempt, delayMs: i.delayMs, path: i.path }, `server unreachable, retrying: ${i.error.message}`) });
    options.signal?.addEventListener('abort', () => this.requestStop(), { once: true });
  }

  /** Stop as SIGTERM does: claim nothing more, stop running jobs, report them, exit. A second call kills at once. */
  requestStop(): void {
    this.stoppedBySignal = true;
    if (this.stopRequested) {
      this.hardStop = true;
      for (const rj of this.running.values()) rj.proc.signalGroup('SIGKILL');
      this.reporter?.abandon();
    }
    this.stopRequested = true;
    this.stopController.abort(new Error('worker stopping'));
    this.wake();
  }

  async run(): Promise<WorkerSummary> {
    const onSignal = (sig: NodeJS.Signals): void => {
      this.log.info({ signal: sig }, 'stop requested');
      this.requestStop();
    };
    if (this.o.handleSignals) {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }
    try {
      await this.setUp();
      let reason: StopReason;
      try {
        const startup = this.config['worker_startup_script'];
        if (typeof startup === 'string' && startup.trim() !== '') {
          const rc = await runScript(startup, this.scriptEnv(), this.log.child({ script: 'worker_startup_script' }));
          if (rc !== 0) throw new Error(`worker_startup_script exited with ${rc}; the worker does not start`);
        }
        reason = await this.loop();
      } finally {
        await this.tearDown();
      }
      this.log.info({ reason, ...this.counts, reports: this.reporter.stats }, 'worker finished');
      return { reason, computeNodeKey: this.nodeKey, runId: this.runId, ...this.counts };
    } finally {
      if (this.o.handleSignals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    }
  }

  // ---- set up and tear down ------------------------------------------------------------------

  private async setUp(): Promise<void> {
    // First contact: a wrong URL or key should fail in a minute, not after the long report window.
    const first = { retryMinutes: this.o.startupRetryMinutes ?? 1, signal: this.stopController.signal };
    const status = await this.client.getWorkflowStatus(this.workflow, first);
    this.runId = status.run_id;
    if (!(this.runId > 0)) throw new Error(`workflow ${this.workflow} has not been started (run_id ${this.runId}); start it first (weft workflows start ${this.workflow})`);
    this.baseEnv = { ...(this.o.env ?? process.env), WEFT_WORKFLOW_KEY: this.workflow, WEFT_URL: this.client.baseUrl, WEFT_RUN_ID: String(this.runId) };
    // The launcher starts while the rest is set up (its interpreter takes tens of ms to start).
    const launcherOpened = this.o.launcher !== 'spawn' ? this.launcher.open(this.baseEnv) : Promise.resolve(null);
    try {
      this.config = (await this.client.request('GET', `/workflows/${encodeURIComponent(this.workflow)}/config`, first)) as Doc;
      const retryMinutes = this.o.retryMinutes ?? numberOr(this.config['compute_node_wait_for_healthy_database_minutes'], 20);
      this.client = new WeftClient(this.client.baseUrl, {
        retryMinutes,
        onRetry: (i) => this.log.warn({ attempt: i.attempt, delayMs: i.delayMs, path: i.path }, `server unreachable, retrying: ${i.error.message}`),
      });
      this.res = await detectResources({
        ...(this.o.numCpus !== undefined ? { numCpus: this.o.numCpus } : {}),
        ...(this.o.memoryGb !== undefined ? { memoryGb: this.o.memoryGb } : {}),
        ...(this.o.numGpus !== undefined ? { numGpus: this.o.numGpus } : {}),
        ...(this.o.timeLimit !== undefined ? { timeLimit: this.o.timeLimit } : {}),
        ...(this.o.endTime !== undefined ? { endTime: this.o.endTime } : {}),
      }, { env: this.o.env ?? process.env });
      const bufferMs = numberOr(this.config['compute_node_expiration_buffer_seconds'], 120) * 1000;
      const ends = [this.res.allocationEndMs === null ? null : this.res.allocationEndMs - bufferMs, this.res.timeLimitEndMs].filter((x): x is number => x !== null);
      this.endMs = ends.length > 0 ? Math.min(...ends) : null;
      this.gpus = new GpuPool(this.res.gpuIds);
      this.freeCpus = this.res.numCpus;
      this.freeMemoryBytes = this.res.memoryGb * GIB;
      mkdirSync(join(this.outputDir, 'job-stdio'), { recursive: true });

      const env = this.o.env ?? process.env;
      this.node = new ComputeNodeRecord(this.client, this.workflow, this.log);
      this.nodeKey = await this.node.register(this.resourcesDoc(this.res.numCpus, this.res.memoryGb, this.res.gpuIds.length), {
        hpc_type: env['SLURM_JOB_ID'] ? 'slurm' : 'local',
        scheduler_config_id: this.o.schedulerConfigId ?? '',
        scheduled_compute_node_key: this.o.scheduledComputeNodeKey ?? null,
        ...(env['SLURM_JOB_ID'] ? { slurm_job_id: env['SLURM_JOB_ID'], slurm_node_list: env['SLURM_JOB_NODELIST'] ?? null } : {}),
        end_time: this.endMs === null ? null : new Date(this.endMs).toISOString(),
        sources: this.res.sources,
      });
      this.outputs = await loadDeclaredOutputs(this.client, this.workflow);
      this.reporter = new Reporter({
        client: this.client,
        workflow: this.workflow,
        nodeKey: this.nodeKey,
        log: this.log,
        onSettled: () => this.wake(),
        claimFor: () => this.claimWithCompletions(),
        onClaimed: (claim, jobs) => this.onPiggybackClaim(claim, jobs),
        maxInFlight: reportsInFlight(),
        holdBatch: (pending) => this.holdReports(pending),
      });
      await launcherOpened;
    } catch (err) {
      // Set-up failed: the launcher goes too (run() tears down only what set up).
      await launcherOpened;
      await this.launcher.stop();
      throw err;
    }
    // The perl launcher kills its jobs when the worker dies; otherwise the reaper process does.
    if (!this.launcher.reapsOrphans) this.reaper.start();
    this.node.startHeartbeat(this.heartbeatMs);
    this.log.info(
      { computeNode: this.nodeKey, runId: this.runId, cpus: this.res.numCpus, memoryGb: this.res.memoryGb, gpus: this.res.gpuIds, endTime: this.endMs === null ? null : new Date(this.endMs).toISOString(), sources: this.res.sources },
      'worker started',
    );
  }

  private async tearDown(): Promise<void> {
    if (!this.nodeKey) return;
    await this.stopAllJobs(this.stopReasonStatus ?? 'terminated');
    for (const job of this.ahead.stop()) this.giveBack(job, 'the worker is stopping');
    this.reporter.flush();
    // Stopped by a signal: the node is going away (Slurm sends SIGKILL after KillWait), so reports
    // get a bounded wait; a second signal gives up at once. Otherwise they retry for the whole window.
    await this.reporter.drain(this.stoppedBySignal ? STOP_DRAIN_MS : Infinity);
    await Promise.allSettled([...this.givingBack]);
    // After the reports: a claimed-ahead job launched and stopped is reported with its start, not given back.
    if (this.claimAborted) await giveBackUnstarted(this.client, this.workflow, this.runId, this.nodeKey, this.log);
    this.node.stopHeartbeat();
    this.sampler.stop();
    await this.launcher.stop();
    await this.reaper.stop();
    if (this.stoppedBySignal) this.node.finalRetryMinutes = 0.1;
    await this.node.deactivate();
  }

  private stopReasonStatus: 'canceled' | 'terminated' | undefined;

  private resourcesDoc(cpus: number, memoryGb: number, gpus: number): Record<string, unknown> {
    const left = this.endMs === null ? null : formatDuration((this.endMs - Date.now()) / 1000);
    return {
      num_cpus: Math.max(0, Math.floor(cpus)),
      memory_gb: Math.max(0, memoryGb),
      num_gpus: Math.max(0, gpus),
      num_nodes: 1,
      time_limit: left,
      scheduler_config_id: this.o.schedulerConfigId ?? '',
    };
  }

  // ---- the loop ------------------------------------------------------------------------------

  /** Interrupt the loop's wait; a wake while the loop is not waiting makes its next wait return at once. */
  private wake(): void {
    const r = this.wakeResolve;
    this.wakeResolve = undefined;
    if (r) r();
    else this.wokenEarly = true;
  }

  private sleep(ms: number): Promise<void> {
    if (this.wokenEarly) {
      this.wokenEarly = false;
      return Promise.resolve();
    }
    return new Promise((resolveSleep) => {
      const t = setTimeout(() => {
        this.wakeResolve = undefined;
        resolveSleep();
      }, Math.max(0, ms));
      this.wakeResolve = () => {
        clearTimeout(t);
        resolveSleep();
      };
    });
  }

  private busy(): boolean {
    return this.running.size > 0 || this.starting.size > 0 || this.ahead.size > 0 || this.reporter.pending > 0;
  }

  private async loop(): Promise<StopReason> {
    const ignoreCompletion = this.config['compute_node_ignore_workflow_completion'] === true;
    const waitMs = (this.o.waitForNewJobsSeconds ?? numberOr(this.config['compute_node_wait_for_new_jobs_seconds'], 0)) * 1000;
    let lastPoll = -Infinity;
    let idleSince: number | null = null;
    for (;;) {
      this.wokenEarly = false;
      if (this.stopRequested) return this.finish('signal', 'terminated');
      let now = Date.now();
      if (this.endMs !== null && now >= this.endMs) {
        this.log.info('the allocation is about to end: stopping running jobs');
        return this.finish('end-time', 'terminated');
      }
      if (now - lastPoll >= this.pollMs || !this.busy()) {
        lastPoll = now;
        const st = await this.pollWorkflow();
        if (st === 'canceled') return this.finish('canceled', 'canceled');
        if (st === 'complete' && !ignoreCompletion && !this.busy()) return 'complete';
        if (this.stopRequested) continue;
      }
      const claimed = await this.claim();
      now = Date.now();
      if (claimed > 0 || this.busy()) idleSince = null;
      else if (this.wokenEarly) continue; // a report landed during the claim: its dependants may be ready now
      else {
        idleSince ??= now;
        if (!ignoreCompletion && now - idleSince >= waitMs) {
          const st = await this.pollWorkflow();
          if (st === 'canceled') return this.finish('canceled', 'canceled');
          return st === 'complete' ? 'complete' : 'idle';
        }
      }
      let waitFor = this.pollMs - (now - lastPoll);
      if (idleSince !== null && !ignoreCompletion) waitFor = Math.min(waitFor, idleSince + waitMs - now);
      if (this.endMs !== null) waitFor = Math.min(waitFor, this.endMs - now);
      // A claim that filled every free slot or returned nothing: wait for something to change.
      if (claimed === 0 || !this.hasRoom()) await this.sleep(Math.max(0, waitFor));
    }
  }

  private async finish(reason: StopReason, status: 'canceled' | 'terminated'): Promise<StopReason> {
    this.stopReasonStatus = status;
    await this.stopAllJobs(status);
    return reason;
  }

  /** Look at the workflow: canceled, complete (running the completion script if ours to run), or neither. */
  private async pollWorkflow(): Promise<'canceled' | 'complete' | 'running'> {
    let st;
    try {
      st = await this.client.isComplete(this.workflow, { signal: this.stopController.signal });
    } catch (err) {
      if (this.stopRequested) return 'running';
      throw err;
    }
    if (st.is_canceled) {
      this.log.info('the workflow was canceled');
      return 'canceled';
    }
    if (st.is_complete) {
      const script = this.config['workflow_completion_script'];
      if (st.needs_to_run_completion_script && typeof script === 'string' && script.trim() !== '') {
        const rc = await runScript(script, this.scriptEnv(), this.log.child({ script: 'workflow_completion_script' }));
        if (rc !== 0) this.log.error({ rc }, 'workflow_completion_script failed');
      }
      return 'complete';
    }
    if (!this.busy()) await this.adoptRunId();
    return 'running';
  }

  /** A restart bumps run_id; an idle worker follows it (a busy one finishes its jobs in their run first). */
  private async adoptRunId(): Promise<void> {
    try {
      const status = await this.client.getWorkflowStatus(this.workflow, { signal: this.stopController.signal });
      if (status.run_id !== this.runId && status.run_id > 0) {
        this.log.info({ from: this.runId, to: status.run_id }, 'the workflow was restarted: new run_id');
        this.runId = status.run_id;
        this.baseEnv['WEFT_RUN_ID'] = String(this.runId);
      }
    } catch (err) {
      if (!this.stopRequested) throw err;
    }
  }

  private freeSlots(): number {
    const max = this.o.maxParallelJobs;
    return max === undefined ? Infinity : max - this.running.size - this.starting.size;
  }

  private hasRoom(): boolean {
    if (this.o.maxParallelJobs !== undefined) return this.freeSlots() > 0;
    const o = this.offer();
    return o.cpus > 0 && o.memoryBytes > 0;
  }

  /**
   * What a claim may offer now: the free resources less those offered by claims in flight; when
   * claiming ahead, plus aheadDepth() (up to aheadFactor) times the node's CPUs and memory, less what
   * the queued jobs need.
   */
  private offer(): { cpus: number; memoryBytes: number; gpus: number } {
    const extra = this.claimingAhead() ? aheadDepth(this.runTimes.median ?? SHORT_JOB_MS, this.aheadFactor) : 0;
    const total = this.res.memoryGb * GIB;
    return {
      cpus: this.freeCpus + extra * this.res.numCpus - this.ahead.needs.cpus - this.reserved.cpus,
      memoryBytes: this.freeMemoryBytes + extra * total - this.ahead.needs.memoryBytes - this.reserved.memoryBytes,
      gpus: this.gpus.available - this.ahead.needs.gpus - this.reserved.gpus,
    };
  }

  /**
   * Whether claims go ahead (do not start the jobs; queue them): the server takes starts in
   * complete_jobs, the recent jobs were short (RecentRunTimes), and the slots are not all held by
   * jobs running for longer than half AHEAD_MAX_WAIT_MS (queued jobs would wait).
   */
  private claimingAhead(): boolean {
    if (this.aheadFactor <= 0 || this.o.maxParallelJobs !== undefined || this.stopRequested || !this.reporter.startsSupported) return false;
    if (Date.now() < this.aheadPausedUntil) return false;
    if (!this.runTimes.short) return false;
    if (this.running.size === 0 || this.freeCpus > 0) return true;
    const now = Date.now();
    for (const rj of this.running.values()) if (now - rj.proc.startedAt < AHEAD_MAX_WAIT_MS / 2) return true;
    return false;
  }

  /** Claim what fits and start it; returns how many jobs were claimed. */
  private async claim(): Promise<number> {
    if (this.stopRequested || !this.hasRoom() || this.claimBusy || this.piggybacks.size > 0) return 0;
    // Completions are on their way: the claim goes with them (one request instead of two).
    if (this.o.maxParallelJobs === undefined && this.reporter.claimFollows) return 0;
    if (this.o.maxParallelJobs === undefined && this.reporter.startsQueued > 0) {
      // Starts wait for a request: send them now, with the claim.
      this.reporter.flush();
      if (this.reporter.claimFollows) return 0;
    }
    let jobs: Doc[];
    const ahead = this.claimingAhead();
    this.claimBusy = true;
    try {
      const start = this.claimWithStart && !ahead ? { start_run_id: this.runId } : {};
      if (this.o.maxParallelJobs !== undefined) {
        const limit = this.freeSlots();
        jobs = (await this.client.prepareNextJobsForSubmission(this.workflow, limit, { compute_node_key: this.nodeKey, ...start }, { signal: this.stopController.signal })).jobs;
        if (jobs.length > limit) throw new Error(`prepare_next_jobs_for_submission returned ${jobs.length} jobs for limit ${limit}`);
      } else {
        const sort = this.sortMethod();
        const o = this.offer();
        const body = this.resourcesDoc(o.cpus, o.memoryBytes / GIB, o.gpus);
        jobs = (
          await this.client.prepareJobsForSubmission(
            this.workflow,
            body as never,
            { compute_node_key: this.nodeKey, ...(sort ? { sort_method: sort } : {}), ...start },
            { signal: this.stopController.signal },
          )
        ).jobs;
      }
    } catch (err) {
      if (this.stopRequested) {
        this.claimAborted = true;
        return 0;
      }
      if (this.claimWithStart && err instanceof WeftApiError && (err.status === 400 || err.status === 422) && err.code !== 'RUN_ID_MISMATCH' && JSON.stringify(err.body ?? '').includes('start_run_id')) {
        // A server without claim-and-start (Torc, an older Weft): claim, then start_job per job.
        this.log.info('the server does not start jobs as it claims them: start_job per job');
        this.claimWithStart = false;
        this.wokenEarly = true;
        return 0;
      }
      if (err instanceof WeftApiError && err.code === 'RUN_ID_MISMATCH') {
        // The workflow was restarted: an idle worker follows the new run, a busy one finishes first.
        if (!this.busy()) {
          await this.adoptRunId();
          this.wokenEarly = true;
        }
        return 0;
      }
      throw err;
    } finally {
      this.claimBusy = false;
    }
    this.launchAll(jobs, ahead);
    return jobs.length;
  }

  private sortMethod(): SortMethod | undefined {
    const sort = this.config['prepare_jobs_sort_method'];
    return typeof sort === 'string' ? (sort as SortMethod) : undefined;
  }

  /** Start what a claim returned; a claim made ahead (without start_run_id) queues its jobs. */
  private launchAll(jobs: Doc[], ahead = false): void {
    for (const job of jobs) {
      if (ahead && job['status'] === 'submitted_pending') {
        const a = AheadQueue.needsOf(job);
        if (a.cpus > this.res.numCpus || a.memoryBytes > this.res.memoryGb * GIB || a.gpus > this.gpus.size) {
          // A claim ahead offers more than the node has, so it can return a job this node can
          // never run: back it goes, and claiming ahead pauses so the next claim does not take it again.
          this.aheadPausedUntil = Date.now() + AHEAD_PAUSE_MS;
          this.giveBack(job, 'claimed ahead but needs more than this node has');
          continue;
        }
        this.ahead.add(job);
        continue;
      }
      // Claimed without being started: the server ignores start_run_id (it would have refused it otherwise).
      if (job['status'] === 'submitted_pending') this.claimWithStart = false;
      const p = this.launch(job).finally(() => this.starting.delete(p));
      this.starting.add(p);
    }
    if (ahead) this.fillSlots();
  }

  /**
   * Whether reports may wait a few ms to share a request: claiming ahead, and more than one
   * node's worth of CPUs still queued (the slots do not wait for the claim this request carries).
   */
  private holdReports(pending: number): boolean {
    return pending < HOLD_MAX_REPORTS && !this.stopRequested && this.ahead.needs.cpus >= this.res.numCpus && this.claimingAhead();
  }

  /** Start the claimed-ahead jobs that fit the free resources now (first fit, in claim order). */
  private fillSlots(): void {
    if (this.stopRequested) return;
    let cpus = this.freeCpus;
    let memoryBytes = this.freeMemoryBytes;
    let gpus = this.gpus.available;
    const fit = this.ahead.takeFitting((a) => {
      if (a.cpus > cpus || a.memoryBytes > memoryBytes || a.gpus > gpus) return false;
      cpus -= a.cpus;
      memoryBytes -= a.memoryBytes;
      gpus -= a.gpus;
      return true;
    });
    for (const a of fit) {
      const p = this.launch(a.job, true).finally(() => this.starting.delete(p));
      this.starting.add(p);
    }
  }

  /** A claimed-ahead job this worker will not run: back to ready (a refusal means it changed meanwhile; the lease covers the rest). */
  private giveBack(job: Doc, why: string): void {
    this.log.info({ job: job._key, why }, 'giving back a job claimed ahead');
    const p = this.client
      .manageStatusChange(this.workflow, job._key, 'ready', job._rev, this.runId, { retryMinutes: 1 })
      .then(
        () => undefined,
        (err: unknown) => this.log.warn({ job: job._key, err: (err as Error).message }, 'could not give back a job claimed ahead (canceled or changed meanwhile; otherwise the lease will)'),
      )
      .finally(() => this.givingBack.delete(p));
    this.givingBack.add(p);
  }

  /**
   * The claim to send with a batch of completions (the resources free now, theirs included), or
   * null: stopping, no room, a claim already in flight, or the --max-parallel-jobs mode (its
   * claims ignore requirements; complete_jobs claims by resources).
   */
  private claimWithCompletions(): CompleteJobsClaim | null {
    if (this.stopRequested || this.claimBusy || this.o.maxParallelJobs !== undefined || !this.hasRoom()) return null;
    const o = this.offer();
    const ahead = this.claimingAhead();
    const sort = this.sortMethod();
    const claim: CompleteJobsClaim = {
      compute_node_key: this.nodeKey,
      resources: this.resourcesDoc(o.cpus, o.memoryBytes / GIB, o.gpus) as unknown as CompleteJobsClaim['resources'],
      ...(sort ? { sort_method: sort } : {}),
      ...(this.claimWithStart && !ahead ? { start_run_id: this.runId } : {}),
    };
    this.reserved.cpus += o.cpus;
    this.reserved.memoryBytes += o.memoryBytes;
    this.reserved.gpus += o.gpus;
    if (this.piggybacks.size === 0) this.piggybacksDone = new Promise((r) => (this.piggybacksResolve = r));
    this.piggybacks.set(claim, { ...o, ahead });
    return claim;
  }

  /** The answer to a claim sent with completions: give back its reservation, start its jobs (null: it was not made; the loop claims). */
  private onPiggybackClaim(claim: CompleteJobsClaim, jobs: Doc[] | null): void {
    const o = this.piggybacks.get(claim);
    if (o) {
      this.piggybacks.delete(claim);
      this.reserved.cpus -= o.cpus;
      this.reserved.memoryBytes -= o.memoryBytes;
      this.reserved.gpus -= o.gpus;
    }
    if (jobs) this.launchAll(jobs, o?.ahead ?? false);
    if (this.piggybacks.size === 0) {
      const done = this.piggybacksResolve;
      this.piggybacksDone = undefined;
      this.piggybacksResolve = undefined;
      done?.();
    }
    this.wake();
  }

  /**
   * start_job, then spawn. Resources are taken at once so the next claim does not offer them
   * again. A job claimed ahead (`claimedAhead`) is spawned at once and its start goes with the
   * next complete_jobs request.
   */
  private async launch(job: Doc, claimedAhead = false): Promise<void> {
    const internal = internalOf(job);
    const cpus = internal.num_cpus ?? 1;
    const memoryBytes = internal.memory_bytes ?? 0;
    const wantGpus = internal.num_gpus ?? 0;
    let gpuIds = this.gpus.take(wantGpus);
    if (gpuIds === null) {
      // Only with --max-parallel-jobs (claims that ignore requirements): give what is free.
      gpuIds = this.gpus.take(this.gpus.available) ?? [];
      this.log.warn({ job: job._key, wanted: wantGpus, got: gpuIds.length }, 'not enough free GPUs for this job');
    }
    this.freeCpus -= cpus;
    this.freeMemoryBytes -= memoryBytes;
    const release = (): void => {
      this.freeCpus += cpus;
      this.freeMemoryBytes += memoryBytes;
      this.gpus.release(gpuIds);
      // The next claimed-ahead job takes the slot now, before this one's end is reported.
      if (this.ahead.size > 0) this.fillSlots();
      this.wake();
    };
    const name = String(job['name'] ?? job._key);
    const log = this.log.child({ job: job._key, jobName: name, runId: this.runId });
    // Claimed and started in one call (start_run_id), or claimed only (then start_job).
    const preStarted = job['status'] === 'submitted';
    const startLater = claimedAhead && !preStarted;
    if (this.stopRequested && startLater) {
      release();
      this.giveBack(job, 'the worker is stopping');
      return;
    }
    if (this.stopRequested) {
      // Stopping: record it as stopped without running it, so it is not left submitted.
      const status = this.stopReasonStatus ?? 'terminated';
      try {
        const doc = preStarted ? job : await startJobOnce(this.client, this.workflow, job, this.runId, this.nodeKey, log);
        this.reporter.report({ key: job._key, id: doc._id, doc, runId: this.runId, log }, status, { returnCode: -15, signal: null, seconds: 0 }, null);
        this.counts[status]++;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not start the job; leaving it to the server');
      }
      release();
      return;
    }
    // The process starts while start_job is in flight (as the reference worker does: it saves a
    // round trip per job). If the server refuses the start (the job was canceled or given to
    // another node meanwhile), the process is killed and nothing is reported.
    let pendingStart: PendingStart | undefined;
    const started = (
      preStarted
        ? Promise.resolve(job)
        : startLater
          ? new Promise<Doc>((resolveStart, rejectStart) => {
              pendingStart = this.reporter.reportStart({ key: job._key, doc: job, runId: this.runId, log }, (d) => (d ? resolveStart(d) : rejectStart(new Error('start refused'))));
            })
          : startJobOnce(this.client, this.workflow, job, this.runId, this.nodeKey, log)
    ).then(
      (d) => d,
      (err: unknown) => {
        log.warn({ err: (err as Error).message }, 'the server refused to start the job: killing it, leaving the job to the server');
        return null;
      },
    );
    const jobEnv: Record<string, string> = { WEFT_JOB_KEY: job._key, WEFT_JOB_NAME: name, WEFT_RUN_ID: String(this.runId) };
    if (this.gpus.size > 0 || gpuIds.length > 0) jobEnv['CUDA_VISIBLE_DEVICES'] = gpuIds.join(',');
    const proc = new JobProcess({
      workflow: this.workflow,
      jobKey: job._key,
      runId: this.runId,
      command: String(job['command']),
      invocationScript: (job['invocation_script'] as string | null | undefined) ?? null,
      outputDir: this.outputDir,
      env: this.baseEnv,
      jobEnv,
      ...(this.launcherOrReaper() ? { launcher: this.launcher } : {}),
      onStart: (pid) => {
        this.reaper.add(pid);
        this.sampler.track(job._key, pid);
      },
      ...(this.o.pdeathsig !== undefined ? { pdeathsig: this.o.pdeathsig } : {}),
    });
    this.counts.started++;
    const rj: RunningJob = {
      key: job._key,
      id: job._id,
      name,
      doc: job,
      runId: this.runId,
      outputs: this.outputs.get(job._id) ?? [],
      proc,
      cpus,
      memoryBytes,
      gpuIds,
      supportsTermination: job['supports_termination'] === true,
      log,
      exitHandled: Promise.resolve(),
      ...(pendingStart ? { start: pendingStart } : {}),
    };
    this.running.set(job._key, rj);
    log.info({ gpus: gpuIds }, 'job started');
    rj.exitHandled = (async () => {
      if (startLater) {
        // The slot is not held for the start's answer: a refusal kills the job if it still runs.
        void started.then((d) => {
          if (d === null) {
            rj.startRefused = true;
            proc.signalGroup('SIGKILL');
          } else rj.doc = d;
        });
        const exit = await proc.exited;
        this.running.delete(job._key);
        if (proc.pid !== undefined) this.reaper.remove(proc.pid);
        const stats = this.sampler.untrack(job._key);
        release();
        if (rj.startRefused) this.counts.started--;
        else this.onExit(rj, exit, stats);
        return;
      }
      const doc = await started;
      if (doc === null) proc.signalGroup('SIGKILL');
      else rj.doc = doc;
      const exit = await proc.exited;
      this.running.delete(job._key);
      if (proc.pid !== undefined) this.reaper.remove(proc.pid);
      const stats = this.sampler.untrack(job._key);
      release();
      if (doc === null) this.counts.started--;
      else this.onExit(rj, exit, stats);
    })();
  }



  /** Whether to start jobs through the launcher; when it has died, jobs are spawned and the reaper guards them. */
  private launcherOrReaper(): boolean {
    if (this.launcher.alive) return true;
    this.reaper.start();
    return false;
  }

  private onExit(rj: RunningJob, exit: JobExit, stats: ReturnType<ProcessTreeSampler['untrack']>): void {
    const status = rj.stopStatus ?? 'done';
    if (status === 'done') this.runTimes.add(exit.seconds * 1000);
    if (exit.spawnError) rj.log.error({ err: exit.spawnError.message }, 'the job could not be started');
    rj.log.info({ returnCode: exit.returnCode, seconds: exit.seconds, status }, 'job ended');
    if (status === 'done') {
      if (exit.returnCode === 0) this.counts.done++;
      else this.counts.failed++;
    } else this.counts[status]++;
    this.reporter.report(rj, status, exit, stats);
  }

  /** Stop every running job (SIGTERM, then SIGKILL after the grace period) and record it with `status`. */
  private async stopAllJobs(status: 'canceled' | 'terminated'): Promise<void> {
    this.stopRequested = true;
    this.stopController.abort(new Error('worker stopping'));
    // A claim sent with completions may still bring jobs: wait for it, then for their launches.
    while (this.starting.size > 0 || this.piggybacksDone) {
      if (this.piggybacksDone) await this.piggybacksDone;
      await Promise.allSettled([...this.starting]);
    }
    const graceTerm = (this.o.killGraceSeconds ?? 30) * 1000;
    await Promise.all(
      [...this.running.values()].map(async (rj) => {
        rj.stopStatus ??= status;
        const grace = this.hardStop ? 0 : rj.supportsTermination ? graceTerm : Math.min(2_000, graceTerm);
        rj.log.info({ status, graceMs: grace }, 'stopping the job');
        await rj.proc.terminate(grace);
        await rj.exitHandled;
      }),
    );
  }



  private scriptEnv(): NodeJS.ProcessEnv {
    return { ...(this.o.env ?? process.env), WEFT_WORKFLOW_KEY: this.workflow, WEFT_URL: this.client.baseUrl, WEFT_RUN_ID: String(this.runId) };
  }
}

/**
 * complete_jobs requests in flight at once: WEFT_WORKER_REPORTS_IN_FLIGHT, default 1 (completions
 * that end while one is out wait for the next, which batches them).
 */
function reportsInFlight(): number {
  const n = Number(process.env['WEFT_WORKER_REPORTS_IN_FLIGHT'] ?? 1);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * WEFT_WORKER_CLAIM_AHEAD: at most how many nodes' worth of CPUs and memory may wait claimed ahead
 * (default 16; the depth used is aheadDepth() of the recent median run time; 0 turns claiming ahead off).
 */
function claimAheadFactor(): number {
  const n = Number(process.env['WEFT_WORKER_CLAIM_AHEAD'] ?? 16);
  return Number.isFinite(n) && n >= 0 ? n : 16;
}

function positiveEnv(name: string, dflt: number): number {
  const n = Number(process.env[name] ?? dflt);
  return Number.isFinite(n) && n > 0 ? n : dflt;
}

function numberOr(v: unknown, dflt: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}
