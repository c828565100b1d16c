/**
 * The HTTP transport of the Weft API: one `request` over node:http(s) with keep-alive connections
 * (a quarter of fetch's CPU per call, which matters to a worker making three calls per job), JSON
 * in and out, typed errors, and
 * retries with exponential backoff (and jitter) while the server cannot be reached or answers
 * 502/503/504, for up to `retryMinutes` in all. A 4xx is never retried: it is the caller's fault.
 */

import http from 'node:http';
import https from 'node:https';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON unless `rawBody` is given. */
  body?: unknown;
  /** Sent as is with `contentType` (a JSON5 or YAML spec, say). */
  rawBody?: string;
  contentType?: string;
  /** Override the client's retry window for this call (0: no retries). */
  retryMinutes?: number;
  /** Abort the whole call (all attempts) when this signal fires. */
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** How long to keep retrying while the server is unreachable (default 10 minutes). */
  retryMinutes?: number;
  /** Per-attempt timeout (default 120 s). */
  timeoutMs?: number;
  /** Called before each retry (for logs). */
  onRetry?: (info: { attempt: number; delayMs: number; error: Error; method: string; path: string }) => void;
}

/** The server answered with an error status. `code` is the catalogue code when the body has one. */
export class WeftApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly body: unknown;
  constructor(status: number, body: unknown, message: string) {
    super(message);
    this.name = 'WeftApiError';
    this.status = status;
    this.body = body;
    const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

/** The server could not be reached within the retry window. */
export class WeftUnreachableError extends Error {
  readonly code = 'SERVER_UNREACHABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeftUnreachableError';
  }
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64 });

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      },
      { once: true },
    );
  });
}

export class HttpTransport {
  readonly baseUrl: string;
  private readonly retryMinutes: number;
  private readonly timeoutMs: number;
  private readonly onRetry: ClientOptions['onRetry'];

  constructor(baseUrl: string, options: ClientOptions = {}) {
    let u: URL;
    try {
      u = new URL(baseUrl);
    } catch {
      throw new Error(`Not a URL: ${JSON.stringify(baseUrl)} (expected something like http://127.0.0.1:8080/torc-service)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`The server URL must be http or https, got ${u.protocol}`);
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.retryMinutes = options.retryMinutes ?? 10;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.onRetry = options.onRetry;
  }

  async request<T = unknown>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + (path.startsWith('/') ? path : `/${path}`));
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (opts.rawBody !== undefined) {
      body = opts.rawBody;
      headers['content-type'] = opts.contentType ?? 'application/json';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const deadline = Date.now() + (opts.retryMinutes ?? this.retryMinutes) * 60_000;
    for (let attempt = 0; ; attempt++) {
      let res: { status: number; statusText: string; text: string };
      try {
        res = await this.send(url, method, headers, body, opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        const error = new WeftUnreachableError(`Cannot reach the Weft server at ${this.baseUrl}: ${describeFetchError(err)}`, { cause: err });
        await this.backoff(attempt, deadline, error, method, path, opts.signal);
        continue;
      }
      const text = res.text;
      let parsed: unknown = text;
      try {
        parsed = text === '' ? null : JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
      if (res.status >= 200 && res.status < 300) return parsed as T;
      const msg = (parsed as { error?: { message?: string } } | null)?.error?.message ?? (typeof parsed === 'string' && parsed !== '' ? parsed.slice(0, 300) : res.statusText);
      const error = new WeftApiError(res.status, parsed, `${method} ${path}: ${res.status} ${msg}`);
      if (!RETRY_STATUSES.has(res.status)) throw error;
      await this.backoff(attempt, deadline, error, method, path, opts.signal);
    }
  }

  /** One attempt: the status and the whole body, or a rejection for a transport failure or timeout. */
  private send(url: URL, method: string, headers: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<{ status: number; statusText: string; text: string }> {
    const mod = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? httpsAgent : httpAgent;
    if (body !== undefined) headers = { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        return;
      }
      const req = mod.request(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          cleanup();
          resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
      });
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('the request timed out'), { name: 'TimeoutError' })), this.timeoutMs);
      const onAbort = (): void => {
        req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      function cleanup(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
      function fail(err: Error): void {
        cleanup();
        reject(err);
      }
      req.on('error', fail);
      req.end(body);
    });
  }

  private async backoff(attempt: number, deadline: number, error: Error, method: string, path: string, signal?: AbortSignal): Promise<void> {
    const base = Math.min(30_000, 200 * 2 ** attempt);
    const delayMs = Math.round(base * (0.5 + Math.random() / 2));
    if (Date.now() + delayMs > deadline) throw error;
    this.onRetry?.({ attempt: attempt + 1, delayMs, error, method, path });
    await sleep(delayMs, signal);
  }
}

function describeFetchError(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  if (typeof e?.code === 'string') return `${e.code}${e.message ? ` (${e.message})` : ''}`;
  if (e?.cause?.code) return `${e.cause.code}${e.cause.message ? ` (${e.cause.message})` : ''}`;
  if ((err as Error)?.name === 'TimeoutError') return 'the request timed out';
  return e?.message ?? String(err);
}
