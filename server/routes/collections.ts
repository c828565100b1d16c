/**
 * Generic CRUD for every per-workflow collection of the model (WORKFLOW_COLLECTIONS):
 * `GET|POST|DELETE /workflows/{workflow}/<collection>` and
 * `GET|PUT|DELETE /workflows/{workflow}/<collection>/{key}`.
 *
 * Special cases: a job POST goes through insertJobs (relationship fields become edges) and a job
 * PUT may not carry relationship fields (edit the edges instead); an event POST gets the server's
 * `timestamp` (ms since the epoch), whatever the body says.
 */
import { z } from 'zod';
import { WeftError, notFound } from '../../graph/errors.js';
import { JOB_RELATIONSHIP_FIELDS, insertJobs } from '../../graph/engine/job-insert.js';
import { requireDoc } from '../../graph/engine/views-graph.js';
import { WORKFLOW_COLLECTIONS, keyOf, type CollectionInfo, type WorkflowCollectionName } from '../../graph/model.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow, batchSchema, DeleteAllResponseSchema, listBatch, mergeAndReplace, rawBody, removeDocument } from '../route-helpers.js';
import { WorkflowKeyParam, assertValidBodyKey, keyOrId, listQuerySchema } from '../validate.js';

/** Torc's operationId nouns: list_<plural>, add_<singular>, ... */
const SINGULAR: Record<WorkflowCollectionName, string> = {
  events: 'event',
  scheduled_compute_nodes: 'scheduled_compute_node',
  aws_schedulers: 'aws_scheduler',
  compute_nodes: 'compute_node',
  compute_node_stats: 'compute_node_stats',
  files: 'file',
  job_process_stats: 'job_process_stats',
  jobs: 'job',
  local_schedulers: 'local_scheduler',
  resource_requirements: 'resource_requirements',
  results: 'result',
  slurm_schedulers: 'slurm_scheduler',
  user_data: 'user_data',
};

export function registerCollectionRoutes(api: ApiRouter): void {
  for (const info of Object.values(WORKFLOW_COLLECTIONS) as CollectionInfo[]) registerCollection(api, info);
}

function registerCollection(api: ApiRouter, info: CollectionInfo): void {
  const name = info.name as WorkflowCollectionName;
  const one = SINGULAR[name];
  const tags = [name];
  const base = `/workflows/{workflow}/${name}`;
  const WfParams = z.object({ workflow: WorkflowKeyParam });
  const DocParams = z.object({ workflow: WorkflowKeyParam, key: keyOrId([name], `Key or id of the ${info.title} document`) });
  const schema = info.schema as z.ZodObject;
  const missing = (key: string) => () => notFound(name, key);

  api.route(
    {
      method: 'get',
      path: base,
      summary: `Retrieve all ${info.title} documents`,
      description: `Documents of "${name}" in one workflow: equality filters, then sort_by over the whole result, then skip/limit.`,
      operationId: `list_${name}`,
      tags,
      params: WfParams,
      query: listQuerySchema(info.filters),
      response: batchSchema(schema),
    },
    async ({ deps, params, query }) => {
      await assertWorkflow(deps.store, params.workflow);
      return listBatch(deps.store, name, params.workflow, query);
    },
  );

  api.route(
    {
      method: 'post',
      path: base,
      summary: `Store a ${info.title}`,
      description:
        name === 'jobs'
          ? 'blocked_by, input_files, output_files, input_user_data, output_user_data, resource_requirements and scheduler (ids or keys) become edges and are not stored in the job.'
          : name === 'events'
            ? 'The server sets timestamp to its clock (ms since the epoch).'
            : undefined,
      operationId: `add_${one}`,
      tags,
      params: WfParams,
      body: schema,
      response: schema,
    },
    async ({ deps, params, body }) => {
      await assertWorkflow(deps.store, params.workflow);
      const doc: Record<string, unknown> = { ...(body as Record<string, unknown>) };
      assertValidBodyKey(doc._key);
      delete doc._id;
      delete doc._rev;
      if (name === 'jobs') {
        const [job] = await deps.store.transaction((tx) => insertJobs(tx, params.workflow, [doc]));
        return job;
      }
      if (name === 'events') doc.timestamp = Date.now();
      return deps.store.insert(name, params.workflow, doc);
    },
  );

  api.route(
    {
      method: 'delete',
      path: base,
      summary: `Delete all ${info.title} documents of a workflow (and their edges)`,
      operationId: `delete_${name}`,
      tags,
      params: WfParams,
      response: DeleteAllResponseSchema,
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.workflow);
      const count = await deps.store.removeWhere(name, params.workflow);
      return { message: `Deleted ${count} ${name} documents`, count };
    },
  );

  api.route(
    {
      method: 'get',
      path: `${base}/{key}`,
      summary: `Retrieve the ${info.title} for a key`,
      operationId: `get_${one}`,
      tags,
      params: DocParams,
      response: schema,
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.workflow);
      return requireDoc(deps.store, name, params.workflow, params.key);
    },
  );

  api.route(
    {
      method: 'put',
      path: `${base}/{key}`,
      summary: `Update a ${info.title} (body fields merged over the stored ones; \`_rev\` required, stale → 409)`,
      operationId: `modify_${one}`,
      tags,
      params: DocParams,
      body: schema.partial().extend({ _rev: z.string().min(1).meta({ description: 'The revision you read; a stale one is 409' }) }),
      response: schema,
    },
    async ({ deps, params, ctx }) => {
      await assertWorkflow(deps.store, params.workflow);
      const body = rawBody(ctx);
      if (name === 'jobs') rejectRelationshipFields(body);
      if (typeof body._key === 'string') body._key = keyOf(body._key);
      return mergeAndReplace(deps.store, name, params.workflow, params.key, body, schema, missing(params.key));
    },
  );

  api.route(
    {
      method: 'delete',
      path: `${base}/{key}`,
      summary: `Delete a ${info.title} (and every edge that touches it)`,
      operationId: `remove_${one}`,
      tags,
      params: DocParams,
      response: schema,
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.workflow);
      return removeDocument(deps.store, name, params.workflow, params.key);
    },
  );
}

function rejectRelationshipFields(body: Record<string, unknown>): void {
  const found = JOB_RELATIONSHIP_FIELDS.filter((f) => body[f] !== undefined);
  if (found.length === 0) return;
  throw new WeftError(
    'VALIDATION_FAILED',
    `Invalid request: body field ${found.join(', ')}: a job's relationships are edges; change them through /workflows/{workflow}/edges/{name}`,
    { details: found.map((f) => ({ path: [f], message: 'not allowed in a job update; edit the edge instead', rule: 'relationship_field' })), extra: { in: 'body' } },
  );
}
