/**
 * The typed HTTP client of the Weft API (the contract of ../shared/seeds, field names of the Torc
 * OpenAPI document), used by the worker, the CLI, the schedulers, tests and users' scripts.
 *
 *   const c = new WeftClient('http://127.0.0.1:8080/torc-service');
 *   const wf = await c.createWorkflowFromSpec(spec);
 *   await c.startWorkflow(wf._key);
 *
 * Every call goes through `request`, which retries with backoff while the server is unreachable
 * (see client/http.ts). Families of calls that only one program needs may live beside this file
 * and take a WeftClient.
 */
import type { ResultBody } from '../graph/model.js';
import { HttpTransport, type ClientOptions, type HttpMethod, type Query, type RequestOptions } from './http.js';

export { HttpTransport, WeftApiError, WeftUnreachableError, type ClientOptions, type HttpMethod, type Query, type RequestOptions } from './http.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080/torc-service';

/** The server URL from a flag, then WEFT_URL, then the default. */
export function resolveUrl(flag?: string): string {
  return flag ?? process.env['WEFT_URL'] ?? DEFAULT_URL;
}

/** A stored document as the API returns it. */
export type Doc = { _key: string; _id: string; _rev: string } & Record<string, unknown>;

export interface ListResponse<T = Doc> {
  items: T[];
  skip: number;
  max_limit: number;
  count: number;
  total_count: number;
  has_more: boolean;
}

/** Resources a worker offers when it asks for jobs (WorkerResources in the OpenAPI document). */
export interface WorkerResources {
  num_cpus: number;
  memory_gb: number;
  num_gpus?: number;
  num_nodes?: number;
  /** ISO-8601 duration of the worker's remaining life, or null for unlimited. */
  time_limit?: string | null;
  scheduler_config_id?: string;
}

export type SortMethod = 'gpus_runtime_memory' | 'gpus_memory_runtime' | 'none';

/** The answer of is_complete. */
export interface IsCompleteResponse {
  is_complete: boolean;
  is_canceled: boolean;
  /** True for exactly one caller: the one that should run the workflow completion script. */
  needs_to_run_completion_script?: boolean;
}

/** The body of complete_job (the model's shape). */
export type { ResultBody };

/** How a job ended (complete_job's {status}). */
export type CompleteStatus = 'done' | 'canceled' | 'terminated';

/** One completion of complete_jobs: complete_job's path parameters and its Result body. */
export interface JobCompletion {
  job_key: string;
  status: CompleteStatus;
  /** The job's `_rev` as the caller last read it (the start's answer). */
  rev: string;
  run_id: number;
  compute_node_key: string;
  result: ResultBody;
}

/** One start of complete_jobs: start_job's path parameters, for a job the caller claimed (submitted_pending). */
export interface JobStart {
  job_key: string;
  /** The job's `_rev` as the claim answered it. */
  rev: string;
  run_id: number;
  compute_node_key: string;
}

/** The claim complete_jobs makes after its completions (prepare_jobs_for_submission's parameters). */
export interface CompleteJobsClaim {
  compute_node_key: string;
  resources: WorkerResources;
  limit?: number;
  sort_method?: SortMethod;
  /** Also start the claimed jobs with this run_id: they come back `submitted`. */
  start_run_id?: number;
}

/** The error object of an error response (`{error: ApiErrorObject}`). */
export interface ApiErrorObject {
  code: string;
  message: string;
  details: { path: (string | number)[]; message: string; rule?: string }[];
  retryable: boolean;
  [extra: string]: unknown;
}

/** One completion's answer, in request order: the job, or what complete_job would have answered. */
export type CompleteJobsItem = { job_key: string; status: 200; job: Doc; error?: undefined } | { job_key: string; status: number; error: ApiErrorObject; job?: undefined };

export interface CompleteJobsResponse {
  /** Present when starts were given: one per start, in request order (start_job's answer or error). */
  started?: CompleteJobsItem[];
  items: CompleteJobsItem[];
  /** Present when a claim was asked for. */
  claimed?: { jobs: Doc[]; reason: string };
  /** Why the claim was refused after the completions were applied (rare: the run changed meanwhile). */
  claim_error?: ApiErrorObject;
}

const PAGE = 10_000;

function enc(s: string): string {
  return encodeURIComponent(s.includes('/') ? s.slice(s.lastIndexOf('/') + 1) : s);
}

export class WeftClient {
  readonly http: HttpTransport;

  constructor(baseUrl: string = resolveUrl(), options: ClientOptions = {}) {
    this.http = new HttpTransport(baseUrl, options);
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  request<T = unknown>(method: HttpMethod, path: string, opts?: RequestOptions): Promise<T> {
    return this.http.request<T>(method, path, opts);
  }

  /** The `(method, path, {query, body})` function the scheduler glue takes. */
  asRequestFn(): <T = unknown>(method: HttpMethod, path: string, options?: { query?: Query; body?: unknown }) => Promise<T> {
    return (method, path, options) => this.http.request(method, path, options);
  }

  /** Every item of a list endpoint (all pages). */
  async listAll<T = Doc>(path: string, query: Query = {}): Promise<T[]> {
    const out: T[] = [];
    for (let skip = 0; ; ) {
      const page = await this.request<ListResponse<T>>('GET', path, { query: { ...query, skip, limit: PAGE } });
      out.push(...page.items);
      skip += page.items.length;
      if (!page.has_more || page.items.length === 0) return out;
    }
  }

  // ---- service -------------------------------------------------------------------------------
  ping(opts?: RequestOptions): Promise<unknown> {
    return this.request('GET', '/ping', opts);
  }
  version(): Promise<unknown> {
    return this.request('GET', '/version');
  }

  // ---- workflows -----------------------------------------------------------------------------
  /** Create a workflow from a spec: an object (sent as JSON) or text with its content type. */
  createWorkflowFromSpec(spec: unknown, text?: { text: string; contentType: string }): Promise<Doc> {
    return text
      ? this.request<Doc>('POST', '/workflow_specifications', { rawBody: text.text, contentType: text.contentType })
      : this.request<Doc>('POST', '/workflow_specifications', { body: spec });
  }
  getWorkflowSpec(key: string): Promise<Record<string, unknown>> {
    return this.request('GET', `/workflow_specifications/${enc(key)}`);
  }
  listWorkflows(query: Query = {}): Promise<Doc[]> {
    return this.listAll('/workflows', query);
  }
  getWorkflow(key: string): Promise<Doc> {
    return this.request('GET', `/workflows/${enc(key)}`);
  }
  deleteWorkflow(key: string): Promise<unknown> {
    return this.request('DELETE', `/workflows/${enc(key)}`);
  }
  getWorkflowStatus(key: string, req: RequestOptions = {}): Promise<Doc & { run_id: number; is_canceled: boolean }> {
    return this.request('GET', `/workflows/${enc(key)}/status`, req);
  }
  putWorkflowStatus(key: string, status: Record<string, unknown>): Promise<Doc> {
    return this.request('PUT', `/workflows/${enc(key)}/status`, { body: status });
  }
  getWorkflowConfig(key: string): Promise<Doc> {
    return this.request('GET', `/workflows/${enc(key)}/config`);
  }
  initializeJobs(key: string, opts: { only_uninitialized?: boolean; clear_ephemeral_user_data?: boolean } = {}): Promise<unknown> {
    return this.request('POST', `/workflows/${enc(key)}/initialize_jobs`, { query: opts });
  }
  isComplete(key: string, req: RequestOptions = {}): Promise<IsCompleteResponse> {
    return this.request('GET', `/workflows/${enc(key)}/is_complete`, req);
  }
  cancelWorkflow(key: string): Promise<unknown> {
    return this.request('PUT', `/workflows/${enc(key)}/cancel`);
  }
  resetStatus(key: string): Promise<unknown> {
    return this.request('POST', `/workflows/${enc(key)}/reset_status`);
  }
  resetJobStatus(key: string, opts: { failed_only?: boolean } = {}): Promise<unknown> {
    return this.request('POST', `/workflows/${enc(key)}/reset_job_status`, { query: opts });
  }
  processChangedJobInputs(key: string, opts: { dry_run?: boolean } = {}): Promise<{ reinitialized_jobs: string[] }> {
    return this.request('POST', `/workflows/${enc(key)}/process_changed_job_inputs`, { query: opts });
  }
  latestEventTimestamp(key: string): Promise<{ timestamp: number }> {
    return this.request('GET', `/workflows/${enc(key)}/latest_event_timestamp`);
  }
  eventsAfter(key: string, timestamp: number, query: Query = {}): Promise<ListResponse> {
    return this.request('GET', `/workflows/${enc(key)}/events_after_timestamp/${timestamp}`, { query });
  }

  // ---- documents of a workflow ---------------------------------------------------------------
  list(workflow: string, collection: string, query: Query = {}): Promise<Doc[]> {
    return this.listAll(`/workflows/${enc(workflow)}/${collection}`, query);
  }
  get(workflow: string, collection: string, key: string, req: RequestOptions = {}): Promise<Doc> {
    return this.request('GET', `/workflows/${enc(workflow)}/${collection}/${enc(key)}`, req);
  }
  add(workflow: string, collection: string, doc: Record<string, unknown>, req: RequestOptions = {}): Promise<Doc> {
    return this.request('POST', `/workflows/${enc(workflow)}/${collection}`, { ...req, body: doc });
  }
  put(workflow: string, collection: string, key: string, doc: Record<string, unknown>, req: RequestOptions = {}): Promise<Doc> {
    return this.request('PUT', `/workflows/${enc(workflow)}/${collection}/${enc(key)}`, { ...req, body: doc });
  }
  remove(workflow: string, collection: string, key: string): Promise<unknown> {
    return this.request('DELETE', `/workflows/${enc(workflow)}/${collection}/${enc(key)}`);
  }

  // ---- the worker's calls --------------------------------------------------------------------
  // Each takes optional RequestOptions last (an AbortSignal, a retry window of its own).
  /**
   * Claim ready jobs that fit `resources`; `compute_node_key` makes this node their holder.
   * `start_run_id` (with `compute_node_key`) also starts them in the same transaction: they come
   * back `submitted` with their current `_rev`, and need no start_job.
   */
  prepareJobsForSubmission(
    workflow: string,
    resources: WorkerResources,
    opts: { sort_method?: SortMethod; limit?: number; compute_node_key?: string; start_run_id?: number } = {},
    req: RequestOptions = {},
  ): Promise<{ jobs: Doc[]; reason?: string }> {
    return this.request('POST', `/workflows/${enc(workflow)}/prepare_jobs_for_submission`, { ...req, body: resources, query: opts });
  }
  /** Claim up to `limit` ready jobs whatever their requirements (`start_run_id`: and start them). */
  prepareNextJobsForSubmission(workflow: string, limit = 1, opts: { compute_node_key?: string; start_run_id?: number } = {}, req: RequestOptions = {}): Promise<{ jobs: Doc[] }> {
    return this.request('POST', `/workflows/${enc(workflow)}/prepare_next_jobs_for_submission`, { ...req, query: { limit, ...opts } });
  }
  /**
   * Report many job ends in one request (at most 1,000), each with complete_job's rules and
   * answer (items in order: 200 with the job, or the 4xx complete_job would have given, such as
   * 409 for a stale rev); then, with `claim`, claim (and with start_run_id start) the next jobs,
   * including those the completions just unblocked. A retried identical batch answers 200 items.
   */
  /**
   * complete_jobs (Weft extension): `starts` (jobs claimed and already launched) first, then the
   * completions, then the claim; see the OpenAPI document.
   */
  completeJobs(workflow: string, completions: readonly JobCompletion[], claim?: CompleteJobsClaim, req: RequestOptions = {}, starts?: readonly JobStart[]): Promise<CompleteJobsResponse> {
    return this.request('POST', `/workflows/${enc(workflow)}/complete_jobs`, { ...req, body: { ...(starts ? { starts } : {}), completions, ...(claim ? { claim } : {}) } });
  }
  prepareJobsForScheduling(workflow: string): Promise<{ schedulers: Record<string, unknown>[] }> {
    return this.request('POST', `/workflows/${enc(workflow)}/prepare_jobs_for_scheduling`);
  }
  startJob(workflow: string, job: string, rev: string, runId: number, computeNode: string, req: RequestOptions = {}): Promise<Doc> {
    return this.request('PUT', `/workflows/${enc(workflow)}/jobs/${enc(job)}/start_job/${encodeURIComponent(rev)}/${runId}/${enc(computeNode)}`, req);
  }
  /** Report a job's end. The server treats a retried identical report as already done (200). */
  completeJob(workflow: string, job: string, status: string, rev: string, runId: number, computeNode: string, result: ResultBody, req: RequestOptions = {}): Promise<Doc> {
    return this.request('POST', `/workflows/${enc(workflow)}/jobs/${enc(job)}/complete_job/${status}/${encodeURIComponent(rev)}/${runId}/${enc(computeNode)}`, { ...req, body: result });
  }
  manageStatusChange(workflow: string, job: string, status: string, rev: string, runId: number, req: RequestOptions = {}): Promise<Doc> {
    return this.request('PUT', `/workflows/${enc(workflow)}/jobs/${enc(job)}/manage_status_change/${status}/${encodeURIComponent(rev)}/${runId}`, req);
  }
  heartbeat(workflow: string, computeNode: string, req: RequestOptions = {}): Promise<Doc> {
    return this.request('POST', `/workflows/${enc(workflow)}/compute_nodes/${enc(computeNode)}/heartbeat`, req);
  }
  /** Link a vertex to another with an edge of `name` (`_from`/`_to` are ids). */
  addEdge(workflow: string, name: string, from: string, to: string, extra: Record<string, unknown> = {}, req: RequestOptions = {}): Promise<Doc> {
    return this.request('POST', `/workflows/${enc(workflow)}/edges/${name}`, { ...req, body: { ...extra, _from: from, _to: to } });
  }
}
