/**
 * Engine events: what the engine writes when it changes state, always with the store handle of
 * the transaction that makes the change, so an event exists exactly when its change committed.
 *
 * Shape: `{category, type, message, timestamp (ms since the epoch), job_key?, job_name?,
 * node_name?, ...context}` (Torc 0.6.4 section 9). Bulk changes (initialize, cancel, reset)
 * write one event per operation with counts and keys, not one per job.
 */
import type { Doc, GraphStore } from '../store/port.js';

export interface EngineEvent {
  category: string;
  type: string;
  message: string;
  job_key?: string;
  job_name?: string;
  node_name?: string;
  [context: string]: unknown;
}

/** Write events (stamped now) with the transaction handle `tx`. */
export async function writeEvents(tx: GraphStore, workflow: string, events: readonly EngineEvent[]): Promise<void> {
  if (events.length === 0) return;
  const now = Date.now();
  const docs = events.map((e) => ({ ...e, timestamp: now }));
  if (docs.length === 1) await tx.insert('events', workflow, docs[0]!);
  else await tx.insertMany('events', workflow, docs);
}

/** A job event: `{category: 'job', type, job_key, job_name, message, ...extra}`. */
export function jobEvent(type: string, job: Doc, message: string, extra: Record<string, unknown> = {}): EngineEvent {
  const ev: EngineEvent = { category: 'job', type, job_key: job._key, message, ...extra };
  if (typeof job.name === 'string') ev.job_name = job.name;
  return ev;
}

/** A workflow event: `{category: 'workflow', type, key, message, ...extra}`. */
export function workflowEvent(workflow: string, type: string, message: string, extra: Record<string, unknown> = {}): EngineEvent {
  return { category: 'workflow', type, key: workflow, message, ...extra };
}

/** At most this many keys are listed in one event; the count is always given. */
export const EVENT_KEYS_LIMIT = 1000;

/** `{[name]: keys (at most EVENT_KEYS_LIMIT), [num_name]: count}`, so a bulk change keeps its event small. */
export function keyList(name: string, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { [name]: keys.length > EVENT_KEYS_LIMIT ? keys.slice(0, EVENT_KEYS_LIMIT) : [...keys] };
  if (keys.length > EVENT_KEYS_LIMIT) out[`${name}_truncated`] = true;
  return out;
}
