/**
 * Bad specifications over HTTP: each is a 400 naming the fault (and the job at fault), every
 * fault of a spec comes back in one answer, cycles are named in order, and nothing is written:
 * the number of workflows (and of every document) is unchanged after each refusal.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { api, startTestServer, testServerForSuite } from '../helpers/server.js';

const srv = testServerForSuite();

const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => api(srv.baseUrl, method, path, body, headers);

/** Rows in every table of the store: a rejected spec must leave this unchanged. */
async function storeCounts(): Promise<number[]> {
  const s = srv.store;
  const workflows = await s.count('workflows', null);
  const configs = await s.count('workflow_configs', null);
  return [workflows, configs, (await call('GET', '/workflows')).body.total_count];
}

/** POST a bad spec: expect the status and code, nothing written; returns the error body. */
async function refused(spec: unknown, code = 'SPEC_INVALID', status = 400, headers?: Record<string, string>): Promise<any> {
  const before = await storeCounts();
  const res = await call('POST', '/workflow_specifications', spec, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(await storeCounts()).toEqual(before);
  return res.body.error;
}

const job = (name: string, extra: Record<string, unknown> = {}) => ({ name, command: `run ${name}`, ...extra });
const base = () => ({
  name: 'bad',
  files: [{ name: 'f1', path: 'f1' }, { name: 'f2', path: 'f2' }],
  user_data: [{ name: 'u1' }],
  resource_requirements: [{ name: 'small', memory: '1g', runtime: 'PT1M' }],
  schedulers: { slurm_schedulers: [{ name: 'debug', account: 'a', nodes: 1 }] },
  jobs: [job('a', { input_files: ['f1'] })],
});

/** The detail at this path. */
function detailAt(error: any, path: (string | number)[]): any {
  const d = error.details.find((x: any) => JSON.stringify(x.path) === JSON.stringify(path));
  expect(d, `no detail at ${JSON.stringify(path)} in ${JSON.stringify(error.details)}`).toBeDefined();
  return d;
}

describe('bad specifications', () => {
  it.each([
    ['unknown input file', { jobs: [job('a', { input_files: ['nope'] })] }, ['jobs', 0, 'input_files', 0], 'unknown_file', /job "a": unknown file "nope"/],
    ['unknown output file', { jobs: [job('a'), job('b', { output_files: ['f1', 'gone'] })] }, ['jobs', 1, 'output_files', 1], 'unknown_file', /job "b": unknown file "gone"/],
    ['unknown input user data', { jobs: [job('a', { input_user_data: ['x'] })] }, ['jobs', 0, 'input_user_data', 0], 'unknown_user_data', /job "a": unknown user data "x"/],
    ['unknown output user data', { jobs: [job('a', { output_user_data: ['y'] })] }, ['jobs', 0, 'output_user_data', 0], 'unknown_user_data', /unknown user data "y"/],
    ['unknown resource requirements', { jobs: [job('a', { resource_requirements: 'huge' })] }, ['jobs', 0, 'resource_requirements'], 'unknown_resource_requirements', /job "a": unknown resource requirements "huge"/],
    ['unknown scheduler name', { jobs: [job('a', { scheduler: 'slurm_schedulers/nope' })] }, ['jobs', 0, 'scheduler'], 'unknown_scheduler', /job "a": no Slurm scheduler named "nope"/],
    ['scheduler in the wrong collection', { jobs: [job('a', { scheduler: 'local_schedulers/debug' })] }, ['jobs', 0, 'scheduler'], 'unknown_scheduler', /no local scheduler named "debug"/],
    ['unknown blocker', { jobs: [job('a', { blocked_by: ['ghost'] })] }, ['jobs', 0, 'blocked_by', 0], 'unknown_job', /job "a": unknown job "ghost"/],
    ['duplicate job names', { jobs: [job('a'), job('b'), job('a')] }, ['jobs', 2, 'name'], 'duplicate_name', /duplicate job name "a"/],
    ['duplicate file names', { files: [{ name: 'f', path: 'x' }, { name: 'f', path: 'y' }], jobs: [] }, ['files', 1, 'name'], 'duplicate_name', /duplicate file name "f"/],
    ['duplicate user data names', { user_data: [{ name: 'u' }, { name: 'u' }], jobs: [] }, ['user_data', 1, 'name'], 'duplicate_name', /duplicate user data name "u"/],
    ['duplicate resource requirements names', { resource_requirements: [{ name: 'r' }, { name: 'r', num_cpus: 2 }], jobs: [] }, ['resource_requirements', 1, 'name'], 'duplicate_name', /duplicate resource requirements name "r"/],
    ['duplicate scheduler names', { schedulers: { slurm_schedulers: [{ name: 's', account: 'a', nodes: 1 }, { name: 's', account: 'b', nodes: 1 }] }, jobs: [] }, ['schedulers', 'slurm_schedulers', 1, 'name'], 'duplicate_name', /duplicate Slurm scheduler name "s"/],
    ['decimal memory', { resource_requirements: [{ name: 'r', memory: '1.5g' }], jobs: [] }, ['resource_requirements', 0, 'memory'], 'memory', /invalid memory "1.5g"/],
    ['unknown memory unit', { resource_requirements: [{ name: 'r', memory: '10gb' }], jobs: [] }, ['resource_requirements', 0, 'memory'], 'memory', /invalid memory "10gb"/],
    ['runtime in weeks', { resource_requirements: [{ name: 'r', runtime: 'P1W' }], jobs: [] }, ['resource_requirements', 0, 'runtime'], 'runtime', /invalid duration "P1W"/],
    ['decimal runtime', { resource_requirements: [{ name: 'r', runtime: 'PT1.5H' }], jobs: [] }, ['resource_requirements', 0, 'runtime'], 'runtime', /invalid duration/],
    ['job without a command', { jobs: [{ name: 'a' }] }, ['jobs', 0, 'command'], 'invalid_type', /command/],
    ['job without a name', { jobs: [{ command: 'x' }] }, ['jobs', 0, 'name'], 'invalid_type', /name/],
    ['unknown job field (a typo)', { jobs: [job('a', { blocked_on: ['b'] })] }, ['jobs', 0], 'unrecognized_keys', /blocked_on/],
    ['unknown top-level field', { job: [] }, ['job'], 'unrecognized_keys', /unknown field "job"/],
    ['jobs not an array', { jobs: { a: 1 } }, ['jobs'], 'invalid_type', /expected an array/],
    ['slurm scheduler without an account', { schedulers: { slurm_schedulers: [{ name: 's', nodes: 1 }] }, jobs: [] }, ['schedulers', 'slurm_schedulers', 0, 'account'], 'invalid_type', /account/],
    ['bad config value', { config: { prepare_jobs_sort_method: 'random' }, jobs: [] }, ['config', 'prepare_jobs_sort_method'], 'invalid_value', /prepare_jobs_sort_method/],
    ['schedule_compute_nodes naming an unknown scheduler', { jobs: [job('a', { schedule_compute_nodes: { num_jobs: 1, scheduler_id: 'slurm_schedulers/gone' } })] }, ['jobs', 0, 'schedule_compute_nodes', 'scheduler_id'], 'unknown_scheduler', /gone/],
    ['a file path missing', { files: [{ name: 'f' }], jobs: [] }, ['files', 0, 'path'], 'invalid_type', /path/],
  ])('%s', async (_label, override, path, rule, message) => {
    const error = await refused({ ...base(), ...override });
    const d = detailAt(error, path);
    expect(d.rule).toBe(rule);
    expect(d.message).toMatch(message);
  });

  it('reports every fault of a spec in one answer', async () => {
    const spec = {
      ...base(),
      resource_requirements: [{ name: 'small', memory: '2 gigs' }],
      jobs: [
        job('a', { input_files: ['missing1'] }),
        job('b', { output_user_data: ['missing2'], resource_requirements: 'missing3' }),
        job('a', { scheduler: 'slurm_schedulers/missing4', blocked_by: ['missing5'] }),
      ],
    };
    const error = await refused(spec);
    const rules = error.details.map((d: any) => `${d.path.join('.')}:${d.rule}`).sort();
    expect(rules).toEqual([
      'jobs.0.input_files.0:unknown_file',
      'jobs.1.output_user_data.0:unknown_user_data',
      'jobs.1.resource_requirements:unknown_resource_requirements',
      'jobs.2.blocked_by.0:unknown_job',
      'jobs.2.name:duplicate_name',
      'jobs.2.scheduler:unknown_scheduler',
      'resource_requirements.0.memory:memory',
    ]);
    expect(error.fault_count).toBe(7);
    expect(error.message).toMatch(/and 2 more/);
  });

  it('a cycle a → b → c → a is DEPENDENCY_CYCLE naming the jobs in order', async () => {
    const spec = { jobs: [job('a', { blocked_by: ['c'] }), job('b', { blocked_by: ['a'] }), job('c', { blocked_by: ['b'] }), job('d', { blocked_by: ['c'] })] };
    const error = await refused(spec, 'DEPENDENCY_CYCLE');
    expect(error.cycles).toEqual([['a', 'b', 'c', 'a']]);
    expect(error.message).toMatch(/a → b → c → a/);
    expect(detailAt(error, ['jobs', 0]).rule).toBe('dependency_cycle');
  });

  it('the same cycle written in another order still starts at its first declared job', async () => {
    const spec = { jobs: [job('x', { blocked_by: ['z'] }), job('z', { blocked_by: ['y'] }), job('y', { blocked_by: ['x'] })] };
    const error = await refused(spec, 'DEPENDENCY_CYCLE');
    expect(error.cycles).toEqual([['x', 'y', 'z', 'x']]);
  });

  it('a cycle through a file (producer → consumer) and through user data is found and says how', async () => {
    const spec = {
      files: [{ name: 'f1', path: 'f1' }],
      user_data: [{ name: 'u1' }],
      jobs: [job('p', { output_files: ['f1'], input_user_data: ['u1'] }), job('q', { input_files: ['f1'], output_user_data: ['u1'] })],
    };
    const error = await refused(spec, 'DEPENDENCY_CYCLE');
    expect(error.cycles).toEqual([['p', 'q', 'p']]);
    expect(error.message).toMatch(/p → \(file f1\) q → \(user data u1\) p/);
  });

  it('a job that blocks itself is a cycle of one; one that updates a file in place is not', async () => {
    const error = await refused({ jobs: [job('me', { blocked_by: ['me'] })] }, 'DEPENDENCY_CYCLE');
    expect(error.cycles).toEqual([['me', 'me']]);
    const inPlace = {
      files: [{ name: 'log', path: 'log' }],
      user_data: [{ name: 'state' }],
      jobs: [job('self', { input_files: ['log'], output_files: ['log'], input_user_data: ['state'], output_user_data: ['state'] }), job('after', { input_files: ['log'] })],
    };
    expect((await call('POST', '/workflow_specifications', inPlace)).status).toBe(200);
    // two jobs that each update the file wait for each other: a cycle through the file
    const two = await refused({ files: [{ name: 'log', path: 'log' }], jobs: ['p', 'q'].map((n) => job(n, { input_files: ['log'], output_files: ['log'] })) }, 'DEPENDENCY_CYCLE');
    expect(two.cycles).toEqual([['p', 'q', 'p']]);
  });

  it('two separate cycles are both named', async () => {
    const spec = { jobs: [job('a', { blocked_by: ['b'] }), job('b', { blocked_by: ['a'] }), job('c', { blocked_by: ['d'] }), job('d', { blocked_by: ['c'] })] };
    const error = await refused(spec, 'DEPENDENCY_CYCLE');
    expect(error.cycles).toEqual([['a', 'b', 'a'], ['c', 'd', 'c']]);
  });

  it('a job naming a document that is itself at fault is not a second fault', async () => {
    const error = await refused({ files: [{ name: 'nopath' }], jobs: [job('a', { input_files: ['nopath'] })] });
    expect(error.details.map((d: any) => d.path.join('.'))).toEqual(['files.0.path']);
  });

  it('a cycle of 1,000 jobs is named whole in cycles and shortened in the message', async () => {
    const jobs = Array.from({ length: 1000 }, (_, i) => job(`c${i}`, { blocked_by: [`c${(i + 999) % 1000}`] }));
    const error = await refused({ jobs }, 'DEPENDENCY_CYCLE');
    expect(error.cycles[0]).toHaveLength(1001);
    expect(error.cycles[0].slice(0, 3)).toEqual(['c0', 'c1', 'c2']);
    expect(error.message).toMatch(/c0 → c1 → .* → \.\.\. 990 more \.\.\. → .* → c0$/);
  });

  it('a cycle alongside other faults is SPEC_INVALID listing both', async () => {
    const error = await refused({ jobs: [job('a', { blocked_by: ['b'] }), job('b', { blocked_by: ['a'], input_files: ['nope'] })] });
    expect(error.details.map((d: any) => d.rule).sort()).toEqual(['dependency_cycle', 'unknown_file']);
  });

  it('malformed bodies, unknown media types and empty bodies', async () => {
    const yaml = await refused('name: x\njobs: [\n  - a\n', 'MALFORMED_BODY', 400, { 'content-type': 'application/yaml' });
    expect(yaml.message).toMatch(/YAML.*line/);
    const json5 = await refused('{name: "x", jobs: [}', 'MALFORMED_BODY', 400, { 'content-type': 'application/json5' });
    expect(json5.message).toMatch(/JSON5.*line 1/);
    await refused('{"name": ', 'MALFORMED_BODY', 400);
    await refused('__proto__: {x: 1}\njobs: []\n', 'MALFORMED_BODY', 400, { 'content-type': 'text/yaml' });
    const media = await refused('name = "x"', 'UNSUPPORTED_MEDIA_TYPE', 415, { 'content-type': 'application/toml' });
    expect(media.message).toMatch(/application\/yaml/);
    await refused('- just\n- a list\n', 'SPEC_INVALID', 400, { 'content-type': 'application/yaml' });
    const empty = await call('POST', '/workflow_specifications');
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('SPEC_INVALID');
  });

  it('YAML bodies may be gzip-compressed; a bad or unknown encoding and bytes that are not UTF-8 are refused', async () => {
    const yaml = 'name: gz\njobs:\n  - {name: a, command: run}\n';
    const post = (body: Buffer | string, headers: Record<string, string>) =>
      fetch(`${srv.baseUrl}/workflow_specifications`, { method: 'POST', headers: { 'content-type': 'application/yaml', ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
    const good = await post(gzipSync(yaml), { 'content-encoding': 'gzip' });
    expect(good.status).toBe(200);
    expect((await good.json()).name).toBe('gz');
    const before = await storeCounts();
    for (const [body, headers, status, code] of [
      ['not gzip', { 'content-encoding': 'gzip' }, 400, 'MALFORMED_BODY'],
      [yaml, { 'content-encoding': 'compress' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [Buffer.from([0x6e, 0x3a, 0x20, 0xff, 0xfe]), {}, 400, 'MALFORMED_BODY'],
    ] as const) {
      const res = await post(body as Buffer | string, headers as Record<string, string>);
      expect(res.status).toBe(status);
      expect((await res.json()).error.code).toBe(code);
    }
    expect(await storeCounts()).toEqual(before);
  });

  it('a body over the size limit is 413 in YAML too: declared, chunked, or once decompressed', async () => {
    const small = await startTestServer({ flags: { bodyLimitMb: 0.01 } });
    try {
      const big = `name: big\njobs:\n${Array.from({ length: 1000 }, (_, i) => `  - {name: j${i}, command: run}`).join('\n')}\n`;
      const res = await api(small.baseUrl, 'POST', '/workflow_specifications', big, { 'content-type': 'application/yaml' });
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      // Sent without Content-Length (chunked), and small once compressed but over the limit decoded.
      const post = (body: ReadableStream<Uint8Array> | Buffer, headers: Record<string, string> = {}) =>
        fetch(`${small.baseUrl}/workflow_specifications`, { method: 'POST', headers: { 'content-type': 'application/yaml', ...headers }, body, duplex: 'half' } as RequestInit);
      const chunked = await post(new Blob([big]).stream());
      const bomb = await post(gzipSync(big), { 'content-encoding': 'gzip' });
      for (const r of [chunked, bomb]) {
        expect(r.status).toBe(413);
        expect((await r.json()).error.message).toMatch(/larger than the limit of \d+ bytes/);
      }
      expect((await api(small.baseUrl, 'GET', '/workflows')).body.total_count).toBe(0);
    } finally {
      await small.close();
    }
  });
});
