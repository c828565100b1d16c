/** Config resolution: precedence, file formats, and bad keys or values named with their source. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WeftError } from '../../graph/errors.js';
import { ENV_VARS, resolveServerConfig } from '../../server/config.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(fn: () => unknown): WeftError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WeftError);
    return err as WeftError;
  }
  throw new Error('expected an error');
}

describe('resolveServerConfig', () => {
  it('defaults: 127.0.0.1:8080, ./weft.db, /torc-service, sqlite', () => {
    const c = resolveServerConfig({ env: {} });
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, db: './weft.db', basePath: '/torc-service', store: 'sqlite', leaseTimeoutSeconds: 60 });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('flag > WEFT_* env > config file > default', () => {
    const cfg = file('p.json', JSON.stringify({ port: 1111, host: '10.0.0.1', db: '/file.db', basePath: '/from-file' }));
    const env = { WEFT_PORT: '2222', WEFT_HOST: '10.0.0.2', WEFT_CONFIG: cfg };
    const c = resolveServerConfig({ env, flags: { port: '3333' } });
    expect(c.port).toBe(3333); // flag
    expect(c.host).toBe('10.0.0.2'); // env over file
    expect(c.db).toBe('/file.db'); // file over default
    expect(c.basePath).toBe('/from-file');
    expect(c.store).toBe('sqlite'); // default
    // --config wins over WEFT_CONFIG.
    const other = file('q.json', JSON.stringify({ db: '/other.db' }));
    expect(resolveServerConfig({ env, flags: { config: other } }).db).toBe('/other.db');
  });

  it('reads JSON5 and YAML files', () => {
    const j5 = file('c.json5', "{ // comment\n port: 9001, basePath: '', }");
    expect(resolveServerConfig({ env: {}, flags: { config: j5 } })).toMatchObject({ port: 9001, basePath: '' });
    const y = file('c.yaml', 'port: 9002\nstore: arango\narangoUrl: http://db:8529\nleaseTimeoutSeconds: 5\n');
    expect(resolveServerConfig({ env: {}, flags: { config: y } })).toMatchObject({ port: 9002, store: 'arango', arangoUrl: 'http://db:8529', leaseTimeoutSeconds: 5 });
  });

  it('an unknown key in the file stops it, naming the key and the file', () => {
    const p = file('bad.yaml', 'prot: 8080\n');
    const err = errorOf(() => resolveServerConfig({ env: {}, flags: { config: p } }));
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.message).toContain('"prot"');
    expect(err.message).toContain(p);
  });

  it('a bad value names the key and where it came from', () => {
    expect(errorOf(() => resolveServerConfig({ env: { WEFT_PORT: 'eighty' } })).message).toMatch(/"port".*WEFT_PORT/);
    expect(errorOf(() => resolveServerConfig({ env: {}, flags: { port: '70000' } })).message).toMatch(/"port".*--port/);
    expect(errorOf(() => resolveServerConfig({ env: {}, flags: { basePath: 'no-slash' } })).message).toMatch(/"basePath".*--base-path/);
    expect(errorOf(() => resolveServerConfig({ env: { WEFT_STORE: 'mongo' } })).message).toMatch(/"store".*WEFT_STORE/);
    expect(errorOf(() => resolveServerConfig({ env: { WEFT_ARANGO_URL: 'not a url' } })).message).toMatch(/"arangoUrl".*WEFT_ARANGO_URL/);
  });

  it('an unreadable or unparsable file is named', () => {
    expect(errorOf(() => resolveServerConfig({ env: {}, flags: { config: join(dir, 'missing.json') } })).message).toContain('missing.json');
    const broken = file('broken.json', '{ port: ');
    expect(errorOf(() => resolveServerConfig({ env: {}, flags: { config: broken } })).message).toContain('broken.json');
    const list = file('list.yaml', '- a\n- b\n');
    expect(errorOf(() => resolveServerConfig({ env: {}, flags: { config: list } })).message).toContain('object');
  });

  it('names one WEFT_ variable per setting', () => {
    expect(ENV_VARS.basePath).toBe('WEFT_BASE_PATH');
    expect(ENV_VARS.arangoUrl).toBe('WEFT_ARANGO_URL');
    expect(ENV_VARS.leaseTimeoutSeconds).toBe('WEFT_LEASE_TIMEOUT_SECONDS');
  });
});
