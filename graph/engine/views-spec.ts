/**
 * Specifications out of a stored workflow: `GET /workflow_specifications/{key}` and the job
 * specifications, plus the fixed example and template specs.
 *
 * Round trip: what `workflowSpecification` returns is a spec that `POST /workflow_specifications`
 * accepts and that gives the same workflow. So references are names (jobs, files, user data,
 * resource requirements) and `collection/name` for schedulers; `invocation_script` and
 * `supports_termination` are kept; a job without resource requirements has none in the spec (no
 * made-up `default`); store metadata (`_key`, `_id`, `_rev`) is left out. A document without a
 * name is referred to by its key, which becomes its name in the spec. `blocked_by` lists only the
 * blockers that the job's files and user data do not already imply (initialize_jobs derives
 * those again), so the spec stays as short as the one the user wrote.
 */
import { WeftError } from '../errors.js';
import type { EdgeCollectionName } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { DEFAULT_WORKFLOW_CONFIG } from './workflow-create.js';
import { bulkEdges, bulkNeighbors, docsById } from './views-bulk.js';
import { labelOf, requireDoc } from './views-graph.js';
import type { Page, PageOptions } from './views-paging.js';

/** A job as written in a workflow specification. */
export interface JobSpecification {
  name: string;
  command: string;
  invocation_script?: string | null;
  cancel_on_blocking_job_failure: boolean;
  supports_termination: boolean;
  scheduler?: string;
  schedule_compute_nodes?: unknown;
  resource_requirements?: string;
  input_files: string[];
  output_files: string[];
  input_user_data: string[];
  output_user_data: string[];
  blocked_by: string[];
}

const SCHEDULER_COLLECTIONS = ['aws_schedulers', 'local_schedulers', 'slurm_schedulers'] as const;

/** The document without store metadata. */
export function withoutMeta(doc: Record<string, unknown>): Record<string, unknown> {
  const { _key: _k, _id: _i, _rev: _r, ...rest } = doc;
  return rest;
}

/** Spec entries for vertex documents: metadata removed, the key as name when there is none. */
function specDocs(docs: readonly Doc[]): Record<string, unknown>[] {
  return docs.map((d) => ({ ...withoutMeta(d), name: labelOf(d) }));
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Outbound neighbours of `ids` along `edge`, grouped by source id (distinct, edge order). */
async function outbound(store: GraphStore, workflow: string, edge: EdgeCollectionName, ids: readonly string[]): Promise<Map<string, Doc[]>> {
  const out = new Map<string, Doc[]>();
  const seen = new Set<string>();
  for (const n of await bulkNeighbors(store, workflow, edge, ids, 'outbound')) {
    if (!n.vertex) continue;
    const pair = `${n.edge._from}\u0000${n.vertex._id}`;
    if (seen.has(pair)) continue;
    seen.add(pair);
    pushTo(out, n.edge._from, n.vertex);
  }
  return out;
}

/**
 * Job specifications for `jobs` (stored job documents of `workflow`), in the same order.
 * Relationships are read in bulk: a handful of queries whatever the number of jobs.
 */
export async function jobSpecifications(store: GraphStore, workflow: string, jobs: readonly Doc[]): Promise<JobSpecification[]> {
  const ids = jobs.map((j) => j._id);
  const [needs, produces, consumes, stores, requires, blockerEdges] = await Promise.all([
    outbound(store, workflow, 'needs', ids),
    outbound(store, workflow, 'produces', ids),
    outbound(store, workflow, 'consumes', ids),
    outbound(store, workflow, 'stores', ids),
    outbound(store, workflow, 'requires', ids),
    bulkEdges(store, workflow, 'blocks', ids, 'inbound'),
  ]);
  const schedulers = await outbound(store, workflow, 'scheduled_bys', ids);

  // Blockers implied by data: the producers of needed files and the storers of consumed user data.
  const neededFiles = [...new Set([...needs.values()].flat().map((d) => d._id))];
  const consumedData = [...new Set([...consumes.values()].flat().map((d) => d._id))];
  const producersOf = new Map<string, string[]>();
  for (const e of await bulkEdges(store, workflow, 'produces', neededFiles, 'inbound')) pushTo(producersOf, e._to, e._from);
  for (const e of await bulkEdges(store, workflow, 'stores', consumedData, 'inbound')) pushTo(producersOf, e._to, e._from);

  const blockersOf = new Map<string, string[]>();
  for (const e of blockerEdges) pushTo(blockersOf, e._to, e._from);
  const blockerIds = [...new Set(blockerEdges.map((e) => e._from))];
  const blockerDocs = await docsById(store, workflow, blockerIds);
  const blockerNames = new Map([...blockerDocs.values()].map((d) => [d._id, labelOf(d)]));
  // schedule_compute_nodes.scheduler_id is stored as an _id; the spec names it collection/name like `scheduler`.
  const scheduleIds = jobs.flatMap((j) => {
    const id = (j.schedule_compute_nodes as { scheduler_id?: unknown } | null | undefined)?.scheduler_id;
    return typeof id === 'string' ? [id] : [];
  });
  const scheduleDocs = await docsById(store, workflow, scheduleIds);

  return jobs.map((job) => {
    const inputs = [...(needs.get(job._id) ?? []), ...(consumes.get(job._id) ?? [])];
    const implied = new Set(inputs.flatMap((d) => producersOf.get(d._id) ?? []));
    const explicit = [...new Set(blockersOf.get(job._id) ?? [])].filter((id) => !implied.has(id) && blockerNames.has(id));
    const spec: JobSpecification = {
      name: labelOf(job),
      command: String(job.command ?? ''),
      cancel_on_blocking_job_failure: job.cancel_on_blocking_job_failure !== false,
      supports_termination: job.supports_termination === true,
      input_files: (needs.get(job._id) ?? []).map(labelOf),
      output_files: (produces.get(job._id) ?? []).map(labelOf),
      input_user_data: (consumes.get(job._id) ?? []).map(labelOf),
      output_user_data: (stores.get(job._id) ?? []).map(labelOf),
      blocked_by: explicit.map((id) => blockerNames.get(id) ?? id),
    };
    if (job.invocation_script !== undefined && job.invocation_script !== null) spec.invocation_script = job.invocation_script as string;
    const [rr] = requires.get(job._id) ?? [];
    if (rr) spec.resource_requirements = labelOf(rr);
    const [sched] = schedulers.get(job._id) ?? [];
    if (sched) spec.scheduler = `${sched._id.slice(0, sched._id.lastIndexOf('/'))}/${labelOf(sched)}`;
    if (job.schedule_compute_nodes !== undefined && job.schedule_compute_nodes !== null) {
      const params = { ...(job.schedule_compute_nodes as Record<string, unknown>) };
      const target = typeof params.scheduler_id === 'string' ? scheduleDocs.get(params.scheduler_id) : undefined;
      if (target) params.scheduler_id = `${target._id.slice(0, target._id.lastIndexOf('/'))}/${labelOf(target)}`;
      spec.schedule_compute_nodes = params;
    }
    return spec;
  });
}

/** `GET /workflows/{workflow}/job_specifications`: job specifications, paged in insertion order. */
export async function listJobSpecifications(store: GraphStore, workflow: string, paging: PageOptions = {}): Promise<Page<JobSpecification>> {
  const skip = paging.skip ?? 0;
  const found = await store.find('jobs', workflow, { skip, ...(paging.limit === undefined ? {} : { limit: paging.limit }), withTotal: true });
  return { items: await jobSpecifications(store, workflow, found.items), skip, total: found.totalCount };
}

/** `GET /workflows/{workflow}/job_specifications/{key}`: one job's specification (404 if none). */
export async function getJobSpecification(store: GraphStore, workflow: string, jobKey: string): Promise<JobSpecification> {
  const job = await requireDoc(store, 'jobs', workflow, jobKey);
  const [spec] = await jobSpecifications(store, workflow, [job]);
  return spec!;
}

/** `GET /workflow_specifications/{key}`: the whole workflow as a spec that POST accepts again. */
export async function workflowSpecification(store: GraphStore, workflow: string): Promise<Record<string, unknown>> {
  const wf = await store.get('workflows', null, workflow);
  if (!wf) throw new WeftError('WORKFLOW_NOT_FOUND', `Workflow ${workflow} not found`, { extra: { workflow } });
  const config = await store.get('workflow_configs', null, workflow);
  const all = async (c: 'files' | 'user_data' | 'resource_requirements' | (typeof SCHEDULER_COLLECTIONS)[number]) => (await store.find(c, workflow)).items;
  const [files, userData, rrs, aws, local, slurm, jobs] = await Promise.all([
    all('files'),
    all('user_data'),
    all('resource_requirements'),
    all('aws_schedulers'),
    all('local_schedulers'),
    all('slurm_schedulers'),
    store.find('jobs', workflow).then((r) => r.items),
  ]);
  const spec: Record<string, unknown> = {
    name: wf.name ?? '',
    user: wf.user ?? '',
    description: wf.description ?? '',
    is_archived: wf.is_archived === true,
    jobs: await jobSpecifications(store, workflow, jobs),
    files: specDocs(files),
    user_data: specDocs(userData),
    resource_requirements: specDocs(rrs),
    schedulers: { aws_schedulers: specDocs(aws), local_schedulers: specDocs(local), slurm_schedulers: specDocs(slurm) },
    config: config ? withoutMeta(config) : structuredClone(DEFAULT_WORKFLOW_CONFIG),
  };
  return spec;
}

/** The fixed example spec (`GET /workflow_specifications/example`; also examples/workflow.json). */
export function exampleSpecification(): Record<string, unknown> {
  return {
    name: 'example',
    user: '',
    description: 'Run a script on an input file, then postprocess its output.',
    files: [
      { name: 'work_script', path: 'my_script.sh' },
      { name: 'postprocess_script', path: 'postprocess.sh' },
      { name: 'f1', path: 'dir/f1.json' },
      { name: 'f2', path: 'dir/f2.json' },
      { name: 'f3', path: 'dir/f3.json' },
    ],
    jobs: [
      {
        name: 'work',
        command: 'bash my_script.sh -i f1.json -o f2.json',
        input_files: ['work_script', 'f1'],
        output_files: ['f2'],
        resource_requirements: 'medium',
      },
      {
        name: 'postprocess',
        command: 'bash postprocess.sh -i f2.json -o f3.json',
        input_files: ['postprocess_script', 'f2'],
        output_files: ['f3'],
        resource_requirements: 'small',
      },
    ],
    user_data: [],
    resource_requirements: [
      { name: 'small', num_cpus: 1, num_gpus: 0, num_nodes: 1, memory: '10g', runtime: 'P0DT1H' },
      { name: 'medium', num_cpus: 8, num_gpus: 0, num_nodes: 1, memory: '30g', runtime: 'P0DT4H' },
    ],
    schedulers: { aws_schedulers: [], local_schedulers: [], slurm_schedulers: [] },
    config: structuredClone(DEFAULT_WORKFLOW_CONFIG),
  };
}

/** The empty template spec (`GET /workflow_specifications/template`): every field, config defaults. */
export function templateSpecification(): Record<string, unknown> {
  return {
    name: '',
    user: '',
    description: '',
    jobs: [],
    files: [],
    user_data: [],
    resource_requirements: [],
    schedulers: { aws_schedulers: [], local_schedulers: [], slurm_schedulers: [] },
    config: structuredClone(DEFAULT_WORKFLOW_CONFIG),
  };
}
