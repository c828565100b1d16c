/**
 * Pre-start checks: the input files that nothing produces (they must exist before a start) and
 * the user data that should hold data but does not. Each list is distinct (Torc 0.6.4 listed an
 * entry once per job that needed it).
 */
import type { Doc, GraphStore } from '../store/port.js';

/**
 * `GET /workflows/{key}/required_existing_files`: keys of the files some job needs and no job
 * produces, in the order the workflow's `needs` edges were made.
 */
export async function requiredExistingFiles(store: GraphStore, workflow: string): Promise<string[]> {
  const needed = new Set((await store.edges('needs', workflow, {})).map((e) => e._to));
  const produced = new Set((await store.edges('produces', workflow, {})).map((e) => e._to));
  return [...needed].filter((id) => !produced.has(id)).map((id) => id.slice(id.lastIndexOf('/') + 1));
}

/** True when a user data document holds nothing: `data` absent, null or `{}`. */
export function isEmptyUserData(doc: Doc): boolean {
  const data = doc.data;
  if (data === undefined || data === null) return true;
  return typeof data === 'object' && !Array.isArray(data) && Object.keys(data).length === 0;
}

/**
 * `GET /workflows/{key}/missing_user_data`: keys of the consumed user data that is empty (data
 * absent, null or `{}`) although it should hold data now: nothing stores it (so the user must
 * supply it), or every job that stores it is `done` (so it should have been written).
 */
export async function missingUserData(store: GraphStore, workflow: string): Promise<string[]> {
  const consumed = [...new Set((await store.edges('consumes', workflow, {})).map((e) => e._to))];
  if (consumed.length === 0) return [];
  const storers = new Map<string, string[]>();
  for (const e of await store.edges('stores', workflow, { to: consumed })) {
    const list = storers.get(e._to) ?? [];
    list.push(e._from);
    storers.set(e._to, list);
  }
  const storerKeys = [...new Set([...storers.values()].flat())].map((id) => id.slice(id.lastIndexOf('/') + 1));
  const status = new Map((await store.getMany('jobs', workflow, storerKeys)).map((j) => [j._id, j.status]));
  const docs = await store.getMany('user_data', workflow, consumed.map((id) => id.slice(id.lastIndexOf('/') + 1)));
  return docs
    .filter((ud) => {
      if (!isEmptyUserData(ud)) return false;
      const by = storers.get(ud._id) ?? [];
      return by.length === 0 || by.every((id) => status.get(id) === 'done');
    })
    .map((ud) => ud._key);
}
