/**
 * Event views: the newest event's timestamp, and the events after a timestamp in a stable order
 * (timestamp, then insertion order), with a category filter and real paging, so a monitor that
 * advances its cursor never skips events that share a millisecond when it pages with skip.
 */
import type { Condition, GraphStore } from '../store/port.js';
import type { Page, PageOptions } from './views-paging.js';

/** The largest event timestamp of the workflow (ms since the epoch), or null without events. */
export async function latestEventTimestamp(store: GraphStore, workflow: string): Promise<number | null> {
  const found = await store.find('events', workflow, {
    where: [{ field: 'timestamp', op: '!=', value: null }],
    sort: [{ field: 'timestamp', direction: 'desc' }],
    limit: 1,
  });
  const ts = found.items[0]?.timestamp;
  return typeof ts === 'number' ? ts : null;
}

/** Events with `timestamp > after` (optionally of one category), sorted by timestamp then insertion, paged. */
export async function eventsAfterTimestamp(
  store: GraphStore,
  workflow: string,
  after: number,
  opts: PageOptions & { category?: string } = {},
): Promise<Page> {
  const where: Condition[] = [{ field: 'timestamp', op: '>', value: after }];
  if (opts.category !== undefined) where.push({ field: 'category', op: '==', value: opts.category });
  const skip = opts.skip ?? 0;
  const found = await store.find('events', workflow, {
    where,
    sort: [{ field: 'timestamp', direction: 'asc' }],
    skip,
    ...(opts.limit === undefined ? {} : { limit: opts.limit }),
    withTotal: true,
  });
  return { items: found.items, skip, total: found.totalCount };
}
