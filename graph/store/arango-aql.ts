/**
 * The AQL the ArangoDB adapter sends, one builder per port operation. Every value (documents,
 * keys, workflow keys, filter values, field path segments, collection names) travels as a bind
 * parameter through arangojs's `aql` tag; the only text spliced into a query comes from closed
 * sets in this file (operators, ASC/DESC). Pure functions: the unit tests read their output.
 *
 * Hidden attributes kept in every stored document (stripped on the way out):
 * - `workflow`: the workflow key (absent in global collections); the cluster shard key.
 * - `weft_seq`: an increasing insertion number, so ties in a sort keep insertion order as the
 *   port requires (AQL SORT is not stable, and generated keys do not sort as numbers).
 */
import { aql, join, literal, type AqlQuery } from 'arangojs/aql';
import type { ArangoCollection } from 'arangojs/collections';
import { WeftError } from '../errors.js';
import type { Condition, Direction, SortKey, Where } from './port.js';

export const WORKFLOW_ATTR = 'workflow';
export const SEQ_ATTR = 'weft_seq';
export const HIDDEN_ATTRS: readonly string[] = [WORKFLOW_ATTR, SEQ_ATTR];

/** One segment of a dotted field path. Same rule as the SQLite adapter. */
export const FIELD_SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** LIMIT count used when only `skip` is given (AQL needs a count). */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export function conditionsOf(where: Where | undefined): Condition[] {
  if (!where) return [];
  if (Array.isArray(where)) return where as Condition[];
  return Object.entries(where as Record<string, unknown>).map(([field, value]) => ({ field, op: '==' as const, value }));
}

/** `v[@a][@b]` for the dotted path `a.b`; each segment checked, then passed as a bind parameter. */
export function fieldRef(variable: string, field: string): AqlQuery {
  const segs = field.split('.');
  if (field === '' || segs.some((s) => !FIELD_SEGMENT.test(s))) {
    throw new WeftError('VALIDATION_FAILED', `Invalid field path: ${field}`, { details: [{ path: [field], message: 'invalid field path', rule: 'field_path' }] });
  }
  if (variable !== 'd' && variable !== 'e' && variable !== 'x') throw new WeftError('INTERNAL', `unexpected AQL variable ${variable}`);
  // The port's insertion sequence (see port.ts) is the hidden sequence attribute.
  if (field === '_seq') return join([literal(variable), aql`[${SEQ_ATTR}]`], '');
  return join([literal(variable), ...segs.map((s) => aql`[${s}]`)], '');
}

/** One condition as an AQL boolean expression over `d`. Null handling follows the SQLite adapter. */
export function conditionAql(c: Condition): AqlQuery {
  const f = fieldRef('d', c.field);
  const v = c.value;
  switch (c.op) {
    case '==':
      return v === null || v === undefined ? aql`${f} == null` : aql`${f} == ${v}`;
    case '!=':
      return v === null || v === undefined ? aql`${f} != null` : aql`${f} != ${v}`;
    case '<':
    case '<=':
    case '>':
    case '>=':
      // A missing field (null) never compares as smaller or larger, as in SQL.
      if (v === null || v === undefined) return aql`false`;
      return aql`(${f} != null AND ${f} ${literal(c.op)} ${v})`;
    case 'in':
    case 'not_in': {
      const values = Array.isArray(v) ? v : [v];
      if (values.length === 0) return c.op === 'in' ? aql`false` : aql`true`;
      return c.op === 'in' ? aql`${f} IN ${values}` : aql`${f} NOT IN ${values}`;
    }
    default:
      throw new WeftError('VALIDATION_FAILED', `Unknown operator ${String((c as Condition).op)}`, {
        details: [{ path: [c.field], message: 'unknown operator', rule: 'operator' }],
      });
  }
}

/** `FILTER d.workflow == @wf` and one FILTER per condition. */
export function filterAql(workflow: string | null, where: Where | undefined): AqlQuery {
  const parts = [aql`FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow}`];
  for (const c of conditionsOf(where)) parts.push(aql`FILTER ${conditionAql(c)}`);
  return join(parts, ' ');
}

/** `SORT ...` with the insertion sequence as the last key, so ties keep insertion order. */
export function sortAql(sort: readonly SortKey[] | undefined): AqlQuery {
  const keys = (sort ?? []).map((s) => aql`${fieldRef('d', s.field)} ${literal(s.direction === 'desc' ? 'DESC' : 'ASC')}`);
  keys.push(aql`d.${literal(SEQ_ATTR)} ASC`);
  return aql`SORT ${join(keys, ', ')}`;
}

export function insertAql(coll: ArangoCollection, doc: Record<string, unknown>): AqlQuery {
  return aql`INSERT ${doc} INTO ${coll} RETURN NEW`;
}

export function insertManyAql(coll: ArangoCollection, docs: readonly Record<string, unknown>[]): AqlQuery {
  return aql`FOR doc IN ${docs} INSERT doc INTO ${coll} RETURN NEW`;
}

export function getAql(coll: ArangoCollection, workflow: string | null, key: string): AqlQuery {
  return aql`FOR d IN ${coll} FILTER d._key == ${key} FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow} LIMIT 1 RETURN d`;
}

/** 1 when the document exists in the workflow (nothing is sent back of it). */
export function hasAql(coll: ArangoCollection, workflow: string | null, key: string): AqlQuery {
  return aql`FOR d IN ${coll} FILTER d._key == ${key} FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow} LIMIT 1 RETURN 1`;
}

export function getManyAql(coll: ArangoCollection, workflow: string | null, keys: readonly string[]): AqlQuery {
  return aql`FOR d IN ${coll} FILTER d._key IN ${keys} FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow} RETURN d`;
}

/** The document of this workflow with this key, as `d`, or null. */
function lookup(coll: ArangoCollection, workflow: string | null, key: string): AqlQuery {
  return aql`LET d = FIRST(FOR x IN ${coll} FILTER x._key == ${key} FILTER x.${literal(WORKFLOW_ATTR)} == ${workflow} LIMIT 1 RETURN x)`;
}

/**
 * Update or replace one document, checking the expected `_rev` in the same query.
 * Returns `{ found, rev, doc }`: doc is null when not found or stale (rev is the current one).
 * `unset` lists patch attributes whose value was `undefined` (they are removed, as in SQLite).
 */
export function writeAql(
  coll: ArangoCollection,
  workflow: string | null,
  key: string,
  mode: 'update' | 'replace',
  body: Record<string, unknown>,
  unset: readonly string[],
  keep: readonly string[],
  rev: string | undefined,
): AqlQuery {
  const next =
    mode === 'update'
      ? aql`MERGE(UNSET(x, ${unset}), ${body})`
      : aql`MERGE(${body}, KEEP(x, ${keep}))`;
  return aql`${lookup(coll, workflow, key)}
LET ok = d != null AND (${rev ?? null} == null OR d._rev == ${rev ?? null})
LET written = (FOR x IN (ok ? [d] : []) REPLACE x WITH ${next} IN ${coll} RETURN NEW)
RETURN { found: d != null, rev: d._rev, doc: FIRST(written) }`;
}

/** Patch many documents of one workflow; each key appears at most once per call. Returns the count. */
export function updateManyAql(coll: ArangoCollection, workflow: string | null, patches: readonly { key: string; patch: Record<string, unknown>; unset: readonly string[] }[]): AqlQuery {
  return aql`LET written = (FOR p IN ${patches}
  FOR x IN ${coll} FILTER x._key == p.key FILTER x.${literal(WORKFLOW_ATTR)} == ${workflow}
  REPLACE x WITH MERGE(UNSET(x, p.unset), p.patch) IN ${coll} RETURN 1)
RETURN LENGTH(written)`;
}

/** Subqueries removing every edge that touches one of `ids` (an AQL array expression). */
function removeEdgesAql(edgeColls: readonly ArangoCollection[], workflow: string | null, ids: AqlQuery): AqlQuery {
  const wf = workflow === null ? aql`` : aql`FILTER e.${literal(WORKFLOW_ATTR)} == ${workflow}`;
  return join(
    edgeColls.map((ec, i) => aql`LET ${literal(`gone${i}`)} = (FOR e IN ${ec} FILTER e._from IN ${ids} OR e._to IN ${ids} ${wf} REMOVE e IN ${ec} RETURN 1)`),
    '\n',
  );
}

/** Remove one document (and, for a vertex, every edge touching it) in one query. */
export function removeAql(coll: ArangoCollection, workflow: string | null, key: string, rev: string | undefined, edgeColls: readonly ArangoCollection[]): AqlQuery {
  const edges = edgeColls.length > 0 ? aql`\n${removeEdgesAql(edgeColls, workflow, aql`(LENGTH(removed) > 0 ? [d._id] : [])`)}` : aql``;
  return aql`${lookup(coll, workflow, key)}
LET ok = d != null AND (${rev ?? null} == null OR d._rev == ${rev ?? null})
LET removed = (FOR x IN (ok ? [d] : []) REMOVE x IN ${coll} RETURN OLD._id)${edges}
RETURN { found: d != null, rev: d._rev, removed: LENGTH(removed) }`;
}

/**
 * Remove the matching documents of a workflow and, for vertices, their edges. Without
 * conditions every vertex of the collection goes, so the edges are found by id prefix over the
 * workflow's edges instead of by a list of ids.
 */
export function removeWhereAql(coll: ArangoCollection, workflow: string | null, where: Where | undefined, edgeColls: readonly ArangoCollection[]): AqlQuery {
  const main = aql`LET removed = (FOR d IN ${coll} ${filterAql(workflow, where)} REMOVE d IN ${coll} RETURN OLD._id)`;
  if (edgeColls.length === 0) return aql`${main}\nRETURN LENGTH(removed)`;
  if (workflow !== null && conditionsOf(where).length === 0) {
    const prefix = `${coll.name}/`;
    const edges = join(
      edgeColls.map(
        (ec, i) =>
          aql`LET ${literal(`gone${i}`)} = (FOR e IN ${ec} FILTER e.${literal(WORKFLOW_ATTR)} == ${workflow} FILTER STARTS_WITH(e._from, ${prefix}) OR STARTS_WITH(e._to, ${prefix}) REMOVE e IN ${ec} RETURN 1)`,
      ),
      '\n',
    );
    return aql`${main}\n${edges}\nRETURN LENGTH(removed)`;
  }
  return aql`${main}\n${removeEdgesAql(edgeColls, workflow, aql`removed`)}\nRETURN LENGTH(removed)`;
}

/** Filter, sort over the whole result, then page. Use with the `fullCount` query option for a total. */
export function findAql(coll: ArangoCollection, workflow: string | null, opts: { where?: Where; sort?: readonly SortKey[]; skip?: number; limit?: number }): AqlQuery {
  const paged = opts.limit !== undefined || (opts.skip ?? 0) > 0;
  const limit = paged ? aql` LIMIT ${opts.skip ?? 0}, ${opts.limit ?? NO_LIMIT}` : aql``;
  return aql`FOR d IN ${coll} ${filterAql(workflow, opts.where)} ${sortAql(opts.sort)}${limit} RETURN d`;
}

export function countAql(coll: ArangoCollection, workflow: string | null, where: Where | undefined): AqlQuery {
  return aql`RETURN LENGTH(FOR d IN ${coll} ${filterAql(workflow, where)} RETURN 1)`;
}

/** Edges of a workflow by their ends (edge-index lookups), in insertion order. */
export function edgesAql(coll: ArangoCollection, workflow: string, from: readonly string[] | undefined, to: readonly string[] | undefined): AqlQuery {
  const parts = [aql`FOR d IN ${coll}`];
  if (from !== undefined) parts.push(aql`FILTER d._from IN ${from}`);
  if (to !== undefined) parts.push(aql`FILTER d._to IN ${to}`);
  parts.push(aql`FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow}`, aql`SORT d.${literal(SEQ_ATTR)} ASC RETURN d`);
  return join(parts, ' ');
}

/**
 * One hop from each of `ids` along an edge collection: an edge-index lookup, then the document at
 * the other end (null when it is gone or belongs to another workflow).
 */
export function neighborsAql(coll: ArangoCollection, workflow: string, ids: readonly string[], direction: Direction): AqlQuery {
  const near = direction === 'outbound' ? literal('_from') : literal('_to');
  const far = direction === 'outbound' ? literal('_to') : literal('_from');
  return aql`FOR d IN ${coll} FILTER d.${near} IN ${ids} FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow}
SORT d.${literal(SEQ_ATTR)} ASC
LET v = DOCUMENT(d.${far})
RETURN { edge: d, vertex: (v != null AND v.${literal(WORKFLOW_ATTR)} == ${workflow}) ? v : null }`;
}

/** Remove every document and edge of a workflow, and its global documents, in one query. */
export function removeWorkflowAql(perWorkflow: readonly ArangoCollection[], globals: readonly ArangoCollection[], workflow: string): AqlQuery {
  const parts = perWorkflow.map((c, i) => aql`LET ${literal(`w${i}`)} = (FOR d IN ${c} FILTER d.${literal(WORKFLOW_ATTR)} == ${workflow} REMOVE d IN ${c} RETURN 1)`);
  globals.forEach((c, i) => parts.push(aql`LET ${literal(`g${i}`)} = (FOR d IN ${c} FILTER d._key == ${workflow} REMOVE d IN ${c} RETURN 1)`));
  parts.push(aql`RETURN true`);
  return join(parts, '\n');
}
