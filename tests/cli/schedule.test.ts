/**
 * weft schedule through the real binary, a real server and real workers: the first tick runs the
 * workflow, a tick with nothing changed touches nothing (same run id, no new result), a tick after
 * an input file changed reruns the job that reads it. Bad expressions are one line and exit 1.
 */
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, ensureBuilt, runWeft } from '../helpers/cli.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';

describe('weft schedule', () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'weft-schedule-'));
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tick = async (wf: string): Promise<{ outcome: string; run_id?: number; jobs?: number }> => {
    const r = await runWeft(['schedule', wf, '--cron', '* * * * * *', '--max-ticks', '1', '--json', '--url', server.baseUrl, '--output-dir', join(dir, 'out')], {
      cwd: dir,
      env: cleanEnv(),
      timeoutMs: 90_000,
    });
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
    return JSON.parse(lines[lines.length - 1]!) as { outcome: string; run_id?: number; jobs?: number };
  };

  it('runs at the first tick, does nothing when nothing changed, reruns after an input changed', async () => {
    const input = join(dir, 'in.txt');
    const output = join(dir, 'out.txt');
    writeFileSync(input, 'one\n');
    const spec = {
      name: 'nightly',
      files: [
        { name: 'in', path: input },
        { name: 'out', path: output },
      ],
      jobs: [{ name: 'copy', command: `cat '${input}' > '${output}'`, input_files: ['in'], output_files: ['out'] }],
    };
    const created = await api(server.baseUrl, 'POST', '/workflow_specifications', spec);
    expect(created.status).toBe(200);
    const wf = created.body._key as string;
    const results = async () => ((await api(server.baseUrl, 'GET', `/workflows/${wf}/results`)).body.items as unknown[]).length;

    const first = await tick(wf);
    expect(first.outcome).toBe('rerun');
    expect(readFileSync(output, 'utf8')).toBe('one\n');
    expect(await results()).toBe(1);

    const second = await tick(wf);
    expect(second.outcome).toBe('unchanged');
    expect(await results()).toBe(1);

    writeFileSync(input, 'two\n');
    const later = new Date(Date.now() + 5_000);
    utimesSync(input, later, later);
    const third = await tick(wf);
    expect(third.outcome).toBe('rerun');
    expect(third.run_id).toBeGreaterThan(first.run_id ?? 0);
    expect(readFileSync(output, 'utf8')).toBe('two\n');
    expect(await results()).toBe(2);
  }, 300_000);

  it('a bad expression or an unknown workflow is one line and exit 1', async () => {
    const bad = await runWeft(['schedule', '1', '--cron', 'every night', '--url', server.baseUrl], { env: cleanEnv() });
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--cron: not a valid cron expression/);
    const unknown = await runWeft(['schedule', '999999', '--cron', '0 2 * * *', '--url', server.baseUrl], { env: cleanEnv() });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/999999/);
  });
});
