/**
 * Request validation helpers: zod schemas for path and query parameters, and parse functions
 * that turn zod failures into VALIDATION_FAILED errors naming the parameter or field.
 *
 * Query strings arrive as strings; the schemas here parse them strictly (`"10"` is an integer,
 * `"1e1"` and `"ten"` are not; booleans are `true|false|1|0`).
 */
import { z } from 'zod';
import { WeftError } from '../graph/errors.js';
import { collectionOf, keyOf, type CollectionInfo } from '../graph/model.js';
import { validationError } from './errors.js';

/** The most documents one list call returns (Torc's MAX_TRANSFER_RECORDS). */
export const MAX_LIMIT = 100_000;

const KEY_RE = /^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$/;
const FIELD_PATH_RE = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;

/** A non-negative integer given as a decimal string, within [min, max]. */
export function queryInt(min = 0, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .regex(/^-?\d{1,16}$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

/** An integer that may be negative (filters such as return_code). */
export const QueryInteger = z
  .string()
  .regex(/^-?\d{1,16}$/, 'must be an integer')
  .transform(Number);

/** `true|false|1|0` (any case, as Python clients send `True`) → boolean. */
export const QueryBoolean = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['true', 'false', '1', '0'], { error: 'must be true, false, 1 or 0' }))
  .transform((v) => v === 'true' || v === '1')
  .meta({ type: 'boolean' });

/** A dotted document field path (`name`, `internal.num_gpus`). */
export const FieldPath = z.string().regex(FIELD_PATH_RE, 'must be a field name or dotted field path');

/**
 * A document key in a path: a bare key, or a full id whose collection is one of `collections`
 * (`jobs/12`, Torc's `jobs__7/12`). Outputs the bare key.
 */
export function keyOrId(collections: readonly string[], description?: string) {
  const what = collections.join(' or ');
  return z
    .string()
    .min(1)
    // Two refinements, not one superRefine: zod's superRefine gives each value it checks an
    // `addIssue` function of its own, and in V8 that kept every request's objects alive through
    // the young generation's collections (as an object literal's getters did: see HandlerRequest
    // in api-router.ts). A GET with one key parameter promoted ~0.2 MB per scavenge; now none.
    // The first one stops the second, as the early return of the superRefine did.
    .refine(
      (value) => {
        const coll = collectionOf(value);
        return coll === undefined || collections.includes(coll);
      },
      { error: (iss) => `must be a ${what} key or id, not an id in ${collectionOf(String(iss.input))}`, abort: true },
    )
    .refine((value) => KEY_RE.test(keyOf(value)), { message: 'is not a valid document key' })
    .transform((v) => keyOf(v))
    .meta({ description: description ?? `Key or id of a ${what} document` });
}

/** The workflow key path parameter (also accepts `workflows/<key>`). */
export const WorkflowKeyParam = keyOrId(['workflows'], 'Workflow key');

/** skip/limit query parameters (limit ≤ MAX_LIMIT). */
export const PagingQueryShape = {
  skip: queryInt(0).optional().meta({ description: 'Documents to skip after sorting. Default 0.' }),
  limit: queryInt(1, MAX_LIMIT).optional().meta({ description: `At most this many documents (≤ ${MAX_LIMIT}). Default ${MAX_LIMIT}.` }),
};

/** skip/limit/sort_by/reverse_sort query parameters. */
export const ListQueryShape = {
  ...PagingQueryShape,
  sort_by: FieldPath.optional().meta({ description: 'Sort the whole result by this field before paging. Default: insertion order.' }),
  reverse_sort: QueryBoolean.optional().meta({ description: 'Sort descending. Default false.' }),
};

/** The list query schema of a collection: paging, sorting, `_key` and its typed equality filters. */
export function listQuerySchema(filters: CollectionInfo['filters']) {
  const shape: Record<string, z.ZodType> = { ...ListQueryShape, _key: z.string().min(1).optional() };
  for (const [field, type] of Object.entries(filters)) {
    shape[field] = (type === 'boolean' ? QueryBoolean : type === 'integer' ? QueryInteger : z.string()).optional();
  }
  return z.strictObject(shape);
}

/** Equality filters from a parsed list query (everything but paging and sorting). */
export function filtersOf(query: Record<string, unknown>): Record<string, unknown> {
  const where: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || k in ListQueryShape) continue;
    where[k] = v;
  }
  return where;
}

/** Parse one part of a request; throws VALIDATION_FAILED naming the offending fields. */
export function parseOrThrow<S extends z.ZodType>(where: 'body' | 'query' | 'path' | 'header', schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(where, result.error.issues);
  return result.data;
}

/** A plain JSON object body (not an array, not a scalar). */
export const ObjectBody = z.record(z.string(), z.unknown()).meta({ description: 'A JSON object' });

/** Reject a body `_key` that differs from the path key. */
export function assertSameKey(bodyKey: unknown, pathKey: string): void {
  if (bodyKey === undefined) return;
  if (typeof bodyKey !== 'string' || keyOf(bodyKey) !== pathKey) {
    throw new WeftError('VALIDATION_FAILED', `Invalid request: body field _key: "${String(bodyKey)}" does not match the key in the path ("${pathKey}")`, {
      details: [{ path: ['_key'], message: 'must match the key in the path', rule: 'key_mismatch' }],
      extra: { in: 'body' },
    });
  }
}

/** Reject a body `_key` the store or a path could not hold (a caller may choose keys). */
export function assertValidBodyKey(key: unknown): void {
  if (key === undefined) return;
  if (typeof key !== 'string' || !KEY_RE.test(key)) {
    throw new WeftError('VALIDATION_FAILED', 'Invalid request: body field _key: must be 1-254 characters of A-Z a-z 0-9 _ - : . @ ( ) + , = ; $ ! * \' %', {
      details: [{ path: ['_key'], message: 'not a valid document key', rule: 'key' }],
      extra: { in: 'body' },
    });
  }
}
