/**
 * The real `weft` binary: help, one-line errors with a non-zero exit, and `weft server` serving,
 * stopping cleanly on SIGINT/SIGTERM, and keeping its data across a restart on the same file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, ensureBuilt, runWeft, startWeftServer } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function oneLineError(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0]!;
}

describe('weft CLI', () => {
  it('prints help for the program and for server', async () => {
    const top = await runWeft(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('server');
    const srv = await runWeft(['server', '--help']);
    expect(srv.code).toBe(0);
    for (const flag of ['--host', '--port', '--db', '--base-path', '--config', '--store']) expect(srv.stdout).toContain(flag);
  });

  it('a bad config key stops the server with one line naming it', async () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ prot: 1 }));
    const res = await runWeft(['server', '--config', cfg]);
    expect(res.code).not.toBe(0);
    expect(oneLineError(res.stderr)).toMatch(/^weft: .*"prot"/);
  });

  it('a bad value from the environment is named with its variable', async () => {
    const res = await runWeft(['server', '--db', join(dir, 'x.db')], { env: cleanEnv({ WEFT_PORT: 'eighty' }) });
    expect(res.code).not.toBe(0);
    expect(oneLineError(res.stderr)).toContain('WEFT_PORT');
  });

  it('an unknown flag is one line and a non-zero exit', async () => {
    const res = await runWeft(['server', '--bogus']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('--bogus');
  });

  it('serves, stops on SIGINT, and keeps its data for the next start (config file settings)', async () => {
    const db = join(dir, 'weft.db');
    const first = await startWeftServer(['--port', '0', '--db', db]);
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/torc-service$/);
    const ping = await fetch(`${first.url}/ping`);
    expect(ping.status).toBe(200);
    const wf = (await (await fetch(`${first.url}/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"kept"}' })).json()) as { _key: string };
    expect(await first.stop('SIGINT')).toEqual({ code: 0, signal: null });

    const cfg = join(dir, 'server.yaml');
    writeFileSync(cfg, `port: 0\nbasePath: /api\ndb: ${JSON.stringify(db)}\n`);
    const second = await startWeftServer(['--config', cfg]);
    expect(second.url).toMatch(/\/api$/);
    const got = (await (await fetch(`${second.url}/workflows/${wf._key}`)).json()) as { name: string };
    expect(got.name).toBe('kept');
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('serves from a worker thread (its young generation sized, server/thread.ts) and, with WEFT_SERVER_THREAD=0, from the main thread; both stop cleanly on SIGTERM', async () => {
    for (const thread of ['1', '0']) {
      const db = join(dir, `thread-${thread}.db`);
      const srv = await startWeftServer(['--port', '0', '--db', db], { env: cleanEnv({ WEFT_LOG_LEVEL: 'info', WEFT_SERVER_THREAD: thread }) });
      const wf = (await (await fetch(`${srv.url}/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"t"}' })).json()) as { _key: string };
      expect(wf._key).toBeTruthy();
      expect(await srv.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      // The thread's log lines reach stderr before the process ends, the last one included.
      expect(srv.stderr()).toContain('weft server stopped');
    }
  });

  it('a port in use is one line and a non-zero exit', async () => {
    const holder = await startWeftServer(['--port', '0', '--db', join(dir, 'a.db')]);
    try {
      const port = new URL(holder.url).port;
      const res = await runWeft(['server', '--port', port, '--db', join(dir, 'b.db')], { env: cleanEnv({ WEFT_LOG_LEVEL: 'silent' }) });
      expect(res.code).not.toBe(0);
      expect(oneLineError(res.stderr)).toMatch(/EADDRINUSE|in use/);
    } finally {
      await holder.stop();
    }
  });
});
