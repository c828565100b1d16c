/**
 * The live view of a run: job counts by status, polled from the server, drawn as a progress bar
 * on stderr (only on a terminal; nothing is drawn into logs or pipes).
 */
import cliProgress from 'cli-progress';
import { JOB_STATUSES, WORKFLOW_COMPLETE_STATUSES } from '../../graph/model.js';
import type { WeftClient } from '../../client/index.js';
import { countJobs } from './workflow-ops.js';

export type StatusCounts = Record<string, number>;

/** Jobs per status (every status, zeros included). */
export async function statusCounts(client: WeftClient, workflow: string): Promise<StatusCounts> {
  const counts = await Promise.all(JOB_STATUSES.map((s) => countJobs(client, workflow, s)));
  return Object.fromEntries(JOB_STATUSES.map((s, i) => [s, counts[i]!]));
}

/** Jobs that have finished (done, canceled, terminated, disabled). */
export function finishedOf(c: StatusCounts): number {
  return WORKFLOW_COMPLETE_STATUSES.reduce((n, s) => n + (c[s] ?? 0), 0);
}

/** Jobs that workers hold. */
export function inFlightOf(c: StatusCounts): number {
  return (c['submitted'] ?? 0) + (c['submitted_pending'] ?? 0);
}

export interface ProgressView {
  update(c: StatusCounts): void;
  stop(): void;
}

/** Seconds between progress lines when stderr is not a terminal (a CI log, a file). */
export const PROGRESS_LINE_SECONDS = 30;

/**
 * A bar on stderr when it is a terminal and `enabled`. When stderr is a file or a pipe, a plain
 * line every PROGRESS_LINE_SECONDS while the counts move, so a long run in a CI log shows life
 * without filling it with bar redraws.
 */
export function createProgressView(total: number, enabled: boolean): ProgressView {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  if (!process.stderr.isTTY) {
    let lastLine = Date.now();
    let lastText = '';
    return {
      update: (c) => {
        const text = `${finishedOf(c)}/${total} jobs finished (running ${inFlightOf(c)}, ready ${(c['ready'] ?? 0) + (c['scheduled'] ?? 0)}, blocked ${(c['blocked'] ?? 0) + (c['uninitialized'] ?? 0)})`;
        if (text === lastText || Date.now() - lastLine < PROGRESS_LINE_SECONDS * 1000) return;
        lastLine = Date.now();
        lastText = text;
        process.stderr.write(`weft: ${text}\n`);
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {value}/{total} jobs finished | running {running} | ready {ready} | blocked {blocked} | done {done} | canceled {canceled} | {duration_formatted}',
      hideCursor: true,
      stream: process.stderr,
      barsize: 24,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { running: 0, ready: 0, blocked: 0, done: 0, canceled: 0 });
  return {
    update: (c) =>
      bar.update(finishedOf(c), {
        running: inFlightOf(c),
        ready: (c['ready'] ?? 0) + (c['scheduled'] ?? 0),
        blocked: (c['blocked'] ?? 0) + (c['uninitialized'] ?? 0),
        done: c['done'] ?? 0,
        canceled: (c['canceled'] ?? 0) + (c['terminated'] ?? 0),
      }),
    stop: () => bar.stop(),
  };
}
