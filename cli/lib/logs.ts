/**
 * Where a job's stdout and stderr are: files the worker writes in its output directory, named by
 * workflow, job and run.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface JobLogs {
  stdout?: string;
  stderr?: string;
}

/** Default output directory of the worker and of `weft run`. */
export const DEFAULT_OUTPUT_DIR = 'weft-output';

/** The candidate paths of a job's logs for one run (the worker's naming). */
export function jobLogPaths(outputDir: string, workflow: string, jobKey: string, runId: number): { stdout: string; stderr: string } {
  const base = join(outputDir, 'job-stdio', `${workflow}_${jobKey}_${runId}`);
  return { stdout: `${base}.o`, stderr: `${base}.e` };
}

/** The log files of a job that exist. */
export function findJobLogs(outputDir: string, workflow: string, jobKey: string, runId: number): JobLogs {
  const p = jobLogPaths(outputDir, workflow, jobKey, runId);
  const out: JobLogs = {};
  if (existsSync(p.stdout)) out.stdout = p.stdout;
  if (existsSync(p.stderr)) out.stderr = p.stderr;
  return out;
}
