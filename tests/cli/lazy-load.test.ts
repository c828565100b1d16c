/**
 * Each `weft` command loads only its own command family (cli/main.ts): `weft worker` starts on
 * compute nodes, often many at once, and loading the server (koa, the stores, better-sqlite3) and
 * the schedulers (ssh2, the AWS SDK) it never uses cost it ~0.3 s. A module hook in the real
 * binary's process records every module it loads.
 */
import { spawnSync } from 'node:child_process';
import * as nodeModule from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEFT_BIN, cleanEnv, ensureBuilt } from '../helpers/cli.js';

let dir: string;
let hook: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'weft-lazy-'));
  // The resolve hook runs on the hooks thread; it appends each resolved URL to the file named by
  // WEFT_TEST_IMPORTS (the thread sees the process's environment).
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.WEFT_TEST_IMPORTS, r.url + '\\n');
  return r;
}
`,
  );
  hook = join(dir, 'register.mjs');
  writeFileSync(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * How the hook is loaded: module.register (Node 20.6+), else the older --experimental-loader (Node
 * 20.0-20.5; WEFT_TEST_OLD_LOADER=1 takes this path on a newer Node, to check it).
 */
function hookFlags(): string[] {
  return typeof (nodeModule as { register?: unknown }).register === 'function' && !process.env['WEFT_TEST_OLD_LOADER'] ? ['--import', pathToFileURL(hook).href] : ['--experimental-loader', pathToFileURL(join(dir, 'hooks.mjs')).href];
}

/** The modules `weft ...args` loaded (resolved URLs). */
function loaded(args: string[]): { urls: string[]; stdout: string; status: number | null } {
  const out = join(dir, `imports-${args.join('_').replace(/[^a-z_-]/gi, '')}.txt`);
  writeFileSync(out, '');
  const r = spawnSync(process.execPath, [...hookFlags(), WEFT_BIN, ...args], {
    env: { ...cleanEnv(), WEFT_TEST_IMPORTS: out },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { urls: readFileSync(out, 'utf8').split('\n').filter(Boolean), stdout: r.stdout, status: r.status };
}

const HEAVY = [/\/dist\/server\/(main|app|thread)\.js$/, /\/dist\/graph\/store\//, /\/dist\/schedulers\//, /\/node_modules\/(koa|better-sqlite3|arangojs|ssh2|@aws-sdk)\//];

describe('weft loads only the command family it runs', () => {
  it('weft worker --help loads neither the server, the stores nor the schedulers', () => {
    const r = loaded(['worker', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--workflow');
    expect(r.urls.some((u) => u.endsWith('/dist/worker/index.js'))).toBe(true);
    expect(r.urls.filter((u) => HEAVY.some((re) => re.test(u)))).toEqual([]);
  });

  it('weft --help still lists every command family (it loads them all)', () => {
    const r = loaded(['--help']);
    expect(r.status).toBe(0);
    for (const name of ['server', 'hpc', 'worker', 'run', 'workflows|workflow', 'jobs|job', 'graph', 'events', 'results', 'reports', 'schedule']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name.replace('|', '\\|')}\\b`, 'm'));
    }
  });
});
