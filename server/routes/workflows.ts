/**
 * Workflow routes: CRUD of `/workflows`, the config and status documents, collection_names.
 * Creating a workflow creates its config and status (graph/engine/workflow-create.ts); deleting
 * it removes every document and edge in it.
 */
import { z } from 'zod';
import { WeftError } from '../../graph/errors.js';
import { createWorkflow } from '../../graph/engine/workflow-create.js';
import {
  EDGE_COLLECTION_NAMES,
  WORKFLOW_COLLECTION_NAMES,
  WorkflowConfigSchema,
  WorkflowSchema,
  WorkflowStatusSchema,
} from '../../graph/model.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow, batchSchema, listBatch, mergeAndReplace, rawBody, requireWorkflow } from '../route-helpers.js';
import { WorkflowKeyParam, assertValidBodyKey, listQuerySchema } from '../validate.js';

const KeyParams = z.object({ key: WorkflowKeyParam });
const WorkflowListQuery = listQuerySchema({ name: 'string', user: 'string', description: 'string', is_archived: 'boolean' });
const PutExtra = { _rev: z.string().min(1).meta({ description: 'The revision you read; a stale one is 409' }) };

export function registerWorkflowRoutes(api: ApiRouter): void {
  const tags = ['workflows'];

  api.route(
    { method: 'get', path: '/workflows', summary: 'Retrieve all workflows', operationId: 'list_workflows', tags, query: WorkflowListQuery, response: batchSchema(WorkflowSchema) },
    ({ deps, query }) => listBatch(deps.store, 'workflows', null, query),
  );

  api.route(
    {
      method: 'post',
      path: '/workflows',
      summary: 'Store a workflow (with its config and status documents)',
      operationId: 'add_workflow',
      tags,
      body: WorkflowSchema,
      response: WorkflowSchema,
    },
    ({ deps, body }) => {
      assertValidBodyKey(body._key);
      return createWorkflow(deps.store, body);
    },
  );

  api.route(
    { method: 'get', path: '/workflows/{key}', summary: 'Retrieve the workflow for a key', operationId: 'get_workflow', tags, params: KeyParams, response: WorkflowSchema },
    ({ deps, params }) => requireWorkflow(deps.store, params.key),
  );

  api.route(
    {
      method: 'put',
      path: '/workflows/{key}',
      summary: 'Update a workflow (body fields merged over the stored ones; `_rev` required)',
      operationId: 'modify_workflow',
      tags,
      params: KeyParams,
      body: WorkflowSchema.partial().extend(PutExtra),
      response: WorkflowSchema,
    },
    ({ deps, params, ctx }) =>
      mergeAndReplace(deps.store, 'workflows', null, params.key, rawBody(ctx), WorkflowSchema, () => workflowNotFound(params.key)),
  );

  api.route(
    {
      method: 'delete',
      path: '/workflows/{key}',
      summary: 'Delete a workflow and every document and edge in it',
      operationId: 'remove_workflow',
      tags,
      params: KeyParams,
      response: WorkflowSchema,
    },
    async ({ deps, params }) => {
      const wf = await requireWorkflow(deps.store, params.key);
      await deps.store.removeWorkflow(params.key);
      return wf;
    },
  );

  for (const [segment, collection, schema, label, opId] of [
    ['config', 'workflow_configs', WorkflowConfigSchema, 'config', 'workflow_config'],
    ['status', 'workflow_statuses', WorkflowStatusSchema, 'status', 'workflow_status'],
  ] as const) {
    api.route(
      { method: 'get', path: `/workflows/{key}/${segment}`, summary: `Return the workflow ${label}`, operationId: `get_${opId}`, tags, params: KeyParams, response: schema },
      async ({ deps, params }) => {
        await assertWorkflow(deps.store, params.key);
        const doc = await deps.store.get(collection, null, params.key);
        if (!doc) throw new WeftError('DOCUMENT_NOT_FOUND', `The ${label} of workflow ${params.key} is missing`, { extra: { workflow: params.key } });
        return doc;
      },
    );
    api.route(
      {
        method: 'put',
        path: `/workflows/{key}/${segment}`,
        summary: `Update the workflow ${label} (body fields merged over the stored ones; \`_rev\` required)`,
        operationId: `modify_${opId}`,
        tags,
        params: KeyParams,
        body: schema.partial().extend(PutExtra),
        response: schema,
      },
      async ({ deps, params, ctx }) => {
        await assertWorkflow(deps.store, params.key);
        return mergeAndReplace(deps.store, collection, null, params.key, rawBody(ctx), schema, () => workflowNotFound(params.key));
      },
    );
  }

  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/collection_names',
      summary: 'Retrieve all collection names for one workflow',
      description: 'The 2 document collections, the 11 vertex collections, then the 11 edge collections.',
      operationId: 'list_collection_names',
      tags,
      params: KeyParams,
      response: z.object({ names: z.array(z.string()) }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.key);
      return { names: [...WORKFLOW_COLLECTION_NAMES, ...EDGE_COLLECTION_NAMES] };
    },
  );
}

function workflowNotFound(key: string): WeftError {
  return new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${key} not found`, { extra: { workflow: key } });
}

