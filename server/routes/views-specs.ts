/**
 * Specification view routes: a stored workflow as a specification (round-trippable: POST it to
 * /workflow_specifications and get the same workflow), the example and the template.
 * The literal paths are registered before `/{key}`, so they take precedence.
 */
import { z } from 'zod';
import { exampleSpecification, templateSpecification, workflowSpecification } from '../../graph/engine/views-spec.js';
import type { ApiRouter } from '../api-router.js';
import { WorkflowKeyParam } from '../validate.js';

const SpecSchema = z.looseObject({
  name: z.string(),
  user: z.string(),
  description: z.string().nullish(),
  jobs: z.array(z.looseObject({})),
  files: z.array(z.looseObject({})),
  user_data: z.array(z.looseObject({})),
  resource_requirements: z.array(z.looseObject({})),
  schedulers: z.looseObject({}),
  config: z.looseObject({}),
});

export function registerViewsSpecRoutes(api: ApiRouter): void {
  const tags = ['workflow_specifications'];
  api.route(
    {
      method: 'get',
      path: '/workflow_specifications/example',
      summary: 'Retrieve an example workflow specification (one that POST /workflow_specifications accepts)',
      operationId: 'get_workflow_specification_example',
      tags,
      response: SpecSchema,
    },
    () => exampleSpecification(),
  );
  api.route(
    {
      method: 'get',
      path: '/workflow_specifications/template',
      summary: 'Retrieve the workflow specification template (every field, config defaults)',
      operationId: 'get_workflow_specification_template',
      tags,
      response: SpecSchema,
    },
    () => templateSpecification(),
  );
  api.route(
    {
      method: 'get',
      path: '/workflow_specifications/{key}',
      summary: 'Retrieve the current workflow as a specification',
      description:
        'References are names (schedulers as collection/name); invocation_script and supports_termination are kept; ' +
        'store metadata is left out. POSTing the result to /workflow_specifications gives the same workflow.',
      operationId: 'get_workflow_specification',
      tags,
      params: z.object({ key: WorkflowKeyParam }),
      response: SpecSchema,
    },
    ({ deps, params }) => workflowSpecification(deps.store, params.key),
  );
}
