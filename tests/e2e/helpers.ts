/**
 * Helpers of the end-to-end suites: a build of dist/ that is current with every source folder the
 * binary runs (the worker and the schedulers too), a scratch directory holding a copy of
 * examples/ (the examples use paths relative to where weft runs, and their outputs go under
 * output/ there, never in the checkout), and JSON parsing of `--json` output with context.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT, WEFT_BIN, type RunResult } from '../helpers/cli.js';

const SOURCE_DIRS = ['cli', 'server', 'graph', 'worker', 'client', 'schedulers'];

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/** Build dist/ unless it is newer than every source file the CLI runs. */
export function ensureBuiltAll(): void {
  const built = existsSync(WEFT_BIN) ? statSync(WEFT_BIN).mtimeMs : 0;
  const src = Math.max(...SOURCE_DIRS.map((d) => newest(join(ROOT, d))));
  if (built >= src) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    // tsc exits non-zero on type errors elsewhere but still emits; only a missing binary is fatal.
    if (!existsSync(WEFT_BIN)) throw err;
  }
}

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
