/**
 * The route table and the OpenAPI 3.1 document generated from it.
 *
 * Every route is declared once, as a {@link RouteSpec}: method, path, summary, and the zod schemas
 * of its path parameters, query parameters, body and response. `ApiRouter.route()` (in
 * `server/api-router.ts`) validates requests with those schemas AND records the spec here, so the
 * document served at `GET {basePath}/openapi.json` cannot disagree with what the server accepts.
 * Nothing else is needed for a new route to appear in the document.
 */
import { z } from 'zod';

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

/** One route: everything the validator and the OpenAPI document need. */
export interface RouteSpec {
  method: HttpMethod;
  /** Path relative to the base path, OpenAPI style: `/workflows/{workflow}/jobs/{key}`. */
  path: string;
  /** One line for humans. */
  summary: string;
  description?: string;
  /** Stable name for generated clients (Torc's names where Torc has the route). */
  operationId?: string;
  tags?: string[];
  /** Path parameters: an object schema with one entry per `{param}`. */
  params?: z.ZodObject;
  /** Query parameters: an object schema (strict: unknown parameters are rejected). */
  query?: z.ZodObject;
  /** JSON body schema. */
  body?: z.ZodType;
  /** Whether a body must be sent. Default: true when `body` is set. */
  bodyRequired?: boolean;
  /** Schema of the 200 response body. */
  response?: z.ZodType;
  /** Leave out of the OpenAPI document (catch-alls that only produce errors). */
  hidden?: boolean;
}

/** Routes in registration order. */
export class RouteTable {
  private readonly specs: RouteSpec[] = [];

  add(spec: RouteSpec): void {
    this.specs.push(spec);
  }

  get routes(): readonly RouteSpec[] {
    return this.specs;
  }
}

/** The error body every failure returns (see server/errors.ts). */
export const ErrorResponseSchema = z.object({
  error: z.looseObject({
    code: z.string().meta({ description: 'Stable code from the error catalogue (graph/errors.ts)' }),
    message: z.string(),
    details: z.array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string(), rule: z.string().optional() })),
    retryable: z.boolean(),
  }),
});

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const obj = jsonSchema(schema, 'input');
  const props = (obj.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((obj.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === 'path' ? true : required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

export interface OpenApiInfo {
  title: string;
  version: string;
  basePath: string;
  description?: string;
}

/** Build the OpenAPI 3.1 document for a route table. */
export function buildOpenApiDocument(table: RouteTable, info: OpenApiInfo): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const errorRef = { $ref: '#/components/schemas/Error' };
  const errorContent = { 'application/json': { schema: errorRef } };
  for (const spec of table.routes) {
    if (spec.hidden) continue;
    const op: JsonSchema = {
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(spec.operationId ? { operationId: spec.operationId } : {}),
      ...(spec.tags ? { tags: spec.tags } : {}),
    };
    const params = [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')];
    if (params.length > 0) op.parameters = params;
    if (spec.body) {
      op.requestBody = {
        required: spec.bodyRequired ?? true,
        content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } },
      };
    }
    op.responses = {
      '200': {
        description: 'OK',
        content: { 'application/json': { schema: spec.response ? jsonSchema(spec.response, 'output') : { type: 'object' } } },
      },
      '400': { description: 'Bad request: the details name each field at fault', content: errorContent },
      '404': { description: 'No such workflow, document, collection or route', content: errorContent },
      ...(spec.method === 'put' || spec.method === 'post' ? { '409': { description: 'Stale revision or conflicting state', content: errorContent } } : {}),
      ...(spec.body ? { '413': { description: 'Body too large', content: errorContent } } : {}),
      '500': { description: 'Internal error (no details)', content: errorContent },
    };
    (paths[spec.path] ??= {})[spec.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}) },
    servers: [{ url: info.basePath || '/' }],
    paths,
    components: { schemas: { Error: jsonSchema(ErrorResponseSchema, 'output') } },
  };
}
