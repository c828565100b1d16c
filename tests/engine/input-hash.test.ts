import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson, computeJobInputHash, hashJobInputs } from '../../graph/engine/input-hash.js';
import { insertJobs } from '../../graph/engine/job-insert.js';
import { createWorkflow } from '../../graph/engine/workflow-create.js';
import { SqliteGraphStore } from '../../graph/store/index.js';
import type { Doc } from '../../graph/store/port.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined fields', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"x":2,"y":1}]},"b":1}');
  });
});

describe('computeJobInputHash', () => {
  let dir: string;
  let store: SqliteGraphStore;
  let wf: string;
  let job: Doc;
  let other: Doc;
  let fIn: Doc;
  let fIn2: Doc;
  let ud: Doc;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-hash-'));
    store = new SqliteGraphStore({ path: join(dir, 'weft.db') });
    await store.open();
    wf = (await createWorkflow(store, { name: 'w', user: 'u' }))._key;
    fIn = await store.insert('files', wf, { name: 'in', path: 'data/in.json', st_mtime: 100 });
    fIn2 = await store.insert('files', wf, { name: 'in2', path: 'data/in2.json', st_mtime: 200 });
    const fOut = await store.insert('files', wf, { name: 'out', path: 'data/out.json' });
    ud = await store.insert('user_data', wf, { name: 'params', data: { a: 1, b: { c: 2 } } });
    const rr = await store.insert('resource_requirements', wf, { name: 'small', memory: '1g' });
    [job, other] = await store.transaction((tx) =>
      insertJobs(tx, wf, [
        { name: 'j', command: 'run.sh', input_files: [fIn._id, fIn2._id], output_files: [fOut._id], input_user_data: [ud._id], resource_requirements: rr._id },
        { name: 'k', command: 'run.sh' },
      ]),
    ) as [Doc, Doc];
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const hash = async (): Promise<string> => computeJobInputHash(store, wf, (await store.get('jobs', wf, job._key))!);

  it('is a deterministic SHA-256 hex string', async () => {
    const h = await hash();
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(await hash()).toBe(h);
  });

  it('does not change when documents are rewritten with the same content (revisions are not hashed)', async () => {
    const h = await hash();
    const before = (await store.get('files', wf, fIn._key))!._rev;
    await store.update('files', wf, fIn._key, { st_mtime: 100 });
    await store.update('user_data', wf, ud._key, { data: { b: { c: 2 }, a: 1 } });
    await store.update('jobs', wf, job._key, { name: 'renamed', supports_termination: true, cancel_on_blocking_job_failure: false });
    expect((await store.get('files', wf, fIn._key))!._rev).not.toBe(before);
    expect(await hash()).toBe(h);
  });

  it('changes with the command, the invocation script, a needed file mtime or path, and consumed data', async () => {
    const seen = new Set([await hash()]);
    await store.update('jobs', wf, job._key, { command: 'run.sh --fast' });
    seen.add(await hash());
    await store.update('jobs', wf, job._key, { invocation_script: 'bash' });
    seen.add(await hash());
    await store.update('files', wf, fIn._key, { st_mtime: 101 });
    seen.add(await hash());
    await store.update('files', wf, fIn2._key, { path: 'data/other.json' });
    seen.add(await hash());
    await store.update('user_data', wf, ud._key, { data: { a: 2, b: { c: 2 } } });
    seen.add(await hash());
    await store.update('user_data', wf, ud._key, { data: {} });
    seen.add(await hash());
    expect(seen.size).toBe(7);
  });

  it('ignores resource requirements and outputs, and does not depend on edge order', async () => {
    const h = await hash();
    // the same inputs attached in the other order give the same hash
    const [twin] = await store.transaction((tx) =>
      insertJobs(tx, wf, [{ name: 'twin', command: 'run.sh', input_user_data: [ud._id], input_files: [fIn2._id, fIn._id] }]),
    );
    expect(await computeJobInputHash(store, wf, twin!)).toBe(h);
    // a job without inputs differs
    expect(await computeJobInputHash(store, wf, other)).not.toBe(h);
  });

  it('treats a missing mtime and null the same, and distinguishes them from 0', () => {
    const base = { command: 'c', invocation_script: null, user_data: [] };
    expect(hashJobInputs({ ...base, files: [{ path: 'p', st_mtime: null }] })).not.toBe(hashJobInputs({ ...base, files: [{ path: 'p', st_mtime: 0 }] }));
  });
});
