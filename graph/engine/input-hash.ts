/**
 * The job input hash: what a job's result depends on, so a restart reruns only jobs whose inputs
 * changed.
 *
 * Covered: `command`, `invocation_script`, every needed file's `path` and `st_mtime` (via `needs`
 * edges) and every consumed user data's `name` and `data` (via `consumes` edges). Content only,
 * never `_rev`s: rewriting a document with the same content (a worker re-recording the same mtime,
 * a generic PUT) must not force a rerun. Not covered, on purpose: the job's name, flags, resource
 * requirements, scheduler and outputs, which do not change what the job computes.
 *
 * The hash is SHA-256 (hex) over a canonical JSON: object keys sorted at every depth, and each
 * list sorted by the canonical JSON of its entries, so neither edge order nor key order in `data`
 * changes it.
 */
import { createHash } from 'node:crypto';
import type { Doc, GraphStore } from '../store/port.js';
import { bulkNeighbors } from './views-bulk.js';

/** JSON with object keys sorted at every depth (undefined fields dropped, as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

function sortedCanonical(entries: readonly unknown[]): string[] {
  return entries.map(canonicalJson).sort();
}

/** The parts of a job's inputs that the hash covers, as plain data (exported for tests and dry runs). */
export interface JobInputs {
  command: unknown;
  invocation_script: unknown;
  files: { path: unknown; st_mtime: unknown }[];
  user_data: { name: unknown; data: unknown }[];
}

/** Read the inputs of one job from the store. */
export async function readJobInputs(store: GraphStore, workflow: string, job: Doc): Promise<JobInputs> {
  const [needs, consumes] = await Promise.all([
    store.neighbors('needs', workflow, [job._id], 'outbound'),
    store.neighbors('consumes', workflow, [job._id], 'outbound'),
  ]);
  const files = needs
    .filter((n) => n.vertex !== null)
    .map((n) => ({ path: n.vertex?.path ?? null, st_mtime: n.vertex?.st_mtime ?? null }));
  const userData = consumes
    .filter((n) => n.vertex !== null)
    .map((n) => ({ name: n.vertex?.name ?? null, data: n.vertex?.data ?? null }));
  return {
    command: job.command ?? null,
    invocation_script: job.invocation_script ?? null,
    files,
    user_data: userData,
  };
}

/** SHA-256 hex of the canonical form of a job's inputs. Pure; the same inputs give the same hash. */
export function hashJobInputs(inputs: JobInputs): string {
  const canonical = canonicalJson({
    command: inputs.command,
    invocation_script: inputs.invocation_script,
    files: sortedCanonical(inputs.files),
    user_data: sortedCanonical(inputs.user_data),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** Options of the bulk hash. */
export interface InputHashOptions {
  /** Hash these user data documents (ids) as if their `data` were `{}` (a dry run of clearing ephemeral data). */
  clearedUserData?: ReadonlySet<string>;
}

const CHUNK = 50_000;

/**
 * Input hashes of many jobs of one workflow, read in bulk (a few queries per 50,000 jobs).
 * Returns job `_id` → hash.
 */
export async function computeJobInputHashes(store: GraphStore, workflow: string, jobs: readonly Doc[], opts: InputHashOptions = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < jobs.length; i += CHUNK) {
    const part = jobs.slice(i, i + CHUNK);
    const ids = part.map((j) => j._id);
    const [needs, consumes] = await Promise.all([
      bulkNeighbors(store, workflow, 'needs', ids, 'outbound'),
      bulkNeighbors(store, workflow, 'consumes', ids, 'outbound'),
    ]);
    const inputs = new Map<string, JobInputs>(
      part.map((j) => [j._id, { command: j.command ?? null, invocation_script: j.invocation_script ?? null, files: [], user_data: [] }]),
    );
    for (const n of needs) {
      if (n.vertex) inputs.get(n.edge._from)?.files.push({ path: n.vertex.path ?? null, st_mtime: n.vertex.st_mtime ?? null });
    }
    for (const n of consumes) {
      if (!n.vertex) continue;
      const data = opts.clearedUserData?.has(n.vertex._id) ? {} : (n.vertex.data ?? null);
      inputs.get(n.edge._from)?.user_data.push({ name: n.vertex.name ?? null, data });
    }
    for (const [id, inp] of inputs) out.set(id, hashJobInputs(inp));
  }
  return out;
}

/**
 * The input hash of `job` (a stored job document of `workflow`): SHA-256 hex over its command,
 * invocation script, needed files (path, st_mtime) and consumed user data (name, data).
 * Pass the transaction handle when called inside a transaction.
 */
export async function computeJobInputHash(store: GraphStore, workflow: string, job: Doc): Promise<string> {
  return hashJobInputs(await readJobInputs(store, workflow, job));
}
