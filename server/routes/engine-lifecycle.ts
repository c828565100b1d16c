/**
 * Engine routes: the job lifecycle (graph/engine/lifecycle*.ts, initialize.ts, status.ts, lease.ts).
 * initialize_jobs, start_job, complete_job, manage_status_change, cancel, reset_status,
 * reset_job_status, is_complete, and the Weft extensions: the compute node heartbeat and
 * complete_jobs (many completions and the next claim in one request).
 */
import { z } from 'zod';
import { initializeJobs } from '../../graph/engine/initialize.js';
import { heartbeat } from '../../graph/engine/lease.js';
import { claimTimeLimit, prepareJobsForSubmission } from '../../graph/engine/claims.js';
import { checkRunId, completeJob, completeJobs, manageStatusChange, startJob, startJobsEach, workflowRun, type StartedRevs } from '../../graph/engine/lifecycle.js';
import { cancelWorkflow, isWorkflowComplete, resetJobStatus, resetWorkflowStatus } from '../../graph/engine/status.js';
import { JOB_STATUSES, JobSchema, ResultSchema, SORT_METHODS, WorkerResourcesSchema, type ResultBody } from '../../graph/model.js';
import type { Doc, GraphStore } from '../../graph/store/port.js';
import type { ApiRouter } from '../api-router.js';
import { errorBody, toWeftError, type ErrorBody } from '../errors.js';
import { assertWorkflow, workflowView } from '../route-helpers.js';
import { MAX_LIMIT, ObjectBody, QueryBoolean, WorkflowKeyParam, keyOrId, queryInt } from '../validate.js';
import { requireComputeNode } from './engine-claims.js';

const KeyParams = z.object({ key: WorkflowKeyParam });
const JobKey = keyOrId(['jobs'], 'Job key or id');
const NodeKey = keyOrId(['compute_nodes'], 'Compute node key or id');
const Rev = z.string().min(1).meta({ description: 'The job revision (_rev) the caller read' });
const RunId = queryInt(0).meta({ description: 'The workflow run_id the caller works for' });
const Message = z.object({ message: z.string() }).loose();
const JobDoc = z.object({ _key: z.string(), _id: z.string(), _rev: z.string(), status: z.string() }).loose();
const CompleteStatus = z.enum(['done', 'canceled', 'terminated']);

/** Most completions in one complete_jobs request. */
export const MAX_COMPLETIONS = 1000;

const CompletionItem = z.strictObject({
  job_key: JobKey,
  status: CompleteStatus.meta({ description: 'The completion status (complete_job\'s {status})' }),
  rev: z.string().min(1).meta({ description: 'The job revision (_rev) the caller read' }),
  run_id: z.number().int().min(0).meta({ description: 'The workflow run_id the caller works for' }),
  compute_node_key: NodeKey,
  result: ResultSchema.meta({ description: 'complete_job\'s Result body' }),
});

const StartItem = z.strictObject({
  job_key: JobKey,
  rev: z.string().min(1).meta({ description: 'The job revision (_rev) the claim answered' }),
  run_id: z.number().int().min(0).meta({ description: 'The workflow run_id the caller works for' }),
  compute_node_key: NodeKey,
});

const CompleteJobsBody = z.strictObject({
  starts: z
    .array(StartItem)
    .max(MAX_COMPLETIONS)
    .optional()
    .meta({
      description:
        `At most ${MAX_COMPLETIONS} starts of jobs the caller claimed (submitted_pending, held by its compute node), each applied before the completions with start_job's rules in a transaction of its own; ` +
        'a job this node already started (submitted, held by it) answers 200 unchanged. A completion of a job started in the same request may give the revision the start gave.',
    }),
  completions: z.array(CompletionItem).max(MAX_COMPLETIONS).meta({ description: `At most ${MAX_COMPLETIONS} completions, each applied with complete_job's rules in a transaction of its own` }),
  claim: z
    .strictObject({
      compute_node_key: NodeKey,
      resources: WorkerResourcesSchema,
      limit: z.number().int().min(1).max(MAX_LIMIT).optional().meta({ description: `Most jobs claimed. Default ${MAX_LIMIT}.` }),
      sort_method: z.enum(SORT_METHODS).optional(),
      start_run_id: z.number().int().min(0).optional().meta({ description: 'Also start the claimed jobs (as start_job with this run_id)' }),
    })
    .optional()
    .meta({ description: 'A prepare_jobs_for_submission claim (with start_run_id: claim and start) made after the completions' }),
});

const ErrorObject = z.object({ code: z.string(), message: z.string(), details: z.array(z.unknown()), retryable: z.boolean() }).loose();

const CompleteJobsResponse = z.object({
  started: z
    .array(
      z.object({
        job_key: z.string(),
        status: z.number().int().meta({ description: '200, or the status a single start_job would have answered' }),
        job: JobDoc.optional().meta({ description: 'The started job (status 200)' }),
        error: ErrorObject.optional().meta({ description: 'The error body start_job would have answered (status 4xx)' }),
      }),
    )
    .optional()
    .meta({ description: 'Present when starts were given: one item per start, in request order' }),
  items: z.array(
    z.object({
      job_key: z.string(),
      status: z.number().int().meta({ description: '200, or the status a single complete_job would have answered' }),
      job: JobDoc.optional().meta({ description: 'The completed job (status 200)' }),
      error: ErrorObject.optional().meta({ description: 'The error body complete_job would have answered (status 4xx)' }),
    }),
  ),
  claimed: z.object({ jobs: z.array(JobSchema), reason: z.string() }).optional(),
  claim_error: ErrorObject.optional().meta({ description: 'Why the claim failed after the completions were applied (a run_id changed meanwhile); claimed is then empty' }),
});

type BatchClaim = NonNullable<z.output<typeof CompleteJobsBody>['claim']>;

/** complete_jobs' claim: prepare_jobs_for_submission; a 4xx after the completions were applied is reported, not thrown. */
async function runClaim(store: GraphStore, wf: string, claim: BatchClaim): Promise<{ claimed: { jobs: Doc[]; reason: string }; claim_error?: ErrorBody['error'] }> {
  try {
    const claimed = await prepareJobsForSubmission(store, wf, claim.resources, {
      computeNodeKey: claim.compute_node_key,
      ...(claim.sort_method ? { sortMethod: claim.sort_method } : {}),
      ...(claim.limit ? { limit: claim.limit } : {}),
      ...(claim.start_run_id !== undefined ? { startRunId: claim.start_run_id } : {}),
    });
    return { claimed };
  } catch (raw) {
    // The completions are applied: answer them, and say why the claim was refused.
    const err = toWeftError(raw);
    if (err.httpStatus >= 500) throw raw;
    return { claimed: { jobs: [], reason: err.message }, claim_error: errorBody(err).error };
  }
}

export function registerEngineLifecycleRoutes(api: ApiRouter): void {
  const tags = ['workflows'];
  const jobTags = ['jobs'];

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/initialize_jobs',
      summary: 'Initialize jobs: resources, scheduler, implicit dependencies as blocks edges, ready/blocked statuses',
      description:
        'One transaction. Implicit dependencies (file producer → consumer, user data storer → consumer) are added as blocks edges. ' +
        'Jobs with an unfinished blocker become blocked (internal.num_unfinished_blockers counts them), others ready; done and disabled jobs keep their status. ' +
        'A malformed stored memory or runtime is a 400 naming the jobs and the field, and nothing is written. run_id is not changed.',
      operationId: 'initialize_jobs',
      tags,
      params: KeyParams,
      query: z.strictObject({
        only_uninitialized: QueryBoolean.optional().meta({ description: 'Only re-evaluate uninitialized (and blocked) jobs. Default false.' }),
        clear_ephemeral_user_data: QueryBoolean.optional().meta({ description: 'Empty ephemeral user data first. Default true.' }),
      }),
      body: ObjectBody,
      bodyRequired: false,
      response: Message,
    },
    async ({ deps, params, query }) => {
      const summary = await initializeJobs(deps.store, params.key, {
        onlyUninitialized: query.only_uninitialized ?? false,
        clearEphemeralUserData: query.clear_ephemeral_user_data ?? true,
      });
      return { message: 'Initialized job status', ...summary };
    },
  );

  api.route(
    {
      method: 'put',
      path: '/workflows/{workflow}/jobs/{key}/start_job/{rev}/{run_id}/{compute_node_key}',
      summary: 'Start a job (submitted_pending → submitted), recording which compute node runs it',
      description:
        '400 if the job is not submitted_pending; 409 if it is held by another compute node or the revision is stale; 400 on a run_id mismatch. ' +
        'Stores the input hash, an executed edge and a start event.',
      operationId: 'start_job',
      tags: jobTags,
      params: z.object({ workflow: WorkflowKeyParam, key: JobKey, rev: Rev, run_id: RunId, compute_node_key: NodeKey }),
      body: ObjectBody,
      bodyRequired: false,
      response: JobDoc,
    },
    async ({ deps, params }) => startJob(deps.store, params.workflow, params.key, params.rev, params.run_id, params.compute_node_key),
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{workflow}/jobs/{key}/complete_job/{status}/{rev}/{run_id}/{compute_node_key}',
      summary: 'Complete a job with its result; unblocks (or cancels) its dependants in the same transaction',
      description:
        'Everything is checked before anything is written. A retried identical report answers 200 and changes nothing. ' +
        '409 if another compute node holds the job (its lease lapsed), the revision is stale, or the job is not submitted_pending/submitted (or canceled by a workflow cancel); 400 on a run_id mismatch. ' +
        'A failure (return_code != 0, or canceled) cancels dependants that ask for it, transitively.',
      operationId: 'complete_job',
      tags: jobTags,
      params: z.object({
        workflow: WorkflowKeyParam,
        key: JobKey,
        status: z.enum(['done', 'canceled', 'terminated']).meta({ description: 'The completion status' }),
        rev: Rev,
        run_id: RunId,
        compute_node_key: NodeKey,
      }),
      body: ResultSchema,
      response: JobDoc,
    },
    async ({ deps, params, body }) =>
      completeJob(deps.store, params.workflow, params.key, params.status, params.rev, params.run_id, params.compute_node_key, body as Parameters<typeof completeJob>[7]),
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/complete_jobs',
      summary: 'Start claimed jobs, complete many jobs, then optionally claim (and start) the next ones, in one request (Weft extension)',
      description:
        `starts (optional) run first, each with start_job's rules in a transaction of its own (a job already started by this node answers 200 unchanged); started answers them in request order. ` +
        `Each completion is applied with complete_job's rules (identical retries answer 200 and change nothing; unblocking and cascades in its transaction), ` +
        `each in a transaction of its own, so a stale one does not undo the others; items answer in request order with 200 and the job, or the status and error body complete_job would have answered. ` +
        `At most ${MAX_COMPLETIONS} completions. Then claim, when given, runs as prepare_jobs_for_submission (start_run_id: claim and start), so it can take jobs the completions just unblocked. ` +
        'A bad claim (unknown compute node, bad time_limit, run_id mismatch) is refused before any completion is applied.',
      operationId: 'complete_jobs',
      tags,
      params: KeyParams,
      body: CompleteJobsBody,
      response: CompleteJobsResponse,
    },
    async ({ deps, params, body }) => {
      const wf = params.key;
      await assertWorkflow(deps.store, wf);
      const claim = body.claim;
      if (claim) {
        claimTimeLimit(claim.resources, ['claim', 'resources', 'time_limit']);
        await requireComputeNode(deps.store, wf, claim.compute_node_key, ['claim', 'compute_node_key'], 'body');
        if (claim.start_run_id !== undefined) checkRunId(wf, (await workflowRun(deps.store, wf)).runId, claim.start_run_id);
      }
      // The claim is queued as soon as every completion has run (before their commit), so it
      // sees the jobs they unblocked and shares their group commit; not when one of them failed
      // (the request fails: claimed jobs would be held by a node that never hears of them).
      // Likewise the completions are queued once every start has run (they may complete a job
      // started here, with the revision it gave), in the same group commit.
      const revs: StartedRevs = new Map();
      let startsRan!: (failed: boolean) => void;
      const allStartsRan = new Promise<boolean>((resolve) => (startsRan = resolve));
      const startsP = body.starts
        ? startJobsEach(deps.store, wf, body.starts.map((s) => ({ key: s.job_key, rev: s.rev, runId: s.run_id, nodeKey: s.compute_node_key })), revs, startsRan)
        : undefined;
      if (!body.starts) startsRan(false);
      let ran!: (failed: boolean) => void;
      const allRan = new Promise<boolean>((resolve) => (ran = resolve));
      const outcomesP = allStartsRan.then((failed) => {
        if (failed) {
          ran(true);
          return undefined;
        }
        return completeJobs(
          deps.store,
          wf,
          body.completions.map((c) => ({ key: c.job_key, status: c.status, rev: c.rev, runId: c.run_id, nodeKey: c.compute_node_key, result: c.result as ResultBody })),
          ran,
          revs,
        );
      });
      const claimedP = claim ? allRan.then((failed) => (failed ? undefined : runClaim(deps.store, wf, claim))) : undefined;
      // Settle all before answering (or throwing), so nothing runs on after the answer.
      const [starts, outcomes, claimed] = await Promise.allSettled([startsP, outcomesP, claimedP]);
      if (starts.status === 'rejected') throw starts.reason;
      if (outcomes.status === 'rejected') throw outcomes.reason;
      if (claimed.status === 'rejected') throw claimed.reason;
      const answer = (o: { job?: Doc; error?: ReturnType<typeof toWeftError> }, job_key: string) =>
        o.error ? { job_key, status: o.error.httpStatus, error: errorBody(o.error).error } : { job_key, status: 200, job: o.job };
      const items = (outcomes.value ?? []).map((o, i) => answer(o, body.completions[i]!.job_key));
      const started = starts.value?.map((o, i) => answer(o, body.starts![i]!.job_key));
      return { ...(started ? { started } : {}), items, ...(claimed.value ?? {}) };
    },
  );

  api.route(
    {
      method: 'put',
      path: '/workflows/{workflow}/jobs/{key}/manage_status_change/{status}/{rev}/{run_id}',
      summary: 'Change a job to an unfinished status; a finished job going back resets everything downstream to uninitialized',
      description:
        'A complete status is 400 (use complete_job); a stale revision is 400 (as Torc); the same status changes nothing; ' +
        'submitted_pending and submitted are 400 (claims and start_job only); a run_id mismatch is 400.',
      operationId: 'manage_status_change',
      tags: jobTags,
      params: z.object({ workflow: WorkflowKeyParam, key: JobKey, status: z.enum(JOB_STATUSES), rev: Rev, run_id: RunId }),
      body: ObjectBody,
      bodyRequired: false,
      response: JobDoc,
    },
    async ({ deps, params }) => manageStatusChange(deps.store, params.workflow, params.key, params.status, params.rev, params.run_id),
  );

  api.route(
    {
      method: 'put',
      path: '/workflows/{key}/cancel',
      summary: 'Cancel a workflow: is_canceled, and every job that has not finished becomes canceled',
      description: 'Workers see the cancel through is_complete (a canceled workflow is complete) and stop their jobs.',
      operationId: 'cancel_workflow',
      tags,
      params: KeyParams,
      body: ObjectBody,
      bodyRequired: false,
      response: Message,
    },
    async ({ deps, params }) => {
      const { canceled } = await cancelWorkflow(deps.store, params.key);
      return { message: 'Canceled workflow', num_canceled_jobs: canceled.length };
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/reset_status',
      summary: 'Reset the workflow status (not canceled, completion script not yet run); run_id is kept',
      operationId: 'reset_workflow_status',
      tags,
      params: KeyParams,
      body: ObjectBody,
      bodyRequired: false,
      response: Message,
    },
    async ({ deps, params }) => {
      await resetWorkflowStatus(deps.store, params.key);
      return { message: 'Reset workflow status' };
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/reset_job_status',
      summary: 'Reset jobs to uninitialized: all, or only failed ones and their downstream jobs',
      description:
        'failed_only=true: jobs whose latest result has a non-zero return code, canceled and terminated jobs, and every job downstream of them.',
      operationId: 'reset_job_status',
      tags,
      params: KeyParams,
      query: z.strictObject({ failed_only: QueryBoolean.optional().meta({ description: 'Only failed jobs (and their downstream jobs). Default false.' }) }),
      body: ObjectBody,
      bodyRequired: false,
      response: Message,
    },
    async ({ deps, params, query }) => {
      const failedOnly = query.failed_only ?? false;
      const keys = await resetJobStatus(deps.store, params.key, failedOnly);
      return { message: `Reset job status to uninitialized failed_only=${failedOnly}`, reset_job_keys: keys };
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/is_complete',
      summary: 'Whether the workflow is complete (every job done, canceled, terminated or disabled; or the workflow canceled)',
      description: 'needs_to_run_completion_script is true for exactly one caller, the first to see the workflow complete when a completion script is configured.',
      operationId: 'is_workflow_complete',
      tags,
      params: KeyParams,
      response: z.object({ is_canceled: z.boolean(), is_complete: z.boolean(), needs_to_run_completion_script: z.boolean() }),
    },
    workflowView(isWorkflowComplete),
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{workflow}/compute_nodes/{key}/heartbeat',
      summary: 'Heartbeat a compute node (Weft extension): last_heartbeat = now, in epoch seconds',
      description: 'Jobs held by a node whose heartbeat is older than the server leaseTimeoutSeconds are given back (ready again). A node that never heartbeats holds its jobs without a lease.',
      operationId: 'heartbeat_compute_node',
      tags: ['compute_nodes'],
      params: z.object({ workflow: WorkflowKeyParam, key: NodeKey }),
      body: ObjectBody,
      bodyRequired: false,
      response: z.object({ _key: z.string(), last_heartbeat: z.number() }).loose(),
    },
    async ({ deps, params }) => heartbeat(deps.store, params.workflow, params.key),
  );
}
