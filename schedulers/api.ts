/**
 * The few API calls the scheduler glue makes (allocation records, scheduler documents, jobs,
 * events), over one generic request function, so it runs against any server through the HTTP
 * contract and the transport (WeftClient) is passed in.
 */
import { WeftError } from '../graph/errors.js';
import { keyOf, type ScheduledComputeNode } from '../graph/model.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Query = Record<string, string | number | boolean | undefined>;

/** One HTTP call relative to the server's base URL (`/workflows/...`); resolves with the JSON body. */
export type RequestFn = <T = unknown>(method: HttpMethod, path: string, options?: { query?: Query; body?: unknown }) => Promise<T>;

/** A stored document as the API returns it. */
export type ApiDoc = { _key: string; _id: string; _rev: string } & Record<string, unknown>;

/** A scheduled_compute_nodes document as Weft writes it (extra fields are kept by the loose schema). */
export type AllocationRecord = ScheduledComputeNode &
  ApiDoc & {
    /** local | slurm | aws */
    scheduler_type?: string;
    /** Allocation name given to the scheduler. */
    name?: string;
    /** Seconds since the epoch. */
    submitted_at?: number;
    /** How the allocation was reached, so another process can follow or cancel it. */
    via?: AllocationVia;
    /** Why it was submitted or canceled (the reconcile loop writes it). */
    reason?: string;
  };

/** Where an allocation's scheduler is reached. */
export interface AllocationVia {
  /** Slurm over SSH: the login node. */
  ssh?: { host: string; port: number; username: string };
  /** Environment for the scheduler's commands (e.g. SLURM_CONF). */
  env?: Record<string, string>;
  /** Slurm work directory on the cluster. */
  work_dir?: string;
  /** EC2 endpoint override. */
  endpoint?: string;
  /** EC2 region used. */
  region?: string;
}

/** Record statuses: uninitialized (being submitted) → pending (queued) → active → complete | canceled | failed. */
export const ALLOCATION_RECORD_OPEN = ['uninitialized', 'pending', 'active'] as const;

export interface ListPage {
  items?: ApiDoc[];
  has_more?: boolean;
}

const PAGE = 1000;
const SCHEDULER_COLLECTIONS: readonly string[] = ['local_schedulers', 'slurm_schedulers', 'aws_schedulers'];
const KEY_RE = /^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$/;

/** Typed helpers over a RequestFn for one workflow. */
export class SchedulerApi {
  constructor(
    readonly request: RequestFn,
    readonly workflow: string,
  ) {}

  private path(collection: string, key?: string): string {
    const wf = encodeURIComponent(this.workflow);
    return key === undefined ? `/workflows/${wf}/${collection}` : `/workflows/${wf}/${collection}/${encodeURIComponent(keyOf(key))}`;
  }

  /** Every document of a collection that matches the filters (all pages). */
  async listAll<T extends ApiDoc = ApiDoc>(collection: string, filters: Query = {}): Promise<T[]> {
    const out: T[] = [];
    for (let skip = 0; ; skip += PAGE) {
      const page = await this.request<ListPage>('GET', this.path(collection), { query: { ...filters, skip, limit: PAGE } });
      const items = (page.items ?? []) as T[];
      out.push(...items);
      if (!page.has_more || items.length === 0) return out;
    }
  }

  get<T extends ApiDoc = ApiDoc>(collection: string, key: string): Promise<T> {
    return this.request<T>('GET', this.path(collection, key));
  }

  post<T extends ApiDoc = ApiDoc>(collection: string, body: Record<string, unknown>): Promise<T> {
    return this.request<T>('POST', this.path(collection), { body });
  }

  put<T extends ApiDoc = ApiDoc>(collection: string, key: string, body: Record<string, unknown>): Promise<T> {
    return this.request<T>('PUT', this.path(collection, key), { body });
  }

  async remove(collection: string, key: string): Promise<void> {
    await this.request('DELETE', this.path(collection, key));
  }

  /** The workflow status document (is_canceled, run_id). */
  workflowStatus(): Promise<{ is_canceled: boolean; run_id: number } & Record<string, unknown>> {
    return this.request('GET', `/workflows/${encodeURIComponent(this.workflow)}/status`);
  }

  isComplete(): Promise<{ is_complete: boolean } & Record<string, unknown>> {
    return this.request('GET', `/workflows/${encodeURIComponent(this.workflow)}/is_complete`);
  }

  prepareJobsForScheduling(): Promise<{ schedulers: { scheduler_id: string; num_jobs: number; max_parallel_jobs?: number | null; start_one_worker_per_node?: boolean }[] }> {
    return this.request('POST', `/workflows/${encodeURIComponent(this.workflow)}/prepare_jobs_for_scheduling`, { body: {} });
  }

  /** Post an event (category, type, message and any data). Never throws: events are best effort. */
  async event(type: string, message: string, data: Record<string, unknown> = {}): Promise<void> {
    await this.post('events', { category: 'scheduler', type, message, ...data }).catch(() => undefined);
  }

  /**
   * A scheduler document from `<collection>/<key>`, a bare key, or a name. Throws
   * DOCUMENT_NOT_FOUND naming what was looked for.
   */
  async scheduler(collection: string, ref: string): Promise<ApiDoc> {
    // `<collection>/<key>` only when the prefix is a scheduler collection and the key a plain key:
    // a name may hold slashes (and anything else), and then it is looked up as a name.
    const prefix = ref.includes('/') ? ref.slice(0, ref.lastIndexOf('/')) : undefined;
    const asId = prefix === undefined || SCHEDULER_COLLECTIONS.includes(prefix);
    const c = prefix !== undefined && asId ? prefix : collection;
    const k = keyOf(ref);
    const byKey = asId && KEY_RE.test(k)
      ? await this.get(c, k).catch((err: unknown) => {
          if ((err as { status?: number }).status === 404) return null;
          throw err;
        })
      : null;
    if (byKey) return byKey;
    const byName = await this.listAll(c, { name: ref });
    if (byName.length === 1 && byName[0]) return byName[0];
    if (byName.length > 1) {
      throw new WeftError('VALIDATION_FAILED', `${byName.length} ${c} documents are named ${JSON.stringify(ref)} in workflow ${this.workflow}: give the key instead`, {
        details: [{ path: ['scheduler'], message: 'ambiguous name', rule: 'unique' }],
      });
    }
    throw new WeftError('DOCUMENT_NOT_FOUND', `No ${c} document with key or name ${JSON.stringify(ref)} in workflow ${this.workflow}`, { extra: { collection: c, key: ref } });
  }
}

/** An HTTP error answer from the server: `status` and the server's error body. */
export class ApiHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
    this.name = 'ApiHttpError';
  }
}

/**
 * A RequestFn over fetch for `baseUrl` (e.g. `http://127.0.0.1:8080/torc-service`), for callers
 * that hold no WeftClient (the `weft hpc` commands inside allocations). Connection failures are
 * retried `retries` times with exponential backoff and jitter; HTTP errors are not retried.
 */
export function createFetchRequest(baseUrl: string, options: { retries?: number; timeoutMs?: number } = {}): RequestFn {
  const base = baseUrl.replace(/\/+$/, '');
  const retries = options.retries ?? 5;
  const timeoutMs = options.timeoutMs ?? 60_000;
  return async <T>(method: HttpMethod, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> => {
    const url = new URL(base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: opts.body === undefined ? {} : { 'content-type': 'application/json' },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        if (attempt >= retries) throw new WeftError('STORE_UNAVAILABLE', `Cannot reach the Weft server at ${base}: ${(err as Error).message}`, { cause: err });
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2)));
        continue;
      }
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
      if (!res.ok) {
        const msg = (body as { error?: { message?: string } } | null)?.error?.message ?? (typeof body === 'string' ? body.slice(0, 500) : res.statusText);
        throw new ApiHttpError(res.status, body, `${method} ${path} failed with ${res.status}: ${msg}`);
      }
      return body as T;
    }
  };
}
