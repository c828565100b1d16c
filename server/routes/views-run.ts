/**
 * Run-preparation view routes: pre-start checks (files that must exist, user data that is
 * missing), change detection for restarts, and auto-tune of resource requirements.
 */
import { z } from 'zod';
import { enableAutoTune, processAutoTuneResults } from '../../graph/engine/views-autotune.js';
import { processChangedJobInputs } from '../../graph/engine/views-changes.js';
import { missingUserData, requiredExistingFiles } from '../../graph/engine/views-checks.js';
import { readyJobRequirements } from '../../graph/engine/views-ready.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow, workflowView } from '../route-helpers.js';
import { ObjectBody, QueryBoolean, WorkflowKeyParam } from '../validate.js';

const KeyParams = z.object({ key: WorkflowKeyParam });

export function registerViewsRunRoutes(api: ApiRouter): void {
  const tags = ['workflows'];

  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/required_existing_files',
      summary: 'List files that must exist before a start (needed by a job, produced by none), each once',
      operationId: 'list_required_existing_files',
      tags,
      params: KeyParams,
      response: z.object({ files: z.array(z.string()) }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.key);
      return { files: await requiredExistingFiles(deps.store, params.key) };
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/missing_user_data',
      summary: 'List consumed user data that is empty but should hold data (no job stores it, or its storers are done), each once',
      operationId: 'list_missing_user_data',
      tags,
      params: KeyParams,
      response: z.object({ user_data: z.array(z.string()) }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.key);
      return { user_data: await missingUserData(deps.store, params.key) };
    },
  );

  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/ready_job_requirements',
      summary: 'Return the summed resource requirements of the ready jobs',
      description:
        'num_jobs, num_cpus, num_gpus and memory_gb are sums; max_num_nodes and max_runtime (the runtime string of the longest job) are maxima. ' +
        'With scheduler_config_id, jobs bound to another scheduler are left out.',
      operationId: 'get_ready_job_requirements',
      tags,
      params: KeyParams,
      query: z.strictObject({ scheduler_config_id: z.string().optional().meta({ description: 'Id of a scheduler document (e.g. slurm_schedulers/12)' }) }),
      response: z.object({
        num_jobs: z.number().int(),
        num_cpus: z.number().int(),
        num_gpus: z.number().int(),
        memory_gb: z.number(),
        max_num_nodes: z.number().int(),
        max_runtime: z.string(),
      }),
    },
    async ({ deps, params, query }) => {
      await assertWorkflow(deps.store, params.key);
      return readyJobRequirements(deps.store, params.key, query.scheduler_config_id || null);
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/process_changed_job_inputs',
      summary: 'Reset done jobs whose inputs changed (content hash) and their downstream jobs to uninitialized',
      description:
        'Returns the keys of the jobs reset: the changed done jobs, then their downstream jobs. ' +
        'dry_run=true returns the same list and changes nothing. Unless dry_run, ephemeral user data is cleared first.',
      operationId: 'process_changed_job_inputs',
      tags,
      params: KeyParams,
      query: z.strictObject({ dry_run: QueryBoolean.optional().meta({ description: 'Report without changing anything. Default false.' }) }),
      body: ObjectBody,
      bodyRequired: false,
      response: z.object({ reinitialized_jobs: z.array(z.string()) }),
    },
    async ({ deps, params, query }) => {
      await assertWorkflow(deps.store, params.key);
      return { reinitialized_jobs: await processChangedJobInputs(deps.store, params.key, { dryRun: query.dry_run ?? false }) };
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/auto_tune_resource_requirements',
      summary: 'Enable auto-tuning: run one job per resource requirements group, disable the rest',
      description: 'Needs config.compute_node_resource_stats.process = true (else 400). An already disabled job is 409.',
      operationId: 'auto_tune_resource_requirements',
      tags,
      params: KeyParams,
      body: ObjectBody,
      bodyRequired: false,
      response: z.object({ message: z.string(), job_keys: z.array(z.string()) }),
    },
    workflowView(enableAutoTune),
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{key}/process_auto_tune_resource_requirements_results',
      summary: 'Write the measured needs of the auto-tuned jobs into their resource requirements and re-enable the other jobs',
      description: '409 when auto-tune is not enabled; 400 naming the job when a tuned job has no process statistics or no current-run result.',
      operationId: 'process_auto_tune_resource_requirements_results',
      tags,
      params: KeyParams,
      body: ObjectBody,
      bodyRequired: false,
      response: z.object({ message: z.string(), updated: z.array(z.string()) }),
    },
    workflowView(processAutoTuneResults),
  );
}
