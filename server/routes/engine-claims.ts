/**
 * Engine routes: handing jobs to workers (graph/engine/claims.ts).
 *
 * - POST /workflows/{key}/prepare_jobs_for_submission: pack ready jobs into the worker's
 *   resources (body: WorkerResources), sort_method and limit in the query.
 * - POST /workflows/{key}/prepare_next_jobs_for_submission?limit=: the next N, no resource checks.
 * - POST /workflows/{key}/prepare_jobs_for_scheduling: ready jobs with schedule_compute_nodes
 *   become scheduled; their parameters are returned.
 *
 * Weft addition: `compute_node_key` in the query of the two prepare_*_for_submission calls
 * records the claiming compute node on each job (internal.compute_node_key), which the lease loop
 * uses to give the jobs back if that node's heartbeat lapses.
 *
 * Weft addition: `start_run_id` in the query of the same two calls claims and starts in one
 * transaction (each job as start_job would start it, with that run_id); it needs
 * compute_node_key. The jobs come back `submitted` with their current `_rev`.
 */
import { z } from 'zod';
import { WeftError } from '../../graph/errors.js';
import { missingComputeNode, prepareJobsForScheduling, prepareJobsForSubmission, prepareNextJobsForSubmission } from '../../graph/engine/claims.js';
import { ComputeNodeScheduleParamsSchema, JobSchema, SORT_METHODS, WorkerResourcesSchema } from '../../graph/model.js';
import type { GraphStore } from '../../graph/store/port.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow } from '../route-helpers.js';
import { MAX_LIMIT, ObjectBody, WorkflowKeyParam, keyOrId, queryInt } from '../validate.js';

const KeyParams = z.object({ key: WorkflowKeyParam });

/** A positive whole number; Torc's clients may send it as a float (`10.0`). */
function queryCount(max: number) {
  return z
    .string()
    .regex(/^\d{1,16}(\.0+)?$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));
}

const ComputeNodeKeyQuery = keyOrId(['compute_nodes'], 'Key of the claiming compute node (recorded on each job for the lease loop)').optional();
const StartRunIdQuery = queryInt(0)
  .optional()
  .meta({ description: 'Weft extension: also start each claimed job (as start_job with this run_id) in the same transaction; the jobs come back submitted. Needs compute_node_key; a run_id that is not the workflow\'s is 400 RUN_ID_MISMATCH and nothing is claimed.' });

/** 404 naming the field when the compute node does not exist in the workflow. */
export async function requireComputeNode(store: GraphStore, workflow: string, key: string | undefined, path: (string | number)[] = ['compute_node_key'], where: 'query' | 'body' = 'query'): Promise<void> {
  if (key === undefined) return;
  if (!(await store.has('compute_nodes', workflow, key))) {
    throw new WeftError('DOCUMENT_NOT_FOUND', `Compute node ${key} not found in workflow ${workflow}`, {
      details: [{ path, message: 'no such compute node in this workflow', rule: 'exists' }],
      extra: { collection: 'compute_nodes', key, in: where },
    });
  }
}

/** start_run_id needs compute_node_key (400 naming it, before anything is read). */
function checkStartQuery(query: { compute_node_key?: string | undefined; start_run_id?: number | undefined }): void {
  if (query.start_run_id !== undefined && query.compute_node_key === undefined) throw missingComputeNode();
}

export function registerEngineClaimsRoutes(api: ApiRouter): void {
  const tags = ['workflows'];

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/prepare_jobs_for_submission',
      summary: 'Claim ready jobs that fit the worker\'s resources; they become submitted_pending',
      description:
        'Candidates are ready and scheduled jobs whose runtime fits time_limit, whose num_nodes fits the worker and whose scheduler is unset or the worker\'s. ' +
        'They are packed greedily in sort order against what the jobs taken before left over (CPUs, memory, GPUs; multi-node jobs also use nodes); a job that does not fit is skipped, never ending the search. ' +
        'limit bounds the number of jobs returned. reason says why nothing matched. A canceled workflow returns no jobs. ' +
        'With start_run_id (Weft extension) the jobs are also started in the same transaction and come back submitted.',
      operationId: 'prepare_jobs_for_submission',
      tags,
      params: KeyParams,
      query: z.strictObject({
        sort_method: z.enum(SORT_METHODS).optional().meta({ description: 'Order of the candidates. Default gpus_runtime_memory (all descending); none = insertion order.' }),
        limit: queryCount(MAX_LIMIT).optional().meta({ description: `Most jobs returned. Default ${MAX_LIMIT}.` }),
        compute_node_key: ComputeNodeKeyQuery,
        start_run_id: StartRunIdQuery,
      }),
      body: WorkerResourcesSchema,
      response: z.object({ jobs: z.array(JobSchema), reason: z.string() }),
    },
    async ({ deps, params, query, body }) => {
      checkStartQuery(query);
      return prepareJobsForSubmission(deps.store, params.key, body, {
        precheck: async (tx) => {
          await assertWorkflow(tx, params.key);
          await requireComputeNode(tx, params.key, query.compute_node_key);
        },
        ...(query.sort_method ? { sortMethod: query.sort_method } : {}),
        ...(query.limit ? { limit: query.limit } : {}),
        ...(query.compute_node_key ? { computeNodeKey: query.compute_node_key } : {}),
        ...(query.start_run_id !== undefined ? { startRunId: query.start_run_id } : {}),
      });
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/prepare_next_jobs_for_submission',
      summary: 'Claim the next ready jobs, with no resource checks; they become submitted_pending',
      description:
        'Up to limit (default 1) ready or scheduled jobs in insertion order. A canceled workflow returns no jobs. ' +
        'With start_run_id (Weft extension) the jobs are also started in the same transaction and come back submitted.',
      operationId: 'prepare_next_jobs_for_submission',
      tags,
      params: KeyParams,
      query: z.strictObject({
        limit: queryCount(MAX_LIMIT).optional().meta({ description: 'Most jobs returned. Default 1.' }),
        compute_node_key: ComputeNodeKeyQuery,
        start_run_id: StartRunIdQuery,
      }),
      body: ObjectBody,
      bodyRequired: false,
      response: z.object({ jobs: z.array(JobSchema) }),
    },
    async ({ deps, params, query }) => {
      checkStartQuery(query);
      await assertWorkflow(deps.store, params.key);
      await requireComputeNode(deps.store, params.key, query.compute_node_key);
      return { jobs: await prepareNextJobsForSubmission(deps.store, params.key, query.limit ?? 1, query.compute_node_key, query.start_run_id) };
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/prepare_jobs_for_scheduling',
      summary: 'Ready jobs that ask for compute nodes become scheduled; returns their schedule_compute_nodes parameters',
      description: 'One entry per job (not deduplicated). A canceled workflow returns none.',
      operationId: 'prepare_jobs_for_scheduling',
      tags,
      params: KeyParams,
      body: ObjectBody,
      bodyRequired: false,
      response: z.object({ schedulers: z.array(ComputeNodeScheduleParamsSchema) }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.key);
      return { schedulers: await prepareJobsForScheduling(deps.store, params.key) };
    },
  );
}
