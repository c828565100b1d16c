/**
 * The Weft graph model: every vertex, document and edge collection, as zod schemas.
 *
 * Glossary
 * - workflow: a DAG of jobs plus the files, user data, resource requirements and schedulers they
 *   reference. Every per-workflow document carries the workflow key in the store.
 * - job: one command line. Its `status` follows the state machine in `graph/engine`.
 * - blocker: a job that must finish before another may start (a `blocks` edge blocker → blocked).
 * - run: one start or restart of a workflow; `run_id` counts them (the first run is 1).
 * - compute node: one worker process on one host; it claims jobs and runs them.
 * - allocation: a block of compute that a scheduler granted (a Slurm job, an EC2 instance).
 * - scheduler: a config document (local, Slurm, AWS) that describes how to get compute nodes.
 * - claim: a worker taking ready jobs that fit its resources (`prepare_jobs_for_submission`).
 * - lease: a claimed or running job belongs to the compute node that claimed it while that node's
 *   heartbeat is fresh; when the heartbeat lapses the server gives the job back.
 *
 * Field names follow the Torc 0.6.4 OpenAPI document so Torc clients work against Weft.
 */
import { z } from 'zod';

/** Job statuses (Torc 0.6.4 names). */
export const JOB_STATUSES = [
  'uninitialized',
  'blocked',
  'ready',
  'scheduled',
  'submitted_pending',
  'submitted',
  'done',
  'canceled',
  'terminated',
  'disabled',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const JobStatusSchema = z.enum(JOB_STATUSES);

/** Statuses in which a job has finished (counts as complete for its dependants at run time). */
export const COMPLETE_STATUSES: readonly JobStatus[] = ['done', 'canceled', 'terminated'];
/** Statuses that let a workflow be complete. */
export const WORKFLOW_COMPLETE_STATUSES: readonly JobStatus[] = ['done', 'canceled', 'terminated', 'disabled'];

export const SORT_METHODS = ['gpus_runtime_memory', 'gpus_memory_runtime', 'none'] as const;
export type SortMethod = (typeof SORT_METHODS)[number];

/** Store metadata carried by every document. */
export const MetaSchema = z.object({
  _key: z.string().min(1).optional(),
  _id: z.string().optional(),
  _rev: z.string().optional(),
});

const meta = MetaSchema.shape;
const str = () => z.string();
const int = () => z.number().int();

export const WorkflowSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  user: str().default(''),
  description: str().nullish(),
  timestamp: str().optional(),
  is_archived: z.boolean().default(false),
});

export const ComputeNodeResourceStatsSchema = z.looseObject({
  cpu: z.boolean().default(true),
  disk: z.boolean().default(false),
  memory: z.boolean().default(true),
  network: z.boolean().default(false),
  process: z.boolean().default(false),
  include_child_processes: z.boolean().default(true),
  recurse_child_processes: z.boolean().default(false),
  monitor_type: z.enum(['aggregation', 'periodic']).default('aggregation'),
  make_plots: z.boolean().default(true),
  interval: z.number().positive().default(10),
});

export const WorkflowConfigSchema = z.looseObject({
  ...meta,
  workflow_startup_script: str().nullish(),
  workflow_completion_script: str().nullish(),
  worker_startup_script: str().nullish(),
  compute_node_resource_stats: ComputeNodeResourceStatsSchema.optional(),
  compute_node_expiration_buffer_seconds: z.number().min(0).optional(),
  compute_node_wait_for_new_jobs_seconds: z.number().min(0).optional(),
  compute_node_ignore_workflow_completion: z.boolean().optional(),
  compute_node_wait_for_healthy_database_minutes: z.number().min(0).optional(),
  prepare_jobs_sort_method: z.enum(SORT_METHODS).optional(),
});

export const AutoTuneStatusSchema = z.looseObject({
  enabled: z.boolean().default(false),
  job_keys: z.array(str()).default([]),
});

export const WorkflowStatusSchema = z.looseObject({
  ...meta,
  is_canceled: z.boolean(),
  run_id: int().min(0),
  auto_tune_status: AutoTuneStatusSchema.optional(),
  has_detected_need_to_run_completion_script: z.boolean().default(false),
  scheduled_compute_node_ids: z.array(str()).optional(),
});

export const ComputeNodeScheduleParamsSchema = z.looseObject({
  num_jobs: int().min(1),
  scheduler_id: str().min(1),
  max_parallel_jobs: int().min(1).nullish(),
  start_one_worker_per_node: z.boolean().default(false),
});

export const JobInternalSchema = z.looseObject({
  memory_bytes: int().min(0).default(0),
  num_cpus: int().min(0).default(0),
  num_gpus: int().min(0).default(0),
  num_nodes: int().min(0).default(0),
  runtime_seconds: z.number().min(0).default(0),
  scheduler_config_id: str().default(''),
  hash: z.union([int(), str()]).default(0),
});

/** A job as stored. Relationship fields (blocked_by, input_files, ...) become edges on insert. */
export const JobSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  command: str().min(1),
  invocation_script: str().nullish(),
  status: JobStatusSchema.optional(),
  schedule_compute_nodes: ComputeNodeScheduleParamsSchema.nullish(),
  cancel_on_blocking_job_failure: z.boolean().default(true),
  supports_termination: z.boolean().default(false),
  blocked_by: z.array(str()).optional(),
  input_files: z.array(str()).optional(),
  output_files: z.array(str()).optional(),
  input_user_data: z.array(str()).optional(),
  output_user_data: z.array(str()).optional(),
  resource_requirements: str().nullish(),
  scheduler: str().nullish(),
  internal: JobInternalSchema.optional(),
});

export const FileSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  path: str().min(1),
  st_mtime: z.number().nullish(),
});

export const UserDataSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  is_ephemeral: z.boolean().default(false),
  data: z.record(z.string(), z.unknown()).nullish(),
});

export const ResourceRequirementsSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  num_cpus: int().min(0).default(1),
  num_gpus: int().min(0).default(0),
  num_nodes: int().min(1).default(1),
  memory: str().default('1m'),
  runtime: str().default('P0DT1M'),
});

export const ResultSchema = z.looseObject({
  ...meta,
  job_key: str(),
  run_id: int(),
  return_code: int(),
  exec_time_minutes: z.number(),
  completion_time: str(),
  status: z.enum(['done', 'canceled', 'terminated']),
});

export const WorkerResourcesSchema = z.looseObject({
  num_cpus: int().min(0),
  memory_gb: z.number().min(0),
  num_gpus: int().min(0).default(0),
  num_nodes: int().min(1).default(1),
  time_limit: str().nullish(),
  scheduler_config_id: str().nullish(),
});

export const ComputeNodeSchema = z.looseObject({
  ...meta,
  hostname: str(),
  pid: int(),
  start_time: str(),
  duration_seconds: z.number().nullish(),
  is_active: z.boolean().default(true),
  resources: WorkerResourcesSchema,
  scheduler: z.record(z.string(), z.unknown()).nullish(),
  last_heartbeat: z.number().optional(),
});

export const ComputeNodeStatsEntrySchema = z.looseObject({
  resource_type: str(),
  average: z.record(z.string(), z.unknown()),
  minimum: z.record(z.string(), z.unknown()),
  maximum: z.record(z.string(), z.unknown()),
  num_samples: int(),
  job_key: str().optional(),
});

export const ComputeNodeStatsSchema = z.looseObject({
  ...meta,
  hostname: str(),
  stats: z.array(ComputeNodeStatsEntrySchema).default([]),
  timestamp: str(),
});

export const JobProcessStatsSchema = z.looseObject({
  ...meta,
  job_key: str(),
  run_id: int(),
  avg_cpu_percent: z.number(),
  max_cpu_percent: z.number(),
  avg_rss: z.number(),
  max_rss: z.number(),
  num_samples: int(),
  timestamp: str(),
});

export const LocalSchedulerSchema = z.looseObject({
  ...meta,
  name: str().default('default'),
  memory: str().nullish(),
  num_cpus: int().min(1).nullish(),
});

export const SlurmSchedulerSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  account: str().min(1),
  nodes: int().min(1),
  partition: str().nullish(),
  qos: str().nullish().default('normal'),
  walltime: str().nullish(),
  gres: str().nullish(),
  mem: str().nullish(),
  tmp: str().nullish(),
  ntasks_per_node: int().min(1).nullish(),
  extra: str().nullish(),
});

export const AwsSchedulerSchema = z.looseObject({
  ...meta,
  name: str().optional(),
  region: str().nullish(),
  instance_type: str().nullish(),
  ami_id: str().nullish(),
  key_name: str().nullish(),
  subnet_id: str().nullish(),
  security_group_ids: z.array(str()).nullish(),
  max_instances: int().min(1).nullish(),
  tags: z.record(z.string(), z.string()).nullish(),
  market: z.enum(['spot', 'on-demand']).nullish(),
  /** How to run weft on the instance (split like shell words, never run through a shell). Default `weft`. */
  weft_command: str().nullish(),
  /** Shell lines the user data runs before the worker (the user's own script, e.g. installing weft). */
  setup_script: str().nullish(),
  /** IAM instance profile name or ARN given to the instances. */
  iam_instance_profile: str().nullish(),
});

export const ScheduledComputeNodeSchema = z.looseObject({
  ...meta,
  scheduler_config_id: str().min(1),
  scheduler_id: str().nullish(),
  status: str().min(1),
});

export const EventSchema = z.looseObject({
  ...meta,
  category: str().optional(),
  type: str().optional(),
  message: str().optional(),
  timestamp: z.number().optional(),
});

export const EdgeSchema = z.looseObject({
  ...meta,
  _from: str().min(1),
  _to: str().min(1),
  data: z.record(z.string(), z.unknown()).nullish(),
});

export type Edge = z.infer<typeof EdgeSchema>;

/** A collection that lives inside one workflow. `kind` decides how deletes cascade. */
export interface CollectionInfo {
  readonly name: string;
  readonly kind: 'vertex' | 'document';
  readonly schema: z.ZodType;
  /** Equality filters the list endpoint accepts (besides `_key`), with their types. */
  readonly filters: Readonly<Record<string, 'string' | 'boolean' | 'integer'>>;
  /** Human name used in messages and the OpenAPI document. */
  readonly title: string;
}

/** Per-workflow vertex and document collections, in the order `collection_names` reports them. */
export const WORKFLOW_COLLECTIONS = {
  events: { name: 'events', kind: 'document', schema: EventSchema, filters: { category: 'string' }, title: 'event' },
  scheduled_compute_nodes: {
    name: 'scheduled_compute_nodes', kind: 'document', schema: ScheduledComputeNodeSchema,
    filters: { scheduler_id: 'string', scheduler_config_id: 'string', status: 'string' }, title: 'scheduled compute node',
  },
  aws_schedulers: { name: 'aws_schedulers', kind: 'vertex', schema: AwsSchedulerSchema, filters: { name: 'string' }, title: 'AWS scheduler' },
  compute_nodes: {
    name: 'compute_nodes', kind: 'vertex', schema: ComputeNodeSchema,
    filters: { hostname: 'string', is_active: 'boolean' }, title: 'compute node',
  },
  compute_node_stats: { name: 'compute_node_stats', kind: 'vertex', schema: ComputeNodeStatsSchema, filters: { hostname: 'string' }, title: 'compute node statistics' },
  files: { name: 'files', kind: 'vertex', schema: FileSchema, filters: { name: 'string', path: 'string' }, title: 'file' },
  job_process_stats: { name: 'job_process_stats', kind: 'vertex', schema: JobProcessStatsSchema, filters: { job_key: 'string', run_id: 'integer' }, title: 'job process statistics' },
  jobs: {
    name: 'jobs', kind: 'vertex', schema: JobSchema,
    filters: { name: 'string', command: 'string', status: 'string', cancel_on_blocking_job_failure: 'boolean', supports_termination: 'boolean' },
    title: 'job',
  },
  local_schedulers: { name: 'local_schedulers', kind: 'vertex', schema: LocalSchedulerSchema, filters: { memory: 'string', name: 'string', num_cpus: 'integer' }, title: 'local scheduler' },
  resource_requirements: {
    name: 'resource_requirements', kind: 'vertex', schema: ResourceRequirementsSchema,
    filters: { name: 'string', memory: 'string', runtime: 'string', num_cpus: 'integer', num_gpus: 'integer', num_nodes: 'integer' }, title: 'resource requirements',
  },
  results: { name: 'results', kind: 'vertex', schema: ResultSchema, filters: { job_key: 'string', status: 'string', run_id: 'integer', return_code: 'integer' }, title: 'result' },
  slurm_schedulers: {
    name: 'slurm_schedulers', kind: 'vertex', schema: SlurmSchedulerSchema,
    filters: { name: 'string', account: 'string', gres: 'string', mem: 'string', nodes: 'integer', partition: 'string', qos: 'string', tmp: 'string', walltime: 'string' },
    title: 'Slurm scheduler',
  },
  user_data: { name: 'user_data', kind: 'vertex', schema: UserDataSchema, filters: { name: 'string', is_ephemeral: 'boolean' }, title: 'user data' },
} as const satisfies Record<string, CollectionInfo>;

export type WorkflowCollectionName = keyof typeof WORKFLOW_COLLECTIONS;
export const WORKFLOW_COLLECTION_NAMES = Object.keys(WORKFLOW_COLLECTIONS) as WorkflowCollectionName[];

/** Edge collections: name → the collections their ends live in. */
export const EDGE_COLLECTIONS = {
  blocks: { from: ['jobs'], to: ['jobs'] },
  needs: { from: ['jobs'], to: ['files'] },
  produces: { from: ['jobs'], to: ['files'] },
  stores: { from: ['jobs'], to: ['user_data'] },
  consumes: { from: ['jobs'], to: ['user_data'] },
  requires: { from: ['jobs'], to: ['resource_requirements'] },
  scheduled_bys: { from: ['jobs'], to: ['local_schedulers', 'slurm_schedulers', 'aws_schedulers'] },
  executed: { from: ['compute_nodes'], to: ['jobs'] },
  returned: { from: ['jobs'], to: ['results'] },
  node_used: { from: ['compute_nodes'], to: ['compute_node_stats'] },
  process_used: { from: ['jobs'], to: ['job_process_stats'] },
} as const satisfies Record<string, { from: readonly string[]; to: readonly string[] }>;

export type EdgeCollectionName = keyof typeof EDGE_COLLECTIONS;
export const EDGE_COLLECTION_NAMES = Object.keys(EDGE_COLLECTIONS) as EdgeCollectionName[];

/** Collections that are not inside a workflow (keyed by the workflow key for config and status). */
export const GLOBAL_COLLECTIONS = ['workflows', 'workflow_configs', 'workflow_statuses'] as const;
export type GlobalCollectionName = (typeof GLOBAL_COLLECTIONS)[number];

export type CollectionName = WorkflowCollectionName | EdgeCollectionName | GlobalCollectionName;
export const ALL_COLLECTION_NAMES: readonly CollectionName[] = [
  ...GLOBAL_COLLECTIONS,
  ...WORKFLOW_COLLECTION_NAMES,
  ...EDGE_COLLECTION_NAMES,
];

export function isEdgeCollection(name: string): name is EdgeCollectionName {
  return Object.prototype.hasOwnProperty.call(EDGE_COLLECTIONS, name);
}
export function isWorkflowCollection(name: string): name is WorkflowCollectionName {
  return Object.prototype.hasOwnProperty.call(WORKFLOW_COLLECTIONS, name);
}

/** Default resource requirements of a job that has no `requires` edge. */
export const DEFAULT_RESOURCE_REQUIREMENTS = {
  name: 'default',
  num_cpus: 1,
  num_gpus: 0,
  num_nodes: 1,
  memory: '1m',
  runtime: 'P0DT1M',
} as const;

/** Strip a full id (`jobs/123`, `jobs__9/123`) down to its key. */
export function keyOf(keyOrId: string): string {
  const i = keyOrId.lastIndexOf('/');
  return i === -1 ? keyOrId : keyOrId.slice(i + 1);
}

/** The collection named by a full id, or undefined for a bare key. `jobs__9/1` → `jobs`. */
export function collectionOf(id: string): string | undefined {
  const i = id.lastIndexOf('/');
  if (i === -1) return undefined;
  const base = id.slice(0, i);
  const j = base.indexOf('__');
  return j === -1 ? base : base.slice(0, j);
}

export type Workflow = z.infer<typeof WorkflowSchema>;
export type WorkflowConfig = z.infer<typeof WorkflowConfigSchema>;
export type WorkflowStatusDoc = z.infer<typeof WorkflowStatusSchema>;
export type Job = z.infer<typeof JobSchema>;
export type FileDoc = z.infer<typeof FileSchema>;
export type UserData = z.infer<typeof UserDataSchema>;
export type ResourceRequirements = z.infer<typeof ResourceRequirementsSchema>;
export type Result = z.infer<typeof ResultSchema>;

/** The body of complete_job (a Result as a worker reports it); shared by the engine and the client. */
export interface ResultBody {
  job_key: string;
  run_id: number;
  return_code: number;
  exec_time_minutes: number;
  completion_time: string;
  status: string;
  [field: string]: unknown;
}
export type WorkerResources = z.infer<typeof WorkerResourcesSchema>;
export type ComputeNode = z.infer<typeof ComputeNodeSchema>;
export type JobProcessStats = z.infer<typeof JobProcessStatsSchema>;
export type SlurmScheduler = z.infer<typeof SlurmSchedulerSchema>;
export type AwsScheduler = z.infer<typeof AwsSchedulerSchema>;
export type ScheduledComputeNode = z.infer<typeof ScheduledComputeNodeSchema>;
