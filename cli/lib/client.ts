/**
 * How the user commands reach the server: the `--url` / `--json` options every command takes, a
 * WeftClient with a short retry window (an unreachable server fails in seconds, not the worker's
 * ten minutes), and API errors turned into one readable line.
 */
import type { Command } from 'commander';
import { DEFAULT_URL, WeftApiError, WeftClient, resolveUrl, type Doc } from '../../client/index.js';

/** How long a CLI call keeps retrying an unreachable server, in seconds. */
export const CLI_RETRY_SECONDS = 4;

/** Options every command that talks to a server accepts. */
export interface ConnectionOptions {
  url?: string;
  json?: boolean;
}

/** Add `-u/--url` and `--json` to a command. */
export function withConnection(cmd: Command): Command {
  return cmd
    .option('-u, --url <url>', `server URL including the base path (env WEFT_URL, default ${DEFAULT_URL})`)
    .option('--json', 'print JSON (for scripts) instead of tables');
}

/** A CLI error: one line for the user, with the catalogue code when it has one. */
export class CliError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
  }
}

/**
 * The API error as one line: the server's own message without the `METHOD /path: status` prefix,
 * plus the first few details it named (a bad spec lists every fault).
 */
export function describeApiError(err: WeftApiError): string {
  const body = err.body as { error?: { message?: string; details?: { path?: unknown[]; message?: string }[] } } | null;
  const message = body?.error?.message ?? err.message;
  const details = (body?.error?.details ?? [])
    .filter((d) => d.message !== undefined && d.message !== '' && !message.includes(d.message))
    .map((d) => `${Array.isArray(d.path) && d.path.length > 0 ? `${d.path.join('.')}: ` : ''}${d.message ?? ''}`);
  const shown = details.slice(0, 5).join('; ');
  const more = details.length > 5 ? ` (and ${details.length - 5} more)` : '';
  return shown ? `${message} (${shown}${more})` : message;
}

/** Rethrow API errors as CliErrors with a readable line; anything else unchanged. */
export function friendly(err: unknown): never {
  if (err instanceof WeftApiError) throw new CliError(describeApiError(err), err.code, { cause: err });
  throw err;
}

/** The client for a command's options (flag, then WEFT_URL, then the default). */
export function clientFor(opts: ConnectionOptions): WeftClient {
  return new WeftClient(resolveUrl(opts.url), { retryMinutes: CLI_RETRY_SECONDS / 60, timeoutMs: 60_000 });
}

/**
 * Fetch a workflow, or fail with one line naming the key and the server. Every command that takes
 * a workflow key calls this first so a typo is `No workflow "x" at URL`, not a 404 from a sub-path.
 */
export async function requireWorkflow(client: WeftClient, key: string): Promise<Doc> {
  try {
    return await client.getWorkflow(key);
  } catch (err) {
    if (err instanceof WeftApiError && err.status === 404) {
      throw new CliError(`No workflow with key ${JSON.stringify(key)} at ${client.baseUrl} (weft workflows list shows them)`, 'WORKFLOW_NOT_FOUND', { cause: err });
    }
    return friendly(err);
  }
}

/** The client for a command's options and the workflow `key` names (see requireWorkflow). */
export async function connectWorkflow(opts: ConnectionOptions, key: string): Promise<{ client: WeftClient; workflow: Doc }> {
  const client = clientFor(opts);
  return { client, workflow: await requireWorkflow(client, key) };
}

/** Run a command body with API errors made readable. */
export async function apiCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    return friendly(err);
  }
}

/** A job by key, id or name, or one line saying it is not in the workflow. */
export async function requireJob(client: WeftClient, workflow: string, job: string): Promise<Doc> {
  try {
    return await client.get(workflow, 'jobs', job);
  } catch (err) {
    if (!(err instanceof WeftApiError) || err.status !== 404) return friendly(err);
  }
  // Not a key: people think in job names.
  const byName = await apiCall(() => client.list(workflow, 'jobs', { name: job }));
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) throw new CliError(`${byName.length} jobs are named ${JSON.stringify(job)} in workflow ${workflow}; give the job key`, 'VALIDATION_FAILED');
  throw new CliError(`No job ${JSON.stringify(job)} (key or name) in workflow ${workflow}`, 'DOCUMENT_NOT_FOUND');
}

/** Parse a whole-number option, or fail with a line naming it. */
export function intOption(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) throw new CliError(`--${name} must be a whole number${min > 0 ? ` >= ${min}` : ''}, got ${JSON.stringify(value)}`, 'VALIDATION_FAILED');
  return Number(value);
}
