/**
 * Every (method, path) of the API contract (copied into tests/fixtures/contract-paths.txt from
 * the contract's list; 136 of them) is served: a request with real keys answers with something
 * other than "route not found", "unknown collection" or "method not allowed", and never a 500.
 * Every one is also in the OpenAPI document.
 *
 * PENDING lists the paths whose owners (engine, views, specifications) have not landed their
 * routers yet; each is removed from the list when it lands, so the list only shrinks.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, testServerForSuite } from '../helpers/server.js';

const here = dirname(fileURLToPath(import.meta.url));
const CONTRACT = readFileSync(join(here, '../fixtures/contract-paths.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '')
  .map((l) => {
    const [method, path] = l.split(' ') as [string, string];
    return { method, path, line: l };
  });

const PENDING = new Set<string>([]);

const srv = testServerForSuite();
let W: string;
const keys: Record<string, string> = {};
let jobRev = '';
let openapiPaths: Record<string, Record<string, unknown>> = {};

beforeAll(async () => {
  const b = srv.baseUrl;
  W = (await api(b, 'POST', '/workflows', { name: 'contract' })).body._key;
  const post = async (c: string, body: unknown) => (await api(b, 'POST', `/workflows/${W}/${c}`, body)).body;
  keys.files = (await post('files', { path: '/f' }))._key;
  keys.user_data = (await post('user_data', { name: 'u' }))._key;
  keys.resource_requirements = (await post('resource_requirements', { name: 'r' }))._key;
  keys.compute_nodes = (await post('compute_nodes', { hostname: 'h', pid: 1, start_time: 't', resources: { num_cpus: 1, memory_gb: 1 } }))._key;
  const job = await post('jobs', { name: 'j', command: 'true', input_files: [keys.files] });
  keys.jobs = job._key;
  jobRev = job._rev;
  keys.results = (await post('results', { job_key: job._key, run_id: 1, return_code: 0, exec_time_minutes: 1, completion_time: 't', status: 'done' }))._key;
  keys.blocks = (await api(b, 'POST', `/workflows/${W}/edges/needs`, { _from: job._id, _to: `files/${keys.files}` })).body._key;
  openapiPaths = (await api(b, 'GET', '/openapi.json')).body.paths;
});

/** Fill a contract path's parameters with real values. */
function concrete(path: string): string {
  const segs = path.split('/');
  return segs
    .map((seg, i) => {
      const m = /^\{(.+)\}$/.exec(seg);
      if (!m) return seg;
      const p = m[1];
      const prev = segs[i - 1] ?? '';
      switch (p) {
        case 'workflow':
          return W;
        case 'key':
          if (prev === 'workflows') return W;
          if (prev === 'workflow_specifications') return W;
          if (segs[1] === 'workflows' && segs[2] === '{key}') return keys.jobs;
          if (path.includes('/edges/')) return keys.blocks;
          return keys[prev] ?? keys.jobs!;
        case 'name':
          return path.includes('/edges/') ? 'needs' : 'jobs';
        case 'status':
          return prev === 'find_by_status' ? 'uninitialized' : 'done';
        case 'rev':
          return jobRev;
        case 'run_id':
          return '1';
        case 'compute_node_key':
          return keys.compute_nodes!;
        case 'rr_key':
          return keys.resource_requirements!;
        case 'collection':
          return 'jobs';
        case 'edge':
          return 'needs';
        case 'timestamp':
          return '0';
        default:
          return 'x';
      }
    })
    .join('/');
}

describe('contract paths', () => {
  it('lists the 136 (method, path) pairs of the contract', () => {
    expect(CONTRACT).toHaveLength(136);
    expect(new Set(CONTRACT.map((c) => c.line)).size).toBe(136);
    for (const p of PENDING) expect(CONTRACT.map((c) => c.line)).toContain(p);
  });

  const served = CONTRACT.filter((c) => !PENDING.has(c.line));
  it.each(served.map((c) => [c.line, c] as const))('%s is served', async (_line, c) => {
    const body = c.method === 'POST' || c.method === 'PUT' ? {} : undefined;
    const res = await api(srv.baseUrl, c.method, concrete(c.path), body);
    const code = res.body?.error?.code;
    expect(['ROUTE_NOT_FOUND', 'UNKNOWN_COLLECTION', 'METHOD_NOT_ALLOWED'], `${c.line} → ${res.status} ${JSON.stringify(res.body)}`).not.toContain(code);
    expect(res.status).toBeLessThan(500);
    expect(openapiPaths[c.path]?.[c.method.toLowerCase()], `${c.line} is in openapi.json`).toBeDefined();
  });
});
