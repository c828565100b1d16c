/**
 * Event view routes: the newest event timestamp, and the events after a timestamp (sorted by
 * timestamp then insertion order, with a category filter and real paging).
 */
import { z } from 'zod';
import { eventsAfterTimestamp, latestEventTimestamp } from '../../graph/engine/views-events.js';
import { EventSchema } from '../../graph/model.js';
import type { ApiRouter } from '../api-router.js';
import { assertWorkflow, batchSchema } from '../route-helpers.js';
import { PagingQueryShape, WorkflowKeyParam } from '../validate.js';
import { batchOf, pagingOf } from './views-jobs.js';

/** A timestamp path parameter: milliseconds since the epoch, a decimal number. */
const TimestampParam = z
  .string()
  .regex(/^-?\d{1,16}(\.\d+)?$/, 'must be a number of milliseconds since the epoch')
  .transform(Number)
  .meta({ description: 'Milliseconds since the epoch (UTC)' });

export function registerViewsEventRoutes(api: ApiRouter): void {
  const tags = ['events'];
  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/latest_event_timestamp',
      summary: 'Return the timestamp of the latest event (ms since the epoch, UTC), or null when there are none',
      operationId: 'get_latest_event_timestamp',
      tags,
      params: z.object({ key: WorkflowKeyParam }),
      response: z.object({ timestamp: z.number().nullable() }),
    },
    async ({ deps, params }) => {
      await assertWorkflow(deps.store, params.key);
      return { timestamp: await latestEventTimestamp(deps.store, params.key) };
    },
  );
  api.route(
    {
      method: 'get',
      path: '/workflows/{key}/events_after_timestamp/{timestamp}',
      summary: 'Return the events with a timestamp greater than the given one, oldest first',
      description: 'Sorted by timestamp, then insertion order; category filters; skip and limit page the sorted result.',
      operationId: 'get_events_after_timestamp',
      tags,
      params: z.object({ key: WorkflowKeyParam, timestamp: TimestampParam }),
      query: z.strictObject({ ...PagingQueryShape, category: z.string().min(1).optional() }),
      response: batchSchema(EventSchema),
    },
    async ({ deps, params, query }) => {
      await assertWorkflow(deps.store, params.key);
      const page = await eventsAfterTimestamp(deps.store, params.key, params.timestamp, {
        ...pagingOf(query),
        ...(query.category === undefined ? {} : { category: query.category }),
      });
      return batchOf(page);
    },
  );
}
