/**
 * Job view routes: jobs by key, status, needed file and dependency; the files, user data,
 * results, process statistics and resource requirements of one job; job specifications.
 * Every list pages with skip/limit over the whole result (Torc 0.6.4 ignored skip in several).
 */
import { z } from 'zod';
import {
  addJobUserData,
  downstreamJobs,
  filesProducedByJob,
  findJobsByNeedsFile,
  findJobsByStatus,
  jobKeys,
  jobProcessStats,
  jobResourceRequirements,
  jobUserData,
  latestJobResult,
  setJobResourceRequirements,
} from '../../graph/engine/views-jobs.js';
import type { Page, PageOptions } from '../../graph/engine/views-paging.js';
import { getJobSpecification, listJobSpecifications } from '../../graph/engine/views-spec.js';
import {
  EdgeSchema,
  FileSchema,
  JobProcessStatsSchema,
  JobSchema,
  JobStatusSchema,
  ResourceRequirementsSchema,
  ResultSchema,
  UserDataSchema,
} from '../../graph/model.js';
import type { Doc, GraphStore } from '../../graph/store/port.js';
import type { ApiRouter, RouteDeps } from '../api-router.js';
import { assertWorkflow, batchSchema, toBatch } from '../route-helpers.js';
import { PagingQueryShape, WorkflowKeyParam, keyOrId } from '../validate.js';

const JobKey = keyOrId(['jobs'], 'Key or id of the job');
const JobParams = z.object({ workflow: WorkflowKeyParam, key: JobKey });
const PagingQuery = z.strictObject(PagingQueryShape);

/** skip/limit for the engine from a parsed paging query. */
export function pagingOf(query: { skip?: number | undefined; limit?: number | undefined } | undefined): { skip?: number; limit?: number } {
  return { ...(query?.skip === undefined ? {} : { skip: query.skip }), ...(query?.limit === undefined ? {} : { limit: query.limit }) };
}

/** A batch response from an engine page. */
export function batchOf<T>(page: Page<T>) {
  return toBatch(page.items as unknown as Doc[], page.skip, page.total);
}

/** What the handler of a route on one document (`key`) of a workflow reads of its request. */
interface KeyedRequest {
  deps: RouteDeps;
  params: { workflow: string; key: string };
  query?: { skip?: number | undefined; limit?: number | undefined } | undefined;
}

/** The handler of a route answered by `view` of one document: 404 WORKFLOW_NOT_FOUND first. */
function keyedView<T>(view: (store: GraphStore, workflow: string, key: string) => Promise<T>) {
  return async ({ deps, params }: KeyedRequest): Promise<T> => {
    await assertWorkflow(deps.store, params.workflow);
    return view(deps.store, params.workflow, params.key);
  };
}

/** The same for a paged view: skip/limit from the query, the page answered as a batch. */
function pagedKeyedView<T>(view: (store: GraphStore, workflow: string, key: string, paging: PageOptions) => Promise<Page<T>>) {
  return async ({ deps, params, query }: KeyedRequest) => {
    await assertWorkflow(deps.store, params.workflow);
    return batchOf(await view(deps.store, params.workflow, params.key, pagingOf(query)));
  };
}

export const JobSpecificationSchema = z.looseObject({
  name: z.string(),
  command: z.string(),
  invocation_script: z.string().nullish(),
  cancel_on_blocking_job_failure: z.boolean(),
  supports_termination: z.boolean(),
  scheduler: z.string().optional().meta({ description: 'collection/name of the scheduler, e.g. slurm_schedulers/debug' }),
  schedule_compute_nodes: z.looseObject({}).optional(),
  resource_requirements: z.string().optional(),
  input_files: z.array(z.string()),
  output_files: z.array(z.string()),
  input_user_data: z.array(z.string()),
  output_user_data: z.array(z.string()),
  blocked_by: z.array(z.string()),
});

export function registerViewsJobRoutes(api: ApiRouter): void {
  const tags = ['jobs'];

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/job_keys',
      summary: 'Retrieve all job keys for a workflow',
      operationId: 'list_job_keys',
      tags,
      params: z.object({ workflow: WorkflowKeyParam }),
      response: z.object({ items: z.array(z.string()) }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.workflow);
      return { items: await jobKeys(deps.store, params.workflow) };
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/jobs/find_by_status/{status}',
      summary: 'Retrieve all jobs with a specific status',
      operationId: 'list_jobs_by_status',
      tags,
      params: z.object({ workflow: WorkflowKeyParam, status: JobStatusSchema }),
      query: PagingQuery,
      response: batchSchema(JobSchema),
    },
    async ({ deps, params, query }) => {
      await assertWorkflow(deps.store, params.workflow);
      return batchOf(await findJobsByStatus(deps.store, params.workflow, params.status, pagingOf(query)));
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/jobs/find_by_needs_file/{key}',
      summary: 'Retrieve all jobs that need a file',
      operationId: 'list_jobs_by_needs_file',
      tags,
      params: z.object({ workflow: WorkflowKeyParam, key: keyOrId(['files'], 'Key or id of the file') }),
      query: PagingQuery,
      response: batchSchema(JobSchema),
    },
    pagedKeyedView(findJobsByNeedsFile),
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/downstream_jobs/{key}',
      summary: 'Retrieve all jobs downstream of another job (transitively, breadth first)',
      operationId: 'list_downstream_jobs',
      tags,
      params: JobParams,
      query: PagingQuery,
      response: batchSchema(JobSchema),
    },
    pagedKeyedView(downstreamJobs),
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/files/produced_by_job/{key}',
      summary: 'Retrieve files produced by a job',
      operationId: 'list_files_produced_by_job',
      tags: ['files'],
      params: JobParams,
      query: PagingQuery,
      response: batchSchema(FileSchema),
    },
    pagedKeyedView(filesProducedByJob),
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{workflow}/jobs/{key}/user_data',
      summary: 'Store user data for a job (a user_data document and a stores edge from the job)',
      operationId: 'add_job_user_data',
      tags: ['user_data'],
      params: JobParams,
      body: UserDataSchema,
      response: UserDataSchema,
    },
    async ({ deps, params, body }) => {
      await assertWorkflow(deps.store, params.workflow);
      return addJobUserData(deps.store, params.workflow, params.key, body as Record<string, unknown>);
    },
  );

  for (const edge of ['stores', 'consumes'] as const) {
    api.route(
      {
        method: 'get',
        path: `/workflows/{workflow}/jobs/{key}/user_data_${edge}`,
        summary: edge === 'stores' ? 'Retrieve all user data stored by a job' : 'Retrieve all user data consumed by a job',
        operationId: `list_job_user_data_${edge}`,
        tags: ['user_data'],
        params: JobParams,
        query: PagingQuery,
        response: batchSchema(UserDataSchema),
      },
      pagedKeyedView((store, workflow, key, paging) => jobUserData(store, workflow, key, edge, paging)),
    );
  }

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/results/find_by_job/{key}',
      summary: "Retrieve the job's result for the current run (404 if it has none)",
      operationId: 'get_latest_job_result',
      tags: ['results'],
      params: JobParams,
      response: ResultSchema,
    },
    keyedView(latestJobResult),
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/jobs/{key}/process_stats',
      summary: 'Retrieve the job process stats for a job, sorted by run_id',
      operationId: 'get_process_stats_for_job',
      tags: ['job_process_stats'],
      params: JobParams,
      response: z.array(JobProcessStatsSchema),
    },
    keyedView(jobProcessStats),
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/jobs/{key}/resource_requirements',
      summary: 'Retrieve the resource requirements for a job (the defaults, named "default", when it has none)',
      operationId: 'get_job_resource_requirements',
      tags: ['resource_requirements'],
      params: JobParams,
      response: ResourceRequirementsSchema,
    },
    keyedView(jobResourceRequirements),
  );

  api.route(
    {
      method: 'put',
      path: '/workflows/{workflow}/jobs/{key}/resource_requirements/{rr_key}',
      summary: 'Set the resource requirements for a job, replacing any current value; returns the requires edge',
      description: "The job's packing cache (internal) is refreshed by the next initialize_jobs.",
      operationId: 'modify_job_resource_requirements',
      tags: ['resource_requirements'],
      params: JobParams.extend({ rr_key: keyOrId(['resource_requirements'], 'Key or id of the resource requirements') }),
      response: EdgeSchema,
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.workflow);
      return setJobResourceRequirements(deps.store, params.workflow, params.key, params.rr_key);
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/job_specifications',
      summary: 'Retrieve all job definitions (names instead of ids), paged',
      operationId: 'list_job_specifications',
      tags,
      params: z.object({ workflow: WorkflowKeyParam }),
      query: PagingQuery,
      response: batchSchema(JobSpecificationSchema),
    },
    async ({ deps, params, query }) => {
      await assertWorkflow(deps.store, params.workflow);
      return batchOf(await listJobSpecifications(deps.store, params.workflow, pagingOf(query)));
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{workflow}/job_specifications/{key}',
      summary: 'Retrieve the definition of one job (names instead of ids)',
      operationId: 'get_job_specification',
      tags,
      params: JobParams,
      response: JobSpecificationSchema,
    },
    keyedView(getJobSpecification),
  );
}
