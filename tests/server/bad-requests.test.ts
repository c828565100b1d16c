/**
 * Bad input: every case gets a 4xx (never a 500), the stable code from the catalogue, and a
 * message that names the field, parameter, collection or document at fault. After all of them
 * the server still answers and nothing was half-written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestServer, type TestServer } from '../helpers/server.js';

let srv: TestServer;
let small: TestServer;
let W: string;
let J: { _key: string; _id: string; _rev: string };
let F: { _key: string; _id: string };
let config: Record<string, unknown>;
let status: Record<string, unknown>;

interface Case {
  name: string;
  method: string;
  /** Path under the base path; a function so it can use the fixtures. */
  path: () => string;
  body?: () => unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
  /** Text the error message must contain (the field, parameter or name at fault). */
  names: () => string;
  /** For validation errors: a details path (joined with '.') that must be present. */
  detail?: string;
}

const v = (name: string, method: string, path: () => string, body: (() => unknown) | undefined, field: string, detail = field): Case => ({
  name,
  method,
  path,
  ...(body ? { body } : {}),
  status: 400,
  code: 'VALIDATION_FAILED',
  names: () => field,
  detail,
});

const jobs = () => `/workflows/${W}/jobs`;
const CASES: Case[] = [
  // Query parameters
  v('limit not a number', 'GET', () => `${jobs()}?limit=abc`, undefined, 'limit'),
  v('limit above 100000', 'GET', () => `${jobs()}?limit=100001`, undefined, 'limit'),
  v('limit zero', 'GET', () => `${jobs()}?limit=0`, undefined, 'limit'),
  v('negative skip', 'GET', () => `${jobs()}?skip=-1`, undefined, 'skip'),
  v('fractional skip', 'GET', () => `${jobs()}?skip=1.5`, undefined, 'skip'),
  v('repeated skip', 'GET', () => `${jobs()}?skip=1&skip=2`, undefined, 'skip'),
  v('sort_by with SQL in it', 'GET', () => `${jobs()}?sort_by=${encodeURIComponent("name'; DROP TABLE jobs")}`, undefined, 'sort_by'),
  v('reverse_sort not boolean', 'GET', () => `${jobs()}?reverse_sort=maybe`, undefined, 'reverse_sort'),
  v('boolean filter not boolean', 'GET', () => `${jobs()}?supports_termination=yes`, undefined, 'supports_termination'),
  v('unknown filter', 'GET', () => `${jobs()}?colour=red`, undefined, 'colour'),
  v('integer filter not integer', 'GET', () => `/workflows/${W}/results?run_id=one`, undefined, 'run_id'),
  v('unknown query on workflows list', 'GET', () => '/workflows?owner=me', undefined, 'owner'),
  v('edges list does not sort', 'GET', () => `/workflows/${W}/edges/blocks?sort_by=_from`, undefined, 'sort_by'),
  v('query on a route without any', 'GET', () => '/ping?verbose=1', undefined, 'verbose'),
  // Path parameters
  // The message says which rule failed (a key or id of the wrong collection stops there).
  { ...v('document id of another collection', 'GET', () => `${jobs()}/${encodeURIComponent(`files/${F._key}`)}`, undefined, 'key'), names: () => 'key: must be a jobs key or id, not an id in files' },
  { ...v('workflow key with a space', 'GET', () => '/workflows/bad%20key', undefined, 'key'), names: () => 'key: is not a valid document key' },
  { ...v('workflow param is an id of another collection', 'GET', () => `/workflows/${encodeURIComponent(`jobs/${W}`)}/jobs`, undefined, 'workflow'), names: () => 'workflow: must be a workflows key or id, not an id in jobs' },
  // Bodies: jobs
  v('job without command', 'POST', jobs, () => ({ name: 'x' }), 'command'),
  v('job command not a string', 'POST', jobs, () => ({ command: 5 }), 'command'),
  v('job empty command', 'POST', jobs, () => ({ command: '' }), 'command'),
  v('job flag not boolean', 'POST', jobs, () => ({ command: 'x', cancel_on_blocking_job_failure: 'yes' }), 'cancel_on_blocking_job_failure'),
  v('job unknown status', 'POST', jobs, () => ({ command: 'x', status: 'running' }), 'status'),
  v('job blocked_by not an array', 'POST', jobs, () => ({ command: 'x', blocked_by: 'jobs/1' }), 'blocked_by'),
  v('job input file that does not exist', 'POST', jobs, () => ({ command: 'x', input_files: ['files/987654'] }), 'input_files', '0.input_files.0'),
  v('job blocker in another collection', 'POST', jobs, () => ({ command: 'x', blocked_by: [F._id] }), 'blocked_by', '0.blocked_by.0'),
  v('job schedule params num_jobs 0', 'POST', jobs, () => ({ command: 'x', schedule_compute_nodes: { num_jobs: 0, scheduler_id: 's' } }), 'schedule_compute_nodes.num_jobs'),
  v('job internal negative', 'POST', jobs, () => ({ command: 'x', internal: { num_cpus: -1 } }), 'internal.num_cpus'),
  // Bodies: other collections
  v('file without path', 'POST', () => `/workflows/${W}/files`, () => ({ name: 'f' }), 'path'),
  v('file st_mtime not a number', 'POST', () => `/workflows/${W}/files`, () => ({ path: '/a', st_mtime: 'yesterday' }), 'st_mtime'),
  v('result without run_id', 'POST', () => `/workflows/${W}/results`, () => ({ job_key: '1', return_code: 0, exec_time_minutes: 1, completion_time: 't', status: 'done' }), 'run_id'),
  v('result with a non-final status', 'POST', () => `/workflows/${W}/results`, () => ({ job_key: '1', run_id: 1, return_code: 0, exec_time_minutes: 1, completion_time: 't', status: 'ready' }), 'status'),
  v('compute node pid not integer', 'POST', () => `/workflows/${W}/compute_nodes`, () => ({ hostname: 'h', pid: 'x', start_time: 't', resources: { num_cpus: 1, memory_gb: 1 } }), 'pid'),
  v('compute node negative cpus', 'POST', () => `/workflows/${W}/compute_nodes`, () => ({ hostname: 'h', pid: 1, start_time: 't', resources: { num_cpus: -4, memory_gb: 1 } }), 'resources.num_cpus'),
  v('slurm scheduler with 0 nodes', 'POST', () => `/workflows/${W}/slurm_schedulers`, () => ({ account: 'a', nodes: 0 }), 'nodes'),
  v('resource requirements fractional cpus', 'POST', () => `/workflows/${W}/resource_requirements`, () => ({ name: 'r', num_cpus: 1.5 }), 'num_cpus'),
  v('user data that is an array', 'POST', () => `/workflows/${W}/user_data`, () => ({ name: 'u', data: [1, 2] }), 'data'),
  v('scheduled compute node without scheduler_config_id', 'POST', () => `/workflows/${W}/scheduled_compute_nodes`, () => ({ status: 'pending' }), 'scheduler_config_id'),
  v('workflow name not a string', 'POST', () => '/workflows', () => ({ name: 5 }), 'name'),
  v('workflow is_archived not boolean', 'POST', () => '/workflows', () => ({ name: 'w', is_archived: 'no' }), 'is_archived'),
  v('body is an array', 'POST', () => '/workflows', () => [{ name: 'w' }], 'body field (root)', ''),
  // PUTs
  v('PUT without _rev', 'PUT', () => `${jobs()}/${J._key}`, () => ({ command: 'y' }), '_rev'),
  v('PUT with another _key', 'PUT', () => `${jobs()}/${J._key}`, () => ({ command: 'y', _rev: J._rev, _key: 'other' }), '_key'),
  v('PUT job with a relationship field', 'PUT', () => `${jobs()}/${J._key}`, () => ({ blocked_by: [], _rev: J._rev }), 'blocked_by'),
  v('PUT job command not a string', 'PUT', () => `${jobs()}/${J._key}`, () => ({ command: 7, _rev: J._rev }), 'command'),
  v('PUT config negative wait', 'PUT', () => `/workflows/${W}/config`, () => ({ ...config, compute_node_wait_for_new_jobs_seconds: -1 }), 'compute_node_wait_for_new_jobs_seconds'),
  v('PUT config unknown sort method', 'PUT', () => `/workflows/${W}/config`, () => ({ ...config, prepare_jobs_sort_method: 'random' }), 'prepare_jobs_sort_method'),
  v('PUT config of another workflow key', 'PUT', () => `/workflows/${W}/config`, () => ({ ...config, _key: 'not-this-one' }), '_key'),
  v('PUT status run_id not integer', 'PUT', () => `/workflows/${W}/status`, () => ({ ...status, run_id: 'one' }), 'run_id'),
  v('PUT status is_canceled not boolean', 'PUT', () => `/workflows/${W}/status`, () => ({ ...status, is_canceled: 'no' }), 'is_canceled'),
  // Edges
  v('edge without _to', 'POST', () => `/workflows/${W}/edges/blocks`, () => ({ _from: J._id }), '_to'),
  v('edge _from not a string', 'POST', () => `/workflows/${W}/edges/blocks`, () => ({ _from: 7, _to: J._id }), '_from'),
  v('edge ends in the wrong collections', 'POST', () => `/workflows/${W}/edges/needs`, () => ({ _from: F._id, _to: J._id }), '_from'),
  v('edge to a missing job', 'POST', () => `/workflows/${W}/edges/blocks`, () => ({ _from: 'jobs/987654', _to: J._id }), '_from'),
  v('edge end that is an ambiguous bare key', 'POST', () => `/workflows/${W}/edges/scheduled_bys`, () => ({ _from: J._id, _to: 'k1' }), '_to'),
  // Not found, unknown names, methods, formats
  { name: 'unknown collection', method: 'GET', path: () => `/workflows/${W}/widgets`, status: 404, code: 'UNKNOWN_COLLECTION', names: () => 'widgets' },
  { name: 'unknown collection (one document)', method: 'PUT', path: () => `/workflows/${W}/widgets/1`, body: () => ({}), status: 404, code: 'UNKNOWN_COLLECTION', names: () => 'widgets' },
  { name: 'unknown edge collection', method: 'GET', path: () => `/workflows/${W}/edges/links`, status: 404, code: 'UNKNOWN_COLLECTION', names: () => 'links' },
  { name: 'unknown workflow', method: 'GET', path: () => '/workflows/987654/jobs', status: 404, code: 'WORKFLOW_NOT_FOUND', names: () => '987654' },
  { name: 'unknown document', method: 'GET', path: () => `${jobs()}/987654`, status: 404, code: 'DOCUMENT_NOT_FOUND', names: () => '987654' },
  { name: 'delete unknown document', method: 'DELETE', path: () => `/workflows/${W}/files/987654`, status: 404, code: 'DOCUMENT_NOT_FOUND', names: () => '987654' },
  { name: 'unknown edge', method: 'GET', path: () => `/workflows/${W}/edges/blocks/987654`, status: 404, code: 'DOCUMENT_NOT_FOUND', names: () => '987654' },
  { name: 'unknown route', method: 'GET', path: () => '/no/such/thing', status: 404, code: 'ROUTE_NOT_FOUND', names: () => '/no/such/thing' },
  { name: 'method not allowed', method: 'PATCH', path: () => `/workflows/${W}`, status: 405, code: 'METHOD_NOT_ALLOWED', names: () => 'PATCH' },
  { name: 'malformed JSON', method: 'POST', path: () => '/workflows', body: () => '{"name": "w",', status: 400, code: 'MALFORMED_BODY', names: () => 'JSON' },
  { name: 'JSON scalar body', method: 'POST', path: () => '/workflows', body: () => '"just a string"', status: 400, code: 'MALFORMED_BODY', names: () => 'JSON' },
  {
    name: 'body that is not JSON',
    method: 'POST',
    path: () => '/workflows',
    body: () => 'name=w',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    names: () => 'Content-Type',
  },
  v('body _key with a slash', 'POST', () => `/workflows/${W}/files`, () => ({ _key: 'a/b', path: '/k' }), '_key'),
  v('body _key too long', 'POST', () => `/workflows/${W}/user_data`, () => ({ _key: 'k'.repeat(300) }), '_key'),
  v('workflow _key with a space', 'POST', () => '/workflows', () => ({ _key: 'my workflow' }), '_key'),
  { name: 'JSON with a __proto__ key', method: 'POST', path: () => `/workflows/${W}/files`, body: () => '{"path":"/a","__proto__":{"polluted":1}}', status: 400, code: 'MALFORMED_BODY', names: () => 'body' },
  {
    name: 'body that does not decompress',
    method: 'POST',
    path: () => '/workflows',
    body: () => '{"name":"w"}',
    headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
    status: 400,
    code: 'MALFORMED_BODY',
    names: () => 'body',
  },
  {
    name: 'unknown content encoding',
    method: 'POST',
    path: () => '/workflows',
    body: () => '{"name":"w"}',
    headers: { 'content-type': 'application/json', 'content-encoding': 'rot13' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    names: () => 'rot13',
  },
  { name: 'duplicate key', method: 'POST', path: () => `/workflows/${W}/files`, body: () => ({ _key: F._key, path: '/dup' }), status: 409, code: 'DUPLICATE_KEY', names: () => F._key },
];

beforeAll(async () => {
  srv = await startTestServer();
  small = await startTestServer({ flags: { bodyLimitMb: 0.001 } });
  const b = srv.baseUrl;
  W = (await api(b, 'POST', '/workflows', { name: 'bad-input' })).body._key;
  J = (await api(b, 'POST', `/workflows/${W}/jobs`, { name: 'j', command: 'true' })).body;
  F = (await api(b, 'POST', `/workflows/${W}/files`, { path: '/f' })).body;
  config = (await api(b, 'GET', `/workflows/${W}/config`)).body;
  status = (await api(b, 'GET', `/workflows/${W}/status`)).body;
});
afterAll(async () => {
  await srv.close();
  await small.close();
});

describe('bad requests', () => {
  it('has at least 40 distinct cases', () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const res = await api(srv.baseUrl, c.method, c.path(), c.body?.(), c.headers);
    expect(res.status, JSON.stringify(res.body)).toBe(c.status);
    expect(res.body.error.code).toBe(c.code);
    expect(res.body.error.message).toContain(c.names());
    if (c.detail) {
      const paths = (res.body.error.details as { path: (string | number)[] }[]).map((d) => d.path.join('.'));
      expect(paths).toContain(c.detail);
      expect(res.body.error.details.every((d: { rule?: string }) => typeof d.rule === 'string')).toBe(true);
    }
  });

  it('a body over the size limit is 413 and nothing is written', async () => {
    const before = await small.store.count('workflows', null);
    const res = await api(small.baseUrl, 'POST', '/workflows', { name: 'big', description: 'x'.repeat(5000) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(res.body.error.message).toContain('body');
    expect(await small.store.count('workflows', null)).toBe(before);
    // A body under the limit still works.
    expect((await api(small.baseUrl, 'POST', '/workflows', { name: 'ok' })).status).toBe(200);
  });

  it('wrote nothing for any rejected request, and the server still answers', async () => {
    expect(await srv.store.count('jobs', W)).toBe(1);
    expect(await srv.store.count('files', W)).toBe(1);
    expect(await srv.store.count('blocks', W)).toBe(0);
    expect((await api(srv.baseUrl, 'GET', `/workflows/${W}/jobs/${J._key}`)).body).toEqual(J);
    expect((await api(srv.baseUrl, 'GET', `/workflows/${W}/config`)).body).toEqual(config);
    expect((await api(srv.baseUrl, 'GET', '/ping')).status).toBe(200);
  });
});
