/**
 * `weft server --store arango` through the real binary: the server process talks HTTP to the
 * recording ArangoDB listener of this test (tests/arango/fake-arango.ts), so what a user sees at
 * start (one clear line for a bad URL or refused credentials) and the AQL an API call turns into
 * are checked end to end.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, ensureBuilt, runWeft, startWeftServer, type ServerProcess } from '../helpers/cli.js';
import { startFakeArango, type FakeArango } from './fake-arango.js';

let fake: FakeArango | undefined;
let server: ServerProcess | undefined;
beforeAll(() => ensureBuilt(), 180_000);
afterEach(async () => {
  await server?.stop('SIGTERM');
  await fake?.close();
  server = undefined;
  fake = undefined;
});

describe('weft server --store arango', () => {
  it('stops with one line naming the URL when nothing listens there', async () => {
    const probe = await startFakeArango();
    const url = probe.url;
    await probe.close();
    const res = await runWeft(['server', '--port', '0', '--store', 'arango', '--arango-url', url, '--arango-db', 'weft']);
    expect(res.code).toBe(1);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^weft: Cannot reach ArangoDB at ${url.replace(/[.]/g, '\\.')}: .*\\[STORE_UNAVAILABLE\\]$`));
  });

  it('stops with one line when the credentials from WEFT_* variables are refused', async () => {
    fake = await startFakeArango({ auth: { basic: 'weft:right' } });
    const env = cleanEnv({ WEFT_STORE: 'arango', WEFT_ARANGO_URL: fake.url, WEFT_ARANGO_USER: 'weft', WEFT_ARANGO_PASSWORD: 'not-it' });
    const res = await runWeft(['server', '--port', '0'], { env });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain('refused the credentials of user "weft"');
    expect(res.stderr).not.toContain('not-it');
  });

  it('serves the API from ArangoDB: a list call becomes one bound AQL query', async () => {
    fake = await startFakeArango({ auth: { bearer: 'jwt' } });
    server = await startWeftServer(['--port', '0', '--store', 'arango', '--arango-url', fake.url, '--arango-db', 'lab', '--arango-token', 'jwt']);
    expect(server.stdout()).toContain(`store: arango ${fake.url}`);
    expect(fake.requests.some((r) => r.method === 'POST' && r.path === '/_db/lab/_api/gharial')).toBe(true);
    const res = await fetch(`${server.url}/workflows?limit=5`);
    expect(res.status).toBe(200);
    const list = fake.queries.filter((q) => Object.values(q.bindVars).includes('workflows'));
    expect(list.length).toBeGreaterThan(0);
    expect(list[0]!.query).toMatch(/^FOR d IN @@value\d+ FILTER d\.workflow == @value\d+/);
  });
});
