/**
 * The job `internal` cache: what claims read without following edges. Set by initialize_jobs
 * (resources, scheduler, blocker count), by claims (compute_node_key, claimed_at) and by
 * start/complete (compute_node_key, hash).
 *
 * | field                   | meaning                                                        |
 * |-------------------------|----------------------------------------------------------------|
 * | memory_bytes, num_cpus, num_gpus, num_nodes, runtime_seconds | the job's resource requirements (or the defaults) |
 * | scheduler_config_id     | `_id` of the job's scheduled_bys target, or ''                 |
 * | num_unfinished_blockers | blockers not finished yet (readiness by counting)              |
 * | hash                    | input hash recorded when the job started                       |
 * | compute_node_key        | the compute node that holds (claimed or started) the job       |
 * | claimed_at              | epoch ms of the claim                                          |
 */
import { WeftError, type ErrorDetail } from '../errors.js';
import { DEFAULT_RESOURCE_REQUIREMENTS } from '../model.js';
import type { Doc } from '../store/port.js';
import { durationToSeconds, memoryToBytes } from './views-units.js';

export interface JobResources {
  memory_bytes: number;
  num_cpus: number;
  num_gpus: number;
  num_nodes: number;
  runtime_seconds: number;
}

/** The internal object of a job document (a copy; {} when it has none). */
export function internalOf(job: Doc): Record<string, unknown> {
  const v = job.internal;
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {};
}

function intField(rr: Record<string, unknown>, field: 'num_cpus' | 'num_gpus' | 'num_nodes', problems: string[]): number {
  const v = rr[field] ?? DEFAULT_RESOURCE_REQUIREMENTS[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    problems.push(`field ${field}: ${JSON.stringify(v)} is not a non-negative integer`);
    return 0;
  }
  return v;
}

/**
 * Resources of a resource_requirements document (null = the defaults). Throws nothing: returns
 * the problems (each naming the field) so the caller can name the jobs.
 */
export function resourcesOf(rr: Record<string, unknown> | null): { resources: JobResources; problems: string[] } {
  const src = rr ?? DEFAULT_RESOURCE_REQUIREMENTS;
  const problems: string[] = [];
  const num_cpus = intField(src, 'num_cpus', problems);
  const num_gpus = intField(src, 'num_gpus', problems);
  const num_nodes = intField(src, 'num_nodes', problems);
  let memory_bytes = 0;
  let runtime_seconds = 0;
  const memory = src.memory ?? DEFAULT_RESOURCE_REQUIREMENTS.memory;
  const runtime = src.runtime ?? DEFAULT_RESOURCE_REQUIREMENTS.runtime;
  try {
    if (typeof memory !== 'string') throw new WeftError('VALIDATION_FAILED', `invalid memory ${JSON.stringify(memory)}: expected a string such as 10g`);
    memory_bytes = memoryToBytes(memory);
  } catch (e) {
    problems.push(`field memory: ${(e as Error).message}`);
  }
  try {
    if (typeof runtime !== 'string') throw new WeftError('VALIDATION_FAILED', `invalid duration ${JSON.stringify(runtime)}: expected an ISO 8601 string such as PT30M`);
    runtime_seconds = durationToSeconds(runtime);
  } catch (e) {
    problems.push(`field runtime: ${(e as Error).message}`);
  }
  return { resources: { memory_bytes, num_cpus, num_gpus, num_nodes, runtime_seconds }, problems };
}

/** One malformed stored requirement, as an error detail naming the job and the field. */
export function requirementProblem(job: Doc, rr: Doc, problem: string): ErrorDetail {
  const jobName = typeof job.name === 'string' ? `'${job.name}' ` : '';
  const rrName = typeof rr.name === 'string' ? `'${rr.name}' ` : '';
  return {
    path: ['jobs', job._key, 'resource_requirements', rr._key],
    message: `job ${jobName}(${job._id}): resource requirements ${rrName}(${rr._id}) ${problem}`,
    rule: 'resource_requirements',
  };
}
