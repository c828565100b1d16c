/**
 * Bad input to the user commands through the real binary: a missing or malformed spec file, an
 * unreachable server, a wrong workflow or job key, a bad spec, a bad option. Each is one line on
 * stderr, a non-zero exit, no stack trace, and nothing left running.
 */
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runWeft } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { expectOneLineError } from '../e2e/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-cli-errors-'));
let server: TestServer;
let closedUrl: string;

beforeAll(async () => {
  ensureBuilt();
  server = await startTestServer();
  // A port that nothing listens on: bind one, then let it go.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  closedUrl = `http://127.0.0.1:${port}/torc-service`;
}, 180_000);
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('weft user commands: bad input', () => {
  it('a missing spec file', async () => {
    expectOneLineError(await runWeft(['run', join(dir, 'missing.yaml'), '--db', join(dir, 'a.db')]), /Spec file not found: .*missing\.yaml/);
    expectOneLineError(await runWeft(['workflows', 'create', join(dir, 'missing.json'), '--url', server.baseUrl]), /Spec file not found/);
  });

  it('a malformed spec file names the file and, for YAML, the line', async () => {
    const yaml = write('bad.yaml', 'name: x\njobs:\n  - name: a\n   command: b\n');
    expectOneLineError(await runWeft(['run', yaml, '--db', join(dir, 'b.db')]), /bad\.yaml is not valid YAML \(line 4, column \d+\)/);
    const json = write('bad.json', '{"name": "x", "jobs": [');
    expectOneLineError(await runWeft(['workflows', 'create', json, '--url', server.baseUrl]), /bad\.json is not valid JSON/);
  });

  it('a spec the server rejects: every fault on the one line, nothing created', async () => {
    const spec = write('faults.yaml', 'name: faults\njobs:\n  - name: a\n    command: x\n    blocked_by: [ghost]\n  - name: a\n    command: y\n');
    const res = await runWeft(['workflows', 'create', spec, '--url', server.baseUrl]);
    expectOneLineError(res, /duplicate job name "a"/);
    expect(res.stderr).toMatch(/ghost/);
    const list = await runWeft(['workflows', 'list', '--json', '--url', server.baseUrl]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((w) => w.name)).not.toContain('faults');
    // Through weft run (its embedded server) the same one line, and the process ends.
    expectOneLineError(await runWeft(['run', spec, '--db', join(dir, 'c.db')]), /duplicate job name "a".*ghost|ghost.*duplicate/);
  });

  it('an unreachable server fails within seconds', async () => {
    const started = Date.now();
    expectOneLineError(await runWeft(['workflows', 'list', '--url', closedUrl]), /Cannot reach the Weft server at .*ECONNREFUSED/);
    expectOneLineError(await runWeft(['jobs', 'list', '1'], { env: { ...process.env, WEFT_URL: closedUrl } }), /Cannot reach the Weft server/);
    expectOneLineError(await runWeft(['run', 'examples/diamond.yaml', '--url', closedUrl]), /Cannot reach the Weft server/);
    expectOneLineError(await runWeft(['workflows', 'list', '--url', 'not a url']), /Not a URL/);
    // Generous bound (shared CI cores); the point is seconds, not the client's minutes of retries.
    expect(Date.now() - started).toBeLessThan(45_000);
  });

  it('a wrong workflow key names the key for every command', async () => {
    const url = ['--url', server.baseUrl];
    const commands = [
      ['workflows', 'status', 'nope'],
      ['workflows', 'show', 'nope'],
      ['workflows', 'start', 'nope'],
      ['workflows', 'restart', 'nope', '--dry-run'],
      ['workflows', 'cancel', 'nope'],
      ['workflows', 'delete', 'nope'],
      ['jobs', 'list', 'nope'],
      ['graph', 'nope'],
      ['events', 'nope'],
      ['results', 'nope'],
      ['reports', 'nope'],
    ];
    for (const args of commands) expectOneLineError(await runWeft([...args, ...url]), /No workflow with key "nope"/);
  });

  it('a wrong job, status, graph name or option value', async () => {
    const spec = write('ok.yaml', 'name: ok\njobs:\n  - name: a\n    command: "true"\n');
    const created = await runWeft(['workflows', 'create', spec, '--json', '--url', server.baseUrl]);
    expect(created.code, created.stderr).toBe(0);
    const key = (JSON.parse(created.stdout) as { _key: string })._key;
    const url = ['--url', server.baseUrl];
    expectOneLineError(await runWeft(['jobs', 'show', key, 'ghost', ...url]), /No job "ghost" \(key or name\) in workflow/);
    expectOneLineError(await runWeft(['jobs', 'list', key, '--status', 'finished', ...url]), /--status must be one of/);
    expectOneLineError(await runWeft(['graph', key, 'bogus', ...url]), /Unknown graph "bogus"/);
    expectOneLineError(await runWeft(['run', spec, '--workers', 'two', '--db', join(dir, 'd.db')]), /--workers must be a whole number/);
    expectOneLineError(await runWeft(['jobs', 'logs', key, 'a', '--output-dir', dir, ...url]), /No stdout log for job a/);
  });

  it('every user command has --help with --url and --json', async () => {
    for (const args of [['run'], ['workflows', 'list'], ['workflows', 'restart'], ['jobs', 'list'], ['graph'], ['events'], ['results'], ['reports']]) {
      const res = await runWeft([...args, '--help']);
      expect(res.code, args.join(' ')).toBe(0);
      expect(res.stdout).toContain('--url');
      expect(res.stdout).toContain('--json');
    }
  });
});
