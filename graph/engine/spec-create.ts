/**
 * `POST /workflow_specifications`: create a workflow from a specification, whole or not at all.
 *
 * The spec is checked whole in memory first (spec-plan.ts: every fault in one 400, cycles
 * included), then everything is written in one store transaction: the workflow with its config
 * and status, files, user data, resource requirements, schedulers, jobs (status
 * `uninitialized`; initialize_jobs derives the rest), and their edges, each collection with one
 * insertMany. A failure inside the transaction (a taken `key`, say) rolls all of it back.
 */
import type { EdgeCollectionName } from '../model.js';
import type { Doc, GraphStore } from '../store/port.js';
import { planSpecification, SCHEDULER_COLLECTIONS, type PlannedEdge, type SpecCollection, type SpecPlan } from './spec-plan.js';
import { createWorkflow } from './workflow-create.js';

/** Create the workflow a specification describes; returns the workflow document (as POST /workflows does). */
export async function createWorkflowFromSpec(store: GraphStore, body: unknown): Promise<Doc> {
  const plan = planSpecification(body);
  return store.transaction((tx) => writePlan(tx, plan));
}

async function writePlan(tx: GraphStore, plan: SpecPlan): Promise<Doc> {
  const wf = await createWorkflow(tx, plan.workflow, { config: plan.config });
  const w = wf._key;
  const ids = {} as Record<SpecCollection, string[]>;
  for (const coll of ['files', 'user_data', 'resource_requirements', ...SCHEDULER_COLLECTIONS] as const) {
    ids[coll] = plan.docs[coll].length === 0 ? [] : (await tx.insertMany(coll, w, plan.docs[coll])).map((d) => d._id);
  }
  // schedule_compute_nodes.scheduler_id named a spec scheduler: store its _id, as Torc clients expect.
  for (const f of plan.scheduleFixups) {
    const job = plan.jobs[f.job]!;
    job.schedule_compute_nodes = { ...(job.schedule_compute_nodes as Record<string, unknown>), scheduler_id: ids[f.collection][f.index] };
  }
  const jobIds = plan.jobs.length === 0 ? [] : (await tx.insertMany('jobs', w, plan.jobs)).map((d) => d._id);

  const out = (list: readonly PlannedEdge[], targets: readonly string[]) => list.map((e) => ({ _from: jobIds[e.job]!, _to: targets[e.index]! }));
  const edges: [EdgeCollectionName, Record<string, unknown>[]][] = [
    ['blocks', plan.blocks.map((e) => ({ _from: jobIds[e.index]!, _to: jobIds[e.job]! }))],
    ['needs', out(plan.needs, ids.files)],
    ['produces', out(plan.produces, ids.files)],
    ['consumes', out(plan.consumes, ids.user_data)],
    ['stores', out(plan.stores, ids.user_data)],
    ['requires', out(plan.requires, ids.resource_requirements)],
    ['scheduled_bys', plan.scheduledBys.map((e) => ({ _from: jobIds[e.job]!, _to: ids[e.collection][e.index]! }))],
  ];
  for (const [edge, docs] of edges) if (docs.length > 0) await tx.insertMany(edge, w, docs);
  return wf;
}
