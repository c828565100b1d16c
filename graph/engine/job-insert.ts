/**
 * Job insertion: relationship fields of a job body become edges, and are removed from the
 * stored document (so GET never shows them).
 *
 * | field             | edge          | direction                  | targets                                  |
 * |-------------------|---------------|----------------------------|------------------------------------------|
 * | blocked_by        | blocks        | blocker → job              | jobs                                     |
 * | input_files       | needs         | job → file                 | files                                    |
 * | output_files      | produces      | job → file                 | files                                    |
 * | input_user_data   | consumes      | job → user_data            | user_data                                |
 * | output_user_data  | stores        | job → user_data            | user_data                                |
 * | resource_requirements | requires  | job → resource_requirements | resource_requirements                   |
 * | scheduler         | scheduled_bys | job → scheduler            | local/slurm/aws_schedulers               |
 *
 * References are full ids (`files/12`) or bare keys; every one must exist in the workflow.
 */
import { WeftError, type ErrorDetail } from '../errors.js';
import { JobSchema, collectionOf, keyOf, type CollectionName, type EdgeCollectionName } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { rejectNewCycles } from './spec-cycles.js';
import { docsById } from './views-bulk.js';

interface Relationship {
  readonly edge: EdgeCollectionName;
  /** true: the referenced document is the edge's `_from` (blocked_by). */
  readonly inbound: boolean;
  readonly targets: readonly CollectionName[];
}

/** The job body fields that become edges. */
export const JOB_RELATIONSHIPS: Readonly<Record<string, Relationship>> = Object.freeze({
  blocked_by: { edge: 'blocks', inbound: true, targets: ['jobs'] },
  input_files: { edge: 'needs', inbound: false, targets: ['files'] },
  output_files: { edge: 'produces', inbound: false, targets: ['files'] },
  input_user_data: { edge: 'consumes', inbound: false, targets: ['user_data'] },
  output_user_data: { edge: 'stores', inbound: false, targets: ['user_data'] },
  resource_requirements: { edge: 'requires', inbound: false, targets: ['resource_requirements'] },
  scheduler: { edge: 'scheduled_bys', inbound: false, targets: ['local_schedulers', 'slurm_schedulers', 'aws_schedulers'] },
});

export const JOB_RELATIONSHIP_FIELDS = Object.freeze(Object.keys(JOB_RELATIONSHIPS));

/** The document key alphabet (the same rule as server/validate.ts). */
const DOC_KEY_RE = /^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$/;
/** At most this many details go into one error. */
const MAX_DETAILS = 1000;

function fail(details: ErrorDetail[], total: number): never {
  const shown = details.slice(0, 5).map((d) => `${d.path.join('.')}: ${d.message}`);
  if (total > 5) shown.push(`and ${total - 5} more`);
  throw new WeftError('VALIDATION_FAILED', `Invalid job: ${shown.join('; ')}`, { details, extra: { fault_count: total } });
}

/** Candidate ids of a reference: `files/12` → [files/12]; a bare key → one id per target collection. */
function candidatesOf(ref: string, targets: readonly CollectionName[]): string[] {
  const named = collectionOf(ref);
  const key = keyOf(ref);
  return (named === undefined ? targets : targets.filter((t) => t === named)).map((c) => `${c}/${key}`);
}

export interface InsertJobsOptions {
  /** Prefix of the field paths in errors (`['jobs']` for a bulk body): `[...prefix, 2, 'input_files', 0]`. */
  pathPrefix?: (string | number)[];
  /**
   * Refuse (DEPENDENCY_CYCLE) when a new job closes a dependency loop, explicit or through files
   * and user data (bulk_jobs does). Off by default: a single job POST keeps Torc's behaviour, and
   * some callers build cyclic data graphs on purpose (view benchmarks). Also lets a blocked_by name
   * the `_key` of another job of the same call (a loop among them is then caught).
   */
  rejectCycles?: boolean;
}

/**
 * Insert jobs into a workflow, turning relationship fields into edges. Status is `uninitialized`
 * unless the body gives one. Validates every body and reference before writing anything (every
 * fault reported in one VALIDATION_FAILED); run it inside a transaction
 * (`store.transaction(tx => insertJobs(tx, ...))`) for all-or-nothing.
 *
 * References are looked up in bulk (one read per target collection, not one per reference), so
 * 100,000 jobs insert in one call. With `rejectCycles`, a `blocked_by` may also name the `_key` of
 * another job of the same call, and a dependency cycle through a new job (explicit, or through
 * files and user data) is DEPENDENCY_CYCLE, thrown after the writes so the caller's transaction
 * rolls them back.
 * Errors name the field by index: `[2, input_files, 0]`.
 */
export async function insertJobs(tx: GraphStore, workflow: string, bodies: readonly Record<string, unknown>[], opts: InsertJobsOptions = {}): Promise<Doc[]> {
  const prefix = opts.pathPrefix ?? [];
  const details: ErrorDetail[] = [];
  let total = 0;
  const fault = (path: (string | number)[], message: string, rule: string) => {
    total++;
    if (details.length < MAX_DETAILS) details.push({ path: [...prefix, ...path], message, rule });
  };
  type Ref = { path: (string | number)[]; ref: string; rel: Relationship };
  const prepared: { doc: Record<string, unknown>; refs: Ref[] }[] = [];
  const batchKeys = new Map<string, number>();
  const wanted = new Set<string>();
  for (const [i, body] of bodies.entries()) {
    const parsed = JobSchema.safeParse(body);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) fault([i, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], issue.message, issue.code);
      continue;
    }
    const doc: Record<string, unknown> = { ...parsed.data };
    delete doc._id;
    delete doc._rev;
    if (typeof doc._key === 'string') {
      if (!DOC_KEY_RE.test(doc._key)) fault([i, '_key'], 'not a valid document key', 'key');
      else if (batchKeys.has(doc._key)) fault([i, '_key'], `duplicate _key "${doc._key}" (also job ${batchKeys.get(doc._key)})`, 'duplicate_key');
      else batchKeys.set(doc._key, i);
    }
    const refs: Ref[] = [];
    for (const [field, rel] of Object.entries(JOB_RELATIONSHIPS)) {
      const value = doc[field];
      delete doc[field];
      if (value === undefined || value === null) continue;
      const list = Array.isArray(value) ? (value as string[]) : [value as string];
      for (const [j, ref] of list.entries()) {
        refs.push({ path: Array.isArray(value) ? [i, field, j] : [i, field], ref, rel });
        for (const id of candidatesOf(ref, rel.targets)) wanted.add(id);
      }
    }
    if (doc.status === undefined) doc.status = 'uninitialized';
    prepared.push({ doc, refs });
  }

  const existing = await docsById(tx, workflow, wanted);
  const edges: { n: number; edge: EdgeCollectionName; other: string; inbound: boolean }[] = [];
  for (const [n, p] of prepared.entries()) {
    for (const { path, ref, rel } of p.refs) {
      const id = candidatesOf(ref, rel.targets).find((c) => existing.has(c));
      if (id !== undefined) {
        edges.push({ n, edge: rel.edge, other: id, inbound: rel.inbound });
        continue;
      }
      // A blocker of the same call, named by the _key it will get.
      // (Only where cycles are checked: otherwise a job could name itself.)
      const inBatch = opts.rejectCycles && rel.edge === 'blocks' && (collectionOf(ref) ?? 'jobs') === 'jobs' ? batchKeys.get(keyOf(ref)) : undefined;
      if (inBatch !== undefined) edges.push({ n, edge: rel.edge, other: `jobs/${keyOf(ref)}`, inbound: true });
      else fault(path, `no ${rel.targets.join(' or ')} document "${ref}" in workflow ${workflow}`, 'reference');
    }
  }
  if (total > 0) fail(details, total);

  const inserted = await tx.insertMany('jobs', workflow, prepared.map((p) => p.doc));
  const byEdge = new Map<EdgeCollectionName, Record<string, unknown>[]>();
  for (const e of edges) {
    const jobId = inserted[e.n]!._id;
    const list = byEdge.get(e.edge) ?? [];
    list.push(e.inbound ? { _from: e.other, _to: jobId } : { _from: jobId, _to: e.other });
    byEdge.set(e.edge, list);
  }
  for (const [edge, docs] of byEdge) await tx.insertMany(edge, workflow, docs);
  // A new job's blockers and data can close a loop (with jobs of this call, or stored ones through
  // a file): refuse it before the caller's transaction commits, so nothing is left blocked forever.
  if (opts.rejectCycles) await rejectNewCycles(tx, workflow, inserted, [...byEdge].flatMap(([edge, docs]) => docs.map((d) => ({ edge, _from: d._from as string, _to: d._to as string }))));
  return inserted;
}
