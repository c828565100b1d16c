import { beforeAll, describe, expect, it } from 'vitest';
import { computeJobInputHash, computeJobInputHashes } from '../../graph/engine/input-hash.js';
import { insertJobs } from '../../graph/engine/job-insert.js';
import { SCAN_THRESHOLD, bulkEdges, bulkNeighbors, docsById } from '../../graph/engine/views-bulk.js';
import { jobSpecifications } from '../../graph/engine/views-spec.js';
import { createWorkflow } from '../../graph/engine/workflow-create.js';
import type { Doc } from '../../graph/store/port.js';
import { testStoreForSuite } from '../helpers/store.js';

/** A workflow big enough that the views scan: every job needs two files and consumes one datum. */
const store = testStoreForSuite('weft-bulk-');
let wf: string;
let jobs: Doc[];
let otherFiles: Doc[];
const N = SCAN_THRESHOLD + 200;

beforeAll(async () => {
  // another workflow's documents must never leak in
  const other = (await createWorkflow(store, { name: 'other' }))._key;
  otherFiles = await store.insertMany('files', other, Array.from({ length: 50 }, (_, i) => ({ name: `x${i}`, path: `x${i}` })));
  wf = (await createWorkflow(store, { name: 'big' }))._key;
  jobs = await store.transaction(async (tx) => {
    const files = await tx.insertMany('files', wf, Array.from({ length: N + 1 }, (_, i) => ({ name: `f${i}`, path: `p${i}`, st_mtime: i })));
    const data = await tx.insertMany('user_data', wf, Array.from({ length: 7 }, (_, i) => ({ name: `u${i}`, data: { i } })));
    return insertJobs(tx, wf, Array.from({ length: N }, (_, i) => ({
      name: `j${i}`, command: `c ${i % 3}`, input_files: [files[i]!._id, files[i + 1]!._id], input_user_data: [data[i % 7]!._id], output_files: [files[(i * 7) % N]!._id],
    })));
  });
});

describe('bulk reads give the same answer as the port', () => {
  it('bulkNeighbors = neighbors, both directions, scanning or not', async () => {
    const ids = jobs.map((j) => j._id);
    for (const part of [ids, ids.slice(0, 10)]) {
      expect(await bulkNeighbors(store, wf, 'needs', part, 'outbound')).toEqual(await store.neighbors('needs', wf, part, 'outbound'));
    }
    const fileIds = (await store.find('files', wf)).items.map((f) => f._id);
    expect(await bulkNeighbors(store, wf, 'produces', fileIds, 'inbound')).toEqual(await store.neighbors('produces', wf, fileIds, 'inbound'));
    expect(await bulkEdges(store, wf, 'needs', ids, 'outbound')).toEqual(await store.edges('needs', wf, { from: ids }));
  });

  it('docsById finds the same documents as getMany, and nothing of another workflow', async () => {
    const all = (await store.find('files', wf)).items;
    const got = await docsById(store, wf, [...all.map((f) => f._id), ...otherFiles.map((f) => f._id), 'files/does-not-exist']);
    expect([...got.values()]).toEqual(all);
    const few = await docsById(store, wf, [all[3]!._id, otherFiles[0]!._id]);
    expect([...few.keys()]).toEqual([all[3]!._id]);
  });

  it('computeJobInputHashes = computeJobInputHash for every job', async () => {
    const bulk = await computeJobInputHashes(store, wf, jobs);
    for (const j of jobs.slice(0, 50)) expect(bulk.get(j._id)).toBe(await computeJobInputHash(store, wf, j));
    expect(bulk.get(jobs[N - 1]!._id)).toBe(await computeJobInputHash(store, wf, jobs[N - 1]!));
  });

  it('job specifications read in bulk match those read one by one', async () => {
    const bulk = await jobSpecifications(store, wf, jobs);
    for (const i of [0, 1, 500, N - 1]) expect(bulk[i]).toEqual((await jobSpecifications(store, wf, [jobs[i]!]))[0]);
    expect(bulk[3]).toMatchObject({ name: 'j3', input_files: ['f3', 'f4'], input_user_data: ['u3'], output_files: ['f21'] });
  });
});
