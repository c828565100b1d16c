/** `weft worker` bad input: one clear line on stderr and a non-zero exit, no stack trace. */
import { afterAll, describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { killStrayWorkers, startCliWorker } from './helpers.js';

const srv = testServerForSuite();
afterAll(killStrayWorkers);

async function fails(args: string[], message: RegExp): Promise<void> {
  const w = startCliWorker(args, { WEFT_LOG_LEVEL: 'silent' });
  const exit = await w.exited;
  expect(exit.code).not.toBe(0);
  const lines = w.stderr().trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^weft: /);
  expect(lines[0]).toMatch(message);
  expect(w.stderr()).not.toMatch(/\n\s+at /);
}

describe('weft worker: bad input', () => {
  it('names what is wrong', async () => {
    await fails(['--url', srv.baseUrl, '--workflow', 'nope'], /Workflow nope not found/);
    await fails(['--url', srv.baseUrl], /--workflow is required/);
    await fails(['--url', srv.baseUrl, '--workflow', '1', '--num-cpus', '2.5'], /--num-cpus must be an integer/);
    await fails(['--url', srv.baseUrl, '--workflow', '1', '--time-limit', '2h'], /invalid duration "2h"/);
    await fails(['--url', srv.baseUrl, '--workflow', '1', '--max-parallel-jobs', '0'], /--max-parallel-jobs/);
  });
});
