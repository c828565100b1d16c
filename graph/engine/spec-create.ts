/**
 * `POST /workflow_specifications`: create a workflow from a specification, whole or not at all.
 *
 * The spec is checked whole in memory first (spec-plan.ts: every fault in one 400, cycles
 * included), then everything is written in one store transaction: the workflow with its config
 * and status, files, user data, resource requirements, schedulers, jobs (status
 * `uninitialized`; initialize_jobs derives the rest), and their edges, each collection with one
 * insertMany. A failure inside the transaction (a taken `key`, say) rolls all of it back.
 */
import type { CollectionName, EdgeCollectionName } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { planSpecification, SCHEDULER_COLLECTIONS, type Pairs, type SpecCollection, type SpecPlan } from './spec-plan.js';
import { createWorkflow } from './workflow-create.js';

/** Create the workflow a specification describes; returns the workflow document (as POST /workflows does). */
export async function createWorkflowFromSpec(store: GraphStore, body: unknown): Promise<Doc> {
  const plan = planSpecification(body);
  return store.transaction((tx) => writePlan(tx, plan));
}

/**
 * Rows per insertMany call. The port returns whole documents; writing in slices and keeping only
 * their ids means a million-job spec never holds a second full copy of its jobs.
 */
const SLICE = 10_000;

async function insertIds(tx: GraphStore, collection: CollectionName, workflow: string, docs: readonly Record<string, unknown>[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < docs.length; i += SLICE) {
    for (const d of await tx.insertMany(collection, workflow, docs.slice(i, i + SLICE))) ids.push(d._id);
  }
  return ids;
}

/** Edge documents for flat pairs, written a slice at a time. */
async function insertPairs(tx: GraphStore, edge: EdgeCollectionName, workflow: string, pairs: Pairs, toDoc: (a: number, b: number) => Record<string, unknown>): Promise<void> {
  for (let i = 0; i < pairs.length; i += 2 * SLICE) {
    const docs: Record<string, unknown>[] = [];
    for (let k = i; k < Math.min(pairs.length, i + 2 * SLICE); k += 2) docs.push(toDoc(pairs[k]!, pairs[k + 1]!));
    await tx.insertMany(edge, workflow, docs);
  }
}

async function writePlan(tx: GraphStore, plan: SpecPlan): Promise<Doc> {
  const wf = await createWorkflow(tx, plan.workflow, { config: plan.config });
  const w = wf._key;
  const ids = {} as Record<SpecCollection, string[]>;
  for (const coll of ['files', 'user_data', 'resource_requirements', ...SCHEDULER_COLLECTIONS] as const) ids[coll] = await insertIds(tx, coll, w, plan.docs[coll]);
  // schedule_compute_nodes.scheduler_id named a spec scheduler: store its _id, as Torc clients expect.
  for (const f of plan.scheduleFixups) {
    const job = plan.jobs[f.job]!;
    job.schedule_compute_nodes = { ...(job.schedule_compute_nodes as Record<string, unknown>), scheduler_id: ids[f.collection][f.index] };
  }
  const jobIds = await insertIds(tx, 'jobs', w, plan.jobs);

  const out = (targets: readonly string[]) => (job: number, index: number) => ({ _from: jobIds[job]!, _to: targets[index]! });
  await insertPairs(tx, 'blocks', w, plan.blocks, (job, blocker) => ({ _from: jobIds[blocker]!, _to: jobIds[job]! }));
  await insertPairs(tx, 'needs', w, plan.needs, out(ids.files));
  await insertPairs(tx, 'produces', w, plan.produces, out(ids.files));
  await insertPairs(tx, 'consumes', w, plan.consumes, out(ids.user_data));
  await insertPairs(tx, 'stores', w, plan.stores, out(ids.user_data));
  await insertPairs(tx, 'requires', w, plan.requires, out(ids.resource_requirements));
  const scheduled = plan.scheduledBys.map((e) => ({ _from: jobIds[e.job]!, _to: ids[e.collection][e.index]! }));
  for (let i = 0; i < scheduled.length; i += SLICE) await tx.insertMany('scheduled_bys', w, scheduled.slice(i, i + SLICE));
  return wf;
}
