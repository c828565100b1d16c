/**
 * Run every benchmark, one after another, each in its own Node process (so one benchmark's
 * memory and JIT state do not colour the next, and a failure is reported without stopping the
 * rest). Each prints its own figures and its ratio to a baseline measured in the same run.
 *
 *   npm run build && npm run bench                 # the default sizes
 *   node dist/bench/run-all.js --with-1m           # also create + initialize 1,000,000 jobs (minutes)
 *
 * Exit code: 1 when any benchmark failed to run (a missed goal is printed, not an error).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

const RUNS: { file: string; args: string[] }[] = [
  { file: 'engine-lifecycle.js', args: [] },
  { file: 'engine-create.js', args: [] },
  { file: 'engine-claims.js', args: [] },
  { file: 'views.js', args: [] },
  { file: 'worker.js', args: [] },
  { file: 'promotion.js', args: [] },
];
if (process.argv.includes('--with-1m')) RUNS.push({ file: 'engine-create.js', args: ['--jobs', '1000000'] });

let failed = 0;
for (const run of RUNS) {
  const path = join(here, run.file);
  if (!existsSync(path)) {
    console.log(`-- ${run.file}: not built, skipped`);
    continue;
  }
  console.log(`\n-- node dist/bench/${run.file} ${run.args.join(' ')}`.trimEnd());
  const t0 = performance.now();
  const res = spawnSync(process.execPath, [path, ...run.args], { stdio: 'inherit' });
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  if (res.status !== 0) {
    failed++;
    console.log(`-- ${run.file} FAILED (exit ${res.status ?? res.signal}) after ${seconds} s`);
  } else {
    console.log(`-- ${run.file} done in ${seconds} s`);
  }
}
process.exit(failed > 0 ? 1 : 0);
