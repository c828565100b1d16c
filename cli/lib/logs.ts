/**
 * Where a job's stdout and stderr are: files the worker writes in its output directory, named by
 * workflow, job and run (worker/job-process.ts stdioPaths).
 */
import { existsSync } from 'node:fs';
import { stdioPaths } from '../../worker/job-process.js';

export interface JobLogs {
  stdout?: string;
  stderr?: string;
}

/** Default output directory of the worker, and so of `weft run` and `weft jobs logs`. */
export const DEFAULT_OUTPUT_DIR = 'output';

/** The paths of a job's logs for one run (whether or not they exist). */
export function jobLogPaths(outputDir: string, workflow: string, jobKey: string, runId: number): { stdout: string; stderr: string } {
  return stdioPaths(outputDir, workflow, jobKey, runId);
}

/** The log files of a job that exist. */
export function findJobLogs(outputDir: string, workflow: string, jobKey: string, runId: number): JobLogs {
  const p = jobLogPaths(outputDir, workflow, jobKey, runId);
  const out: JobLogs = {};
  if (existsSync(p.stdout)) out.stdout = p.stdout;
  if (existsSync(p.stderr)) out.stderr = p.stderr;
  return out;
}
