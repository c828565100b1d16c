/**
 * Engine routes for creating in bulk: `POST /workflow_specifications` (a whole workflow from a
 * JSON, JSON5 or YAML specification, whole or not at all) and `POST /workflows/{workflow}/bulk_jobs`
 * (many jobs in one transaction, every reference checked first).
 *
 * The app's body parser only reads JSON. A JSON5 or YAML spec is read here, by a middleware
 * mounted on the same path ahead of the validated route: it reads the raw text (same size limit,
 * same content encodings), parses it, and hands the value on as the parsed body.
 */
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { insertJobs } from '../../graph/engine/job-insert.js';
import { createWorkflowFromSpec } from '../../graph/engine/spec-create.js';
import { parseSpecText, SPEC_MEDIA_TYPES, specFormatOf } from '../../graph/engine/spec-parse.js';
import { WorkflowSpecificationSchema } from '../../graph/engine/spec-plan.js';
import { WeftError } from '../../graph/errors.js';
import { JobSchema, WorkflowSchema } from '../../graph/model.js';
import { toRouterPath, type ApiRouter } from '../api-router.js';
import { readBody } from '../body.js';
import { assertWorkflow } from '../route-helpers.js';
import { WorkflowKeyParam } from '../validate.js';

/** The body as documented; the checks (every fault in one 400) are planSpecification's. */
const SpecBody = z.unknown().meta({
  ...(z.toJSONSchema(WorkflowSpecificationSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>),
  description: `A workflow specification (JSON, JSON5 or YAML by Content-Type: ${SPEC_MEDIA_TYPES.join(', ')}). References are names; schedulers are <collection>/<name>.`,
});

/**
 * `{jobs: [...]}` as documented; each job is checked once, by insertJobs (all faults in one 400),
 * rather than a second time here: that parse is a large share of a 100,000-job call.
 */
const BulkJobsBody = z
  .object({ jobs: z.array(z.looseObject({})) })
  .meta(z.toJSONSchema(z.object({ jobs: z.array(JobSchema) }), { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>);

/**
 * The body as strict UTF-8 text within `limit` bytes (after decoding), Content-Encoding honoured
 * (readBody); its errors answered with this route's codes and messages.
 */
async function readText(ctx: Context, limit: number): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readBody(ctx.req, limit);
  } catch (err) {
    throw specBodyError(err, limit);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new WeftError('MALFORMED_BODY', 'The request body is not valid UTF-8', { details: [{ path: [], message: 'not UTF-8', rule: 'encoding' }] });
  }
}

/** A readBody error as this route answers it: 413 naming the limit, 415, or 400 with the cause's message. */
function specBodyError(err: unknown, limit: number): WeftError {
  const { type, message } = err as { type?: unknown; message?: unknown };
  if (type === 'entity.too.large') {
    return new WeftError('PAYLOAD_TOO_LARGE', `The request body is larger than the limit of ${limit} bytes`, { details: [{ path: [], message: `over ${limit} bytes`, rule: 'body_limit' }] });
  }
  if (type === 'encoding.unsupported') {
    return new WeftError('UNSUPPORTED_MEDIA_TYPE', String(message), { details: [{ path: [], message: 'unsupported content encoding', rule: 'content_encoding' }] });
  }
  return new WeftError('MALFORMED_BODY', `The request body could not be read: ${String(message)}`, { details: [{ path: [], message: 'unreadable body', rule: 'body' }], cause: err });
}

export function registerEngineSpecsRoutes(api: ApiRouter): void {
  const limit = Math.max(1, Math.floor(api.deps.config.bodyLimitMb * 1024 * 1024));

  // JSON5 and YAML bodies: parsed here, then passed on as if they had been JSON.
  api.router.post(toRouterPath('/workflow_specifications'), async (ctx: Context, next: Next) => {
    const hasBody = (ctx.request.length ?? 0) > 0 || ctx.get('transfer-encoding') !== '';
    if (!hasBody) return next();
    const format = specFormatOf(ctx.get('content-type'));
    if (format === undefined) {
      throw new WeftError('UNSUPPORTED_MEDIA_TYPE', `A specification must be sent as ${SPEC_MEDIA_TYPES.join(', ')}, not ${ctx.get('content-type') || 'unspecified'}`, {
        details: [{ path: [], message: `expected one of ${SPEC_MEDIA_TYPES.join(', ')}`, rule: 'content_type' }],
      });
    }
    if (format !== 'json') {
      (ctx.request as { body?: unknown }).body = parseSpecText(await readText(ctx, limit), format);
      ctx.req.headers['content-type'] = 'application/json';
    }
    return next();
  });

  api.route(
    {
      method: 'post',
      path: '/workflow_specifications',
      summary: 'Store a workflow from a specification (JSON, JSON5 or YAML), whole or not at all',
      description:
        'Every fault is reported in one 400 (SPEC_INVALID, one detail each: unknown names with the job at fault, duplicate names, ' +
        'malformed memory or runtime); a dependency cycle, explicit or through files and user data, is DEPENDENCY_CYCLE naming the jobs on it in order. ' +
        'Nothing is written unless everything is. Jobs are created uninitialized; the order of jobs does not matter.',
      operationId: 'add_workflow_specification',
      tags: ['workflow_specifications'],
      body: SpecBody,
      bodyRequired: false,
      response: WorkflowSchema,
      // The middleware above reads the request stream (JSON5, YAML): Koa serves this route.
      koa: true,
    },
    ({ deps, body }) => {
      if (body === undefined) {
        throw new WeftError('SPEC_INVALID', 'Invalid workflow specification: the body is empty', { details: [{ path: [], message: 'a specification is required', rule: 'required' }] });
      }
      return createWorkflowFromSpec(deps.store, body);
    },
  );

  api.route(
    {
      method: 'post',
      path: '/workflows/{workflow}/bulk_jobs',
      summary: 'Add jobs in bulk, in one transaction',
      description:
        'Relationship fields are ids or keys, as for a single job POST; every reference is checked before anything is written (one 400 names each fault). ' +
        'A blocked_by may name the _key of another job of the same call. A new job that closes a dependency loop (explicit, or through files ' +
        'and user data with stored jobs) is DEPENDENCY_CYCLE, and nothing is written. 100,000 jobs in one call work.',
      operationId: 'add_jobs',
      tags: ['jobs'],
      params: z.object({ workflow: WorkflowKeyParam }),
      body: BulkJobsBody,
      response: z.object({ items: z.array(JobSchema) }),
    },
    async ({ deps, params, ctx }) => {
      await assertWorkflow(deps.store, params.workflow);
      // The raw bodies (not the parsed ones): insertJobs parses each with JobSchema itself.
      const raw = (ctx.request as unknown as { body: { jobs: Record<string, unknown>[] } }).body.jobs;
      const items = await deps.store.transaction((tx) => insertJobs(tx, params.workflow, raw, { pathPrefix: ['jobs'], rejectCycles: true }));
      return { items };
    },
  );
}
