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

function fail(details: ErrorDetail[]): never {
  const shown = details.slice(0, 5).map((d) => `${d.path.join('.')}: ${d.message}`);
  if (details.length > 5) shown.push(`and ${details.length - 5} more`);
  throw new WeftError('VALIDATION_FAILED', `Invalid job: ${shown.join('; ')}`, { details });
}

/** Find the referenced document's id, or undefined when it is not in the workflow. */
async function resolveRef(tx: GraphStore, workflow: string, ref: string, targets: readonly CollectionName[]): Promise<string | undefined> {
  const named = collectionOf(ref);
  const key = keyOf(ref);
  const candidates = named === undefined ? targets : targets.filter((t) => t === named);
  for (const c of candidates) {
    if (await tx.get(c, workflow, key)) return `${c}/${key}`;
  }
  return undefined;
}

/**
 * Insert jobs into a workflow, turning relationship fields into edges. Status is `uninitialized`
 * unless the body gives one. Validates every body and reference before writing anything; run it
 * inside a transaction (`store.transaction(tx => insertJobs(tx, ...))`) for all-or-nothing.
 * Errors name the field by index: `[2, input_files, 0]`.
 */
export async function insertJobs(tx: GraphStore, workflow: string, bodies: readonly Record<string, unknown>[]): Promise<Doc[]> {
  const details: ErrorDetail[] = [];
  const prepared: { doc: Record<string, unknown>; edges: { edge: EdgeCollectionName; other: string; inbound: boolean }[] }[] = [];
  for (const [i, body] of bodies.entries()) {
    const parsed = JobSchema.safeParse(body);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        details.push({ path: [i, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], message: issue.message, rule: issue.code });
      }
      continue;
    }
    const doc: Record<string, unknown> = { ...parsed.data };
    delete doc._id;
    delete doc._rev;
    const edges: (typeof prepared)[number]['edges'] = [];
    for (const [field, rel] of Object.entries(JOB_RELATIONSHIPS)) {
      const value = doc[field];
      delete doc[field];
      if (value === undefined || value === null) continue;
      const refs = Array.isArray(value) ? (value as string[]) : [value as string];
      for (const [j, ref] of refs.entries()) {
        const path = Array.isArray(value) ? [i, field, j] : [i, field];
        const id = await resolveRef(tx, workflow, ref, rel.targets);
        if (id === undefined) {
          details.push({ path, message: `no ${rel.targets.join(' or ')} document "${ref}" in workflow ${workflow}`, rule: 'reference' });
          continue;
        }
        edges.push({ edge: rel.edge, other: id, inbound: rel.inbound });
      }
    }
    if (doc.status === undefined) doc.status = 'uninitialized';
    prepared.push({ doc, edges });
  }
  if (details.length > 0) fail(details);

  const inserted = await tx.insertMany('jobs', workflow, prepared.map((p) => p.doc));
  const byEdge = new Map<EdgeCollectionName, Record<string, unknown>[]>();
  for (const [n, p] of prepared.entries()) {
    const jobId = inserted[n]!._id;
    for (const e of p.edges) {
      const list = byEdge.get(e.edge) ?? [];
      list.push(e.inbound ? { _from: e.other, _to: jobId } : { _from: jobId, _to: e.other });
      byEdge.set(e.edge, list);
    }
  }
  for (const [edge, docs] of byEdge) await tx.insertMany(edge, workflow, docs);
  return inserted;
}
