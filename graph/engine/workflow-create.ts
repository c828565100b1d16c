/**
 * Workflow creation: the workflow document with its config and status documents, in one
 * transaction, so a workflow never exists without them.
 */
import { WeftError } from '../errors.js';
import { WorkflowSchema } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';

/** The config a new workflow gets (Torc 0.6.4 defaults). */
export const DEFAULT_WORKFLOW_CONFIG = Object.freeze({
  compute_node_resource_stats: Object.freeze({
    cpu: true,
    disk: false,
    memory: true,
    network: false,
    process: false,
    include_child_processes: true,
    recurse_child_processes: false,
    monitor_type: 'aggregation',
    make_plots: true,
    interval: 10,
  }),
  compute_node_expiration_buffer_seconds: 120,
  compute_node_wait_for_new_jobs_seconds: 0,
  compute_node_ignore_workflow_completion: false,
  compute_node_wait_for_healthy_database_minutes: 20,
  prepare_jobs_sort_method: 'gpus_runtime_memory',
});

/** The status a new workflow gets: run 0, not canceled. */
export const INITIAL_WORKFLOW_STATUS = Object.freeze({
  run_id: 0,
  is_canceled: false,
  scheduled_compute_node_ids: Object.freeze([]),
  auto_tune_status: Object.freeze({ enabled: false, job_keys: Object.freeze([]) }),
  has_detected_need_to_run_completion_script: false,
});

export interface CreateWorkflowOptions {
  /** Fields merged over DEFAULT_WORKFLOW_CONFIG (a spec's `config`). */
  config?: Record<string, unknown>;
}

/**
 * Create a workflow with its config and status (`_key` of both = the workflow key).
 * Runs inside the caller's transaction when given a transaction handle, else opens one.
 * Throws VALIDATION_FAILED (bad body) or DUPLICATE_KEY (a given `_key` is taken).
 */
export async function createWorkflow(store: GraphStore, body: Record<string, unknown>, opts: CreateWorkflowOptions = {}): Promise<Doc> {
  const parsed = WorkflowSchema.safeParse(body);
  if (!parsed.success) {
    throw new WeftError('VALIDATION_FAILED', `Invalid workflow: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, {
      details: parsed.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message, rule: i.code })),
    });
  }
  const { _id: _ignoredId, _rev: _ignoredRev, ...doc } = parsed.data;
  if (doc.timestamp === undefined || doc.timestamp === '') doc.timestamp = new Date().toISOString();
  return store.transaction(async (tx) => {
    const wf = await tx.insert('workflows', null, doc);
    await tx.insert('workflow_configs', null, { ...structuredClone(DEFAULT_WORKFLOW_CONFIG), ...(opts.config ?? {}), _key: wf._key });
    await tx.insert('workflow_statuses', null, { ...structuredClone(INITIAL_WORKFLOW_STATUS), _key: wf._key });
    return wf;
  });
}
