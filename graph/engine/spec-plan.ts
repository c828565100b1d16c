/**
 * Workflow specifications, checked whole in memory before anything is written.
 *
 * `planSpecification(body)` turns a WorkflowSpecification (Torc 0.6.4 field names, reference
 * section 11.1) into a plan: the documents to insert, exactly as the single-document routes would
 * store them, and the edges between them as indices into those lists. It reports every fault at
 * once (SPEC_INVALID, one detail each: unknown file / user data / resource requirements /
 * scheduler / job names with the job at fault, duplicate names, malformed memory or runtime,
 * wrong types, unknown fields), and dependency cycles, implicit ones through files (producer →
 * consumer) and user data (stores → consumes) included (DEPENDENCY_CYCLE, the jobs on each cycle
 * in order). Because names are resolved against the whole spec, the order of jobs does not matter
 * (unlike Torc, where `blocked_by` could only name earlier jobs).
 *
 * References are names; a scheduler is `"<collection>/<name>"` (`slurm_schedulers/debug`, as
 * GET /workflow_specifications writes it), or a bare name that only one scheduler has.
 */
import { z } from 'zod';
import { WeftError, type ErrorDetail } from '../errors.js';
import {
  AwsSchedulerSchema,
  ComputeNodeScheduleParamsSchema,
  FileSchema,
  LocalSchedulerSchema,
  ResourceRequirementsSchema,
  SlurmSchedulerSchema,
  UserDataSchema,
  WorkflowConfigSchema,
} from '../model.js';
import { dependencyCycles } from './spec-cycles.js';
import { durationToSeconds, memoryToBytes } from './views-units.js';
import { DEFAULT_WORKFLOW_CONFIG } from './workflow-create.js';

export const SCHEDULER_COLLECTIONS = ['aws_schedulers', 'local_schedulers', 'slurm_schedulers'] as const;
export type SchedulerCollection = (typeof SCHEDULER_COLLECTIONS)[number];
/** Vertex collections a spec declares by name (jobs aside). */
export type SpecCollection = 'files' | 'user_data' | 'resource_requirements' | SchedulerCollection;

/** Short names for the scheduler lists (the reference's template writes `{aws, local, slurm}`). */
const SCHEDULER_ALIASES: Readonly<Record<string, SchedulerCollection>> = {
  aws: 'aws_schedulers',
  local: 'local_schedulers',
  slurm: 'slurm_schedulers',
  aws_schedulers: 'aws_schedulers',
  local_schedulers: 'local_schedulers',
  slurm_schedulers: 'slurm_schedulers',
};

const SPEC_FIELDS = new Set(['name', 'key', 'user', 'description', 'is_archived', 'jobs', 'files', 'user_data', 'resource_requirements', 'schedulers', 'config']);

/** The document key alphabet (the same rule as server/validate.ts, so every key is addressable). */
export const DOC_KEY_RE = /^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$/;

/** At most this many details go into one error (the count says how many there were). */
const MAX_DETAILS = 1000;

const names = () => z.array(z.string()).nullish();

/** A job as a spec writes it: references are names. Unknown fields are refused (a typo would silently lose an edge). */
export const JobSpecificationSchema = z.strictObject({
  name: z.string().min(1),
  key: z.string().regex(DOC_KEY_RE, 'is not a valid document key').nullish(),
  command: z.string().min(1),
  invocation_script: z.string().nullish(),
  cancel_on_blocking_job_failure: z.boolean().nullish(),
  supports_termination: z.boolean().nullish(),
  scheduler: z.string().nullish(),
  schedule_compute_nodes: ComputeNodeScheduleParamsSchema.nullish(),
  resource_requirements: z.string().nullish(),
  input_files: names(),
  output_files: names(),
  input_user_data: names(),
  output_user_data: names(),
  blocked_by: names(),
});

/** The whole specification, for the OpenAPI document (checks are done by planSpecification). */
export const WorkflowSpecificationSchema = z.object({
  name: z.string().nullish(),
  key: z.string().nullish().meta({ description: 'The workflow _key (must be unused); generated when absent' }),
  user: z.string().nullish(),
  description: z.string().nullish(),
  is_archived: z.boolean().nullish(),
  jobs: z.array(JobSpecificationSchema).nullish(),
  files: z.array(FileSchema).nullish(),
  user_data: z.array(UserDataSchema).nullish(),
  resource_requirements: z.array(ResourceRequirementsSchema).nullish(),
  schedulers: z
    .object({ aws_schedulers: z.array(AwsSchedulerSchema).nullish(), local_schedulers: z.array(LocalSchedulerSchema).nullish(), slurm_schedulers: z.array(SlurmSchedulerSchema).nullish() })
    .nullish(),
  config: WorkflowConfigSchema.nullish(),
});

const DOC_SCHEMAS: Readonly<Record<SpecCollection, z.ZodType>> = {
  files: FileSchema,
  user_data: UserDataSchema,
  resource_requirements: ResourceRequirementsSchema,
  aws_schedulers: AwsSchedulerSchema,
  local_schedulers: LocalSchedulerSchema,
  slurm_schedulers: SlurmSchedulerSchema,
};

const KIND_WORDS: Readonly<Record<SpecCollection | 'jobs', string>> = {
  files: 'file',
  user_data: 'user data',
  resource_requirements: 'resource requirements',
  aws_schedulers: 'AWS scheduler',
  local_schedulers: 'local scheduler',
  slurm_schedulers: 'Slurm scheduler',
  jobs: 'job',
};

/**
 * Edges as flat pairs `[job, index, job, index, ...]`: job position → the `index`-th document of
 * the target list (for blocks: the blocked job, then its blocker's position). Flat numbers keep a
 * million-job plan to a few bytes an edge instead of an object each.
 */
export type Pairs = number[];

/** A job bound to a scheduler of the spec. */
export interface SchedulerRef {
  job: number;
  collection: SchedulerCollection;
  index: number;
}

export interface SpecPlan {
  /** Body for createWorkflow. */
  workflow: Record<string, unknown>;
  /** The whole config (defaults merged, compute_node_resource_stats merged field by field). */
  config: Record<string, unknown>;
  docs: Record<SpecCollection, Record<string, unknown>[]>;
  jobs: Record<string, unknown>[];
  /** Job names by position in the spec (edges use these positions; equal to `jobs` when there is no fault). */
  jobNames: string[];
  needs: Pairs;
  produces: Pairs;
  consumes: Pairs;
  stores: Pairs;
  requires: Pairs;
  /** `[blocked job, blocker job, ...]`. */
  blocks: Pairs;
  scheduledBys: SchedulerRef[];
  /** Jobs whose schedule_compute_nodes.scheduler_id names a spec scheduler: filled with its `_id` once inserted. */
  scheduleFixups: SchedulerRef[];
}

/** Collects faults; only the first MAX_DETAILS are kept, all are counted. */
class Faults {
  readonly details: ErrorDetail[] = [];
  count = 0;
  add(path: (string | number)[], message: string, rule: string): void {
    this.count++;
    if (this.details.length < MAX_DETAILS) this.details.push({ path, message, rule });
  }
  zod(prefix: (string | number)[], error: z.ZodError): void {
    for (const issue of error.issues) {
      const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
      this.add(path, `${path.join('.')}: ${issue.message}`, issue.code);
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function withoutMeta(doc: Record<string, unknown>): Record<string, unknown> {
  const { _key: _k, _id: _i, _rev: _r, ...rest } = doc;
  return rest;
}

/** An array field of the spec (absent or null: empty). */
function listOf(value: unknown, path: (string | number)[], faults: Faults): unknown[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value;
  faults.add(path, `${path.join('.')}: expected an array`, 'invalid_type');
  return [];
}

/** Name → index of the documents that have a name; later duplicates are faults. */
function nameIndex(kind: SpecCollection | 'jobs', docs: readonly (Record<string, unknown> | undefined)[], faults: Faults, prefix: (string | number)[]): Map<string, number> {
  const index = new Map<string, number>();
  for (const [i, d] of docs.entries()) {
    const name = d?.name;
    if (typeof name !== 'string') continue;
    const first = index.get(name);
    if (first === undefined) index.set(name, i);
    else faults.add([...prefix, i, 'name'], `duplicate ${KIND_WORDS[kind]} name "${name}" (also ${prefix.join('.')}[${first}])`, 'duplicate_name');
  }
  return index;
}

/** Check and plan a specification. Throws SPEC_INVALID or DEPENDENCY_CYCLE; writes nothing. */
export function planSpecification(body: unknown): SpecPlan {
  if (!isObject(body)) {
    throw new WeftError('SPEC_INVALID', 'Invalid workflow specification: expected an object', { details: [{ path: [], message: 'expected an object', rule: 'invalid_type' }] });
  }
  const faults = new Faults();
  for (const k of Object.keys(body)) {
    if (!SPEC_FIELDS.has(k)) faults.add([k], `unknown field "${k}" (expected one of ${[...SPEC_FIELDS].join(', ')})`, 'unrecognized_keys');
  }
  const workflow = planWorkflow(body, faults);
  const config = planConfig(body.config, faults);

  // Vertex documents: parsed with the collection's schema (defaults applied, as the single POST does).
  const docs = { files: [], user_data: [], resource_requirements: [], aws_schedulers: [], local_schedulers: [], slurm_schedulers: [] } as SpecPlan['docs'];
  const declared: Partial<Record<SpecCollection, (Record<string, unknown> | undefined)[]>> = {};
  // Names as written, also of documents that failed their schema: a job naming one is not at fault too.
  const written: Partial<Record<SpecCollection, (Record<string, unknown> | undefined)[]>> = {};
  const parseDocs = (coll: SpecCollection, list: unknown[], prefix: (string | number)[]) => {
    written[coll] = list.map((raw) => (isObject(raw) ? raw : undefined));
    const parsed = list.map((raw, i) => {
      if (!isObject(raw)) {
        faults.add([...prefix, i], `${[...prefix, i].join('.')}: expected an object`, 'invalid_type');
        return undefined;
      }
      const result = DOC_SCHEMAS[coll].safeParse(withoutMeta(raw));
      if (!result.success) {
        faults.zod([...prefix, i], result.error);
        return undefined;
      }
      return result.data as Record<string, unknown>;
    });
    declared[coll] = parsed;
    docs[coll] = parsed.filter((d): d is Record<string, unknown> => d !== undefined);
  };
  for (const coll of ['files', 'user_data', 'resource_requirements'] as const) parseDocs(coll, listOf(body[coll], [coll], faults), [coll]);
  const schedulers = body.schedulers;
  if (schedulers !== undefined && schedulers !== null && !isObject(schedulers)) faults.add(['schedulers'], 'schedulers: expected an object of scheduler lists', 'invalid_type');
  const lists: Partial<Record<SchedulerCollection, { list: unknown[]; prefix: string[] }>> = {};
  for (const [k, v] of Object.entries(isObject(schedulers) ? schedulers : {})) {
    const coll = SCHEDULER_ALIASES[k];
    if (!coll) {
      faults.add(['schedulers', k], `unknown scheduler list "${k}" (expected ${SCHEDULER_COLLECTIONS.join(', ')})`, 'unrecognized_keys');
      continue;
    }
    if (lists[coll]) faults.add(['schedulers', k], `scheduler list ${coll} given twice`, 'duplicate_name');
    else lists[coll] = { list: listOf(v, ['schedulers', k], faults), prefix: ['schedulers', k] };
  }
  for (const coll of SCHEDULER_COLLECTIONS) parseDocs(coll, lists[coll]?.list ?? [], lists[coll]?.prefix ?? ['schedulers', coll]);

  // Strict unit parsing: a requirement the claims cannot read is refused now, not at run time.
  for (const [i, rr] of (declared.resource_requirements ?? []).entries()) {
    if (!rr) continue;
    for (const [field, parse] of [['memory', memoryToBytes], ['runtime', durationToSeconds]] as const) {
      try {
        parse(String(rr[field]));
      } catch (err) {
        faults.add(['resource_requirements', i, field], `resource requirements "${String(rr.name ?? i)}": ${(err as Error).message}`, field);
      }
    }
  }

  // Names, counted over the declared lists so that the indices in faults are the spec's own.
  const indexOf = {} as Record<SpecCollection, Map<string, number>>;
  const position = {} as Record<SpecCollection, number[]>;
  for (const coll of Object.keys(docs) as SpecCollection[]) {
    const list = declared[coll] ?? [];
    const prefix = coll.endsWith('_schedulers') ? (lists[coll as SchedulerCollection]?.prefix ?? ['schedulers', coll]) : [coll];
    const byName = nameIndex(coll, written[coll] ?? [], faults, prefix);
    // Map from declared index to the index among the parsed documents (those that will be
    // inserted); -1 for a document that failed its schema (the spec is refused anyway).
    const pos: number[] = [];
    let n = 0;
    for (const d of list) pos.push(d === undefined ? -1 : n++);
    position[coll] = pos;
    indexOf[coll] = byName;
  }
  const lookup = (coll: SpecCollection, name: string): number | undefined => {
    const i = indexOf[coll].get(name);
    return i === undefined ? undefined : position[coll][i];
  };

  const plan: SpecPlan = { workflow, config, docs, jobs: [], jobNames: [], needs: [], produces: [], consumes: [], stores: [], requires: [], blocks: [], scheduledBys: [], scheduleFixups: [] };
  planJobs(listOf(body.jobs, ['jobs'], faults), plan, lookup, faults);

  const cycles = findDependencyCycles(plan);
  if (faults.count > 0 || cycles.length > 0) {
    for (const c of cycles) faults.add(['jobs', c.first], `dependency cycle: ${c.text}`, 'dependency_cycle');
    const shown = faults.details.slice(0, 5).map((d) => d.message);
    if (faults.count > 5) shown.push(`and ${faults.count - 5} more`);
    const onlyCycles = faults.count === cycles.length;
    throw new WeftError(onlyCycles ? 'DEPENDENCY_CYCLE' : 'SPEC_INVALID', `${onlyCycles ? 'Dependency cycle' : 'Invalid workflow specification'}: ${shown.join('; ')}`, {
      details: faults.details,
      extra: { fault_count: faults.count, ...(cycles.length > 0 ? { cycles: cycles.map((c) => c.jobs) } : {}) },
    });
  }
  return plan;
}

function planWorkflow(body: Record<string, unknown>, faults: Faults): Record<string, unknown> {
  const wf: Record<string, unknown> = {};
  for (const field of ['name', 'user', 'description'] as const) {
    const v = body[field];
    if (v === undefined || v === null) wf[field] = '';
    else if (typeof v === 'string') wf[field] = v;
    else faults.add([field], `${field}: expected a string`, 'invalid_type');
  }
  if (body.is_archived !== undefined && body.is_archived !== null && typeof body.is_archived !== 'boolean') faults.add(['is_archived'], 'is_archived: expected a boolean', 'invalid_type');
  wf.is_archived = body.is_archived === true;
  if (body.key !== undefined && body.key !== null) {
    if (typeof body.key === 'string' && DOC_KEY_RE.test(body.key)) wf._key = body.key;
    else faults.add(['key'], "key: must be 1-254 characters of A-Z a-z 0-9 _ - : . @ ( ) + , = ; $ ! * ' %", 'key');
  }
  return wf;
}

function planConfig(value: unknown, faults: Faults): Record<string, unknown> {
  const defaults = structuredClone(DEFAULT_WORKFLOW_CONFIG) as Record<string, unknown>;
  if (value === undefined || value === null) return defaults;
  if (!isObject(value)) {
    faults.add(['config'], 'config: expected an object', 'invalid_type');
    return defaults;
  }
  const parsed = WorkflowConfigSchema.safeParse(withoutMeta(value));
  if (!parsed.success) {
    faults.zod(['config'], parsed.error);
    return defaults;
  }
  const config = withoutMeta(parsed.data);
  const stats = { ...(defaults.compute_node_resource_stats as Record<string, unknown>), ...((config.compute_node_resource_stats as Record<string, unknown> | undefined) ?? {}) };
  return { ...defaults, ...config, compute_node_resource_stats: stats };
}

/** Resolve a scheduler reference: `collection/name` (aliases allowed) or a name only one scheduler has. */
function resolveScheduler(ref: string, lookup: (c: SpecCollection, n: string) => number | undefined): { collection: SchedulerCollection; index: number } | string {
  const slash = ref.indexOf('/');
  if (slash > 0) {
    const coll = SCHEDULER_ALIASES[ref.slice(0, slash)];
    if (coll) {
      const index = lookup(coll, ref.slice(slash + 1));
      return index === undefined ? `no ${KIND_WORDS[coll]} named "${ref.slice(slash + 1)}"` : { collection: coll, index };
    }
  }
  const found = SCHEDULER_COLLECTIONS.flatMap((c) => {
    const index = lookup(c, ref);
    return index === undefined ? [] : [{ collection: c, index }];
  });
  if (found.length === 1) return found[0]!;
  if (found.length > 1) return `scheduler "${ref}" is ambiguous: write it as ${found.map((f) => `${f.collection}/${ref}`).join(' or ')}`;
  return `no scheduler "${ref}" (write it as <collection>/<name>, e.g. slurm_schedulers/debug)`;
}

type JobSpec = z.output<typeof JobSpecificationSchema>;

const NAME_REFS = [
  ['input_files', 'files', 'needs', 'unknown_file'],
  ['output_files', 'files', 'produces', 'unknown_file'],
  ['input_user_data', 'user_data', 'consumes', 'unknown_user_data'],
  ['output_user_data', 'user_data', 'stores', 'unknown_user_data'],
] as const;

const JOB_FIELDS = new Set(Object.keys(JobSpecificationSchema.shape));
const optString = (v: unknown) => v === undefined || v === null || typeof v === 'string';
const optBool = (v: unknown) => v === undefined || v === null || typeof v === 'boolean';
const optNames = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'));

/**
 * The job as it is, when it plainly satisfies JobSpecificationSchema (the usual case), so a
 * million-job spec is not copied by the schema; anything else goes through the schema, which
 * also words the faults.
 */
function plainJob(raw: Record<string, unknown>): JobSpec | undefined {
  for (const k in raw) if (!JOB_FIELDS.has(k)) return undefined;
  const ok =
    typeof raw.name === 'string' && raw.name !== '' && typeof raw.command === 'string' && raw.command !== '' &&
    (raw.key === undefined || raw.key === null || (typeof raw.key === 'string' && DOC_KEY_RE.test(raw.key))) &&
    optString(raw.invocation_script) && optString(raw.scheduler) && optString(raw.resource_requirements) &&
    optBool(raw.cancel_on_blocking_job_failure) && optBool(raw.supports_termination) &&
    (raw.schedule_compute_nodes === undefined || raw.schedule_compute_nodes === null) &&
    optNames(raw.input_files) && optNames(raw.output_files) && optNames(raw.input_user_data) && optNames(raw.output_user_data) && optNames(raw.blocked_by);
  return ok ? (raw as JobSpec) : undefined;
}

function planJobs(list: unknown[], plan: SpecPlan, lookup: (c: SpecCollection, n: string) => number | undefined, faults: Faults): void {
  const specs: (JobSpec | undefined)[] = list.map((raw, i) => {
    if (!isObject(raw)) {
      faults.add(['jobs', i], `jobs.${i}: expected an object`, 'invalid_type');
      return undefined;
    }
    const plain = plainJob(raw);
    if (plain) return plain;
    const parsed = JobSpecificationSchema.safeParse(raw);
    if (!parsed.success) {
      faults.zod(['jobs', i], parsed.error);
      return undefined;
    }
    return parsed.data;
  });
  plan.jobNames = specs.map((s, i) => s?.name ?? `jobs[${i}]`);
  const jobIndex = nameIndex('jobs', specs, faults, ['jobs']);
  const keys = new Map<string, number>();
  /** Append `[i, index]` for each distinct index (a name listed twice is one edge). */
  const addAll = (out: Pairs, i: number, indices: number[]) => {
    if (indices.length === 1) out.push(i, indices[0]!);
    else for (const index of new Set(indices)) out.push(i, index);
  };
  for (const [i, spec] of specs.entries()) {
    if (!spec) continue;
    const at = (field: string, j?: number) => (j === undefined ? ['jobs', i, field] : ['jobs', i, field, j]);
    const job = () => `job "${spec.name}"`;
    for (const [field, coll, edge, rule] of NAME_REFS) {
      const names = spec[field];
      if (!names || names.length === 0) continue;
      const found: number[] = [];
      for (const [j, name] of names.entries()) {
        const index = lookup(coll, name);
        if (index === undefined) faults.add(at(field, j), `${job()}: unknown ${KIND_WORDS[coll]} "${name}" in ${field}`, rule);
        else found.push(index);
      }
      addAll(plan[edge], i, found);
    }
    if (spec.blocked_by && spec.blocked_by.length > 0) {
      const found: number[] = [];
      for (const [j, name] of spec.blocked_by.entries()) {
        const index = jobIndex.get(name);
        if (index === undefined) faults.add(at('blocked_by', j), `${job()}: unknown job "${name}" in blocked_by`, 'unknown_job');
        else found.push(index);
      }
      addAll(plan.blocks, i, found);
    }
    if (spec.resource_requirements) {
      const index = lookup('resource_requirements', spec.resource_requirements);
      if (index === undefined) faults.add(at('resource_requirements'), `${job()}: unknown resource requirements "${spec.resource_requirements}"`, 'unknown_resource_requirements');
      else plan.requires.push(i, index);
    }
    if (spec.scheduler) {
      const found = resolveScheduler(spec.scheduler, lookup);
      if (typeof found === 'string') faults.add(at('scheduler'), `${job()}: ${found}`, 'unknown_scheduler');
      else plan.scheduledBys.push({ job: i, ...found });
    }
    if (spec.schedule_compute_nodes) {
      const found = resolveScheduler(spec.schedule_compute_nodes.scheduler_id, lookup);
      if (typeof found === 'string') faults.add([...at('schedule_compute_nodes'), 'scheduler_id'], `${job()}: schedule_compute_nodes.scheduler_id: ${found}`, 'unknown_scheduler');
      else plan.scheduleFixups.push({ job: i, ...found });
    }
    if (spec.key) {
      const first = keys.get(spec.key);
      if (first !== undefined) faults.add(at('key'), `${job()}: duplicate key "${spec.key}" (also jobs[${first}])`, 'duplicate_key');
      else keys.set(spec.key, i);
    }
    plan.jobs.push(storedJob(spec));
  }
}

/**
 * The job document as the single job POST stores it: JobSchema's defaults (the spec schema has
 * already checked every field, so no second parse), status uninitialized.
 */
function storedJob(spec: JobSpec): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  if (spec.key) doc._key = spec.key;
  doc.name = spec.name;
  doc.command = spec.command;
  if (spec.invocation_script !== undefined && spec.invocation_script !== null) doc.invocation_script = spec.invocation_script;
  doc.status = 'uninitialized';
  if (spec.schedule_compute_nodes) doc.schedule_compute_nodes = { ...spec.schedule_compute_nodes };
  doc.cancel_on_blocking_job_failure = spec.cancel_on_blocking_job_failure ?? true;
  doc.supports_termination = spec.supports_termination ?? false;
  return doc;
}

interface Cycle {
  /** Position of the first job on the cycle. */
  first: number;
  /** Job names in order, closed: [a, b, c, a]. */
  jobs: string[];
  /** `a → b (file f) → a`. */
  text: string;
}

/** Cycles of the spec's job graph, implicit edges through files and user data included (spec-cycles.ts). */
export function findDependencyCycles(plan: SpecPlan): Cycle[] {
  const nJobs = plan.jobNames.length;
  const fileBase = nJobs;
  const udBase = fileBase + plan.docs.files.length;
  const size = udBase + plan.docs.user_data.length;
  // Pairs [job, data] shifted into the shared node space; a document at fault (index -1) is left out.
  const shifted = (lists: [Pairs, number][]): Pairs => {
    const out: Pairs = [];
    for (const [list, base] of lists) for (let k = 0; k < list.length; k += 2) if (list[k + 1]! >= 0) out.push(list[k]!, base + list[k + 1]!);
    return out;
  };
  const blocks: Pairs = [];
  for (let k = 0; k < plan.blocks.length; k += 2) blocks.push(plan.blocks[k + 1]!, plan.blocks[k]!);
  const cycles = dependencyCycles({
    size,
    blocks,
    writes: shifted([[plan.produces, fileBase], [plan.stores, udBase]]),
    reads: shifted([[plan.needs, fileBase], [plan.consumes, udBase]]),
  });
  const name = (n: number): string => plan.jobNames[n] ?? String(n);
  return cycles.map((nodes) => {
    const jobs = nodes.filter((n) => n < nJobs);
    const steps: string[] = [name(nodes[0]!)];
    let via = '';
    for (const n of nodes.slice(1)) {
      if (n >= udBase) via = `(user data ${String(plan.docs.user_data[n - udBase]?.name ?? n - udBase)}) `;
      else if (n >= fileBase) via = `(file ${String(plan.docs.files[n - fileBase]?.name ?? n - fileBase)}) `;
      else {
        steps.push(`${via}${name(n)}`);
        via = '';
      }
    }
    // A message stays readable for a cycle of thousands; `jobs` has all of them.
    const shown = steps.length <= 12 ? steps : [...steps.slice(0, 6), `... ${steps.length - 11} more ...`, ...steps.slice(-5)];
    return { first: jobs[0]!, jobs: jobs.map(name), text: shown.join(' → ') };
  });
}
