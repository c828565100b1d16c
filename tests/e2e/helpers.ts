/**
 * Helpers of the end-to-end suites (dist/ is built by ensureBuilt, tests/helpers/cli.ts): a
 * scratch directory holding a copy of examples/ (the examples use paths relative to where weft
 * runs, and their outputs go under output/ there, never in the checkout), and JSON parsing of
 * `--json` output with context.
 */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT, type RunResult } from '../helpers/cli.js';

/** A scratch directory with a copy of examples/ in it (the cwd for `weft run examples/X`). */
export function scratchWithExamples(prefix = 'weft-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(join(ROOT, 'examples'), join(dir, 'examples'), { recursive: true });
  return dir;
}

/** stdout of a `--json` run, parsed; the failure message shows stderr. */
export function jsonOf<T = Record<string, unknown>>(res: RunResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${String(res.code)}):\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  }
}

/** Assert a failure: non-zero exit, exactly one line on stderr starting `weft: `, no stack. */
export function expectOneLineError(res: RunResult, pattern: RegExp): void {
  expect(res.code, `stdout: ${res.stdout}\nstderr: ${res.stderr}`).not.toBe(0);
  const lines = res.stderr.trim().split('\n');
  expect(lines, res.stderr).toHaveLength(1);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  expect(lines[0]).toMatch(/^weft: /);
  expect(lines[0]).toMatch(pattern);
}
