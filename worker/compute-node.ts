/**
 * This worker's compute node document: registered at start, heartbeated (the server's lease loop
 * gives back the jobs of a node whose heartbeat lapsed), deactivated with its duration at exit.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { WeftApiError, type Doc, type WeftClient } from '../client/index.js';

export class ComputeNodeRecord {
  key = '';
  private timer: NodeJS.Timeout | undefined;
  /** Retry window (minutes) for the last writes; short once the worker is being stopped. */
  finalRetryMinutes = 1;

  constructor(
    private readonly client: WeftClient,
    private readonly workflow: string,
    private readonly log: Logger,
  ) {}

  /** POST the node: hostname, pid, start time, the resources it offers, its scheduler info. */
  async register(resources: Record<string, unknown>, scheduler: Record<string, unknown>): Promise<string> {
    const now = Date.now();
    const node = await this.client.add(this.workflow, 'compute_nodes', {
      hostname: hostname(),
      pid: process.pid,
      start_time: new Date(now).toISOString(),
      is_active: true,
      last_heartbeat: now / 1000,
      resources,
      scheduler,
    });
    this.key = node._key;
    return this.key;
  }

  /** Heartbeat every `periodMs`; a failed beat is logged, the next one tries again. */
  startHeartbeat(periodMs: number): void {
    this.timer = setInterval(() => void this.beat(), periodMs);
  }

  stopHeartbeat(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** is_active false and duration_seconds since start_time. */
  async deactivate(): Promise<void> {
    const started = Date.parse(String((await this.get())?.['start_time'] ?? '')) || Date.now();
    await this.update({ is_active: false, duration_seconds: Math.max(0, (Date.now() - started) / 1000) });
  }

  private async beat(): Promise<void> {
    try {
      await this.client.heartbeat(this.workflow, this.key, { retryMinutes: 0 });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private async get(): Promise<Doc | null> {
    try {
      return await this.client.get(this.workflow, 'compute_nodes', this.key, { retryMinutes: this.finalRetryMinutes });
    } catch {
      return null;
    }
  }

  /** PUT fields onto the node, re-reading its `_rev` when a heartbeat got there first. */
  private async update(fields: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const node = await this.get();
      if (!node) break;
      try {
        await this.client.put(this.workflow, 'compute_nodes', this.key, { ...node, ...fields }, { retryMinutes: this.finalRetryMinutes });
        return;
      } catch (err) {
        if (err instanceof WeftApiError && err.status === 409) continue;
        this.log.warn({ err: (err as Error).message }, 'could not update the compute node');
        return;
      }
    }
    this.log.warn('could not update the compute node');
  }
}

/** Which files each job produces (job `_id` → files), read once: a running workflow's graph does not change. */
export async function loadDeclaredOutputs(client: WeftClient, workflow: string): Promise<Map<string, { key: string; path: string }[]>> {
  const out = new Map<string, { key: string; path: string }[]>();
  const edges = await client.list(workflow, 'edges/produces');
  if (edges.length === 0) return out;
  const files = new Map((await client.list(workflow, 'files')).map((f) => [f._id, f]));
  for (const e of edges) {
    const f = files.get(String(e['_to']));
    if (!f) continue;
    const list = out.get(String(e['_from'])) ?? [];
    list.push({ key: f._key, path: String(f['path']) });
    out.set(String(e['_from']), list);
  }
  return out;
}
