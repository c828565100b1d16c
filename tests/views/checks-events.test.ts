import { describe, expect, it } from 'vitest';
import { testServerForSuite } from '../helpers/server.js';
import { bind, buildWorkflow, ok } from './helpers.js';

const srv = testServerForSuite();
const call = bind(srv);

describe('required_existing_files', () => {
  it('lists each file that jobs need and no job produces, once', async () => {
    const { wf, keys } = await buildWorkflow(call, {
      files: { raw: { path: 'raw' }, cfg: { path: 'cfg' }, mid: { path: 'mid' }, out: { path: 'out' } },
      jobs: {
        a: { needs: ['raw', 'cfg'], produces: ['mid'] },
        b: { needs: ['raw', 'mid'], produces: ['out'] },
        c: { needs: ['raw', 'cfg'] },
      },
    });
    const body = await ok(call, 'GET', `/workflows/${wf}/required_existing_files`);
    expect(body.files.sort()).toEqual([keys['files:raw'], keys['files:cfg']].sort());
  });

  it('is empty for a workflow without inputs', async () => {
    const { wf } = await buildWorkflow(call, { jobs: { only: {} } });
    expect(await ok(call, 'GET', `/workflows/${wf}/required_existing_files`)).toEqual({ files: [] });
  });
});

describe('missing_user_data', () => {
  it('lists empty consumed data that nothing stores or whose storers are done, once each', async () => {
    const { wf, keys } = await buildWorkflow(call, {
      user_data: {
        given: { data: { v: 1 } },
        emptyInput: { data: {} },
        nullInput: {},
        produced: { data: {} },
        producedLater: { data: {} },
        producedFull: { data: { ok: true } },
      },
      jobs: {
        p: { stores: ['produced'] },
        q: { stores: ['producedLater'] },
        r: { stores: ['producedFull'] },
        c1: { consumes: ['given', 'emptyInput', 'nullInput', 'produced', 'producedLater', 'producedFull'] },
        c2: { consumes: ['emptyInput', 'nullInput', 'produced'] },
      },
    });
    // p and r finished; q has not run yet
    for (const j of ['p', 'r']) {
      const doc = await ok(call, 'GET', `/workflows/${wf}/jobs/${keys[j]}`);
      await ok(call, 'PUT', `/workflows/${wf}/jobs/${keys[j]}`, { _rev: doc._rev, status: 'done' });
    }
    const body = await ok(call, 'GET', `/workflows/${wf}/missing_user_data`);
    expect(body.user_data.sort()).toEqual([keys['user_data:emptyInput'], keys['user_data:nullInput'], keys['user_data:produced']].sort());
  });
});

describe('events', () => {
  it('latest_event_timestamp is null without events, then the newest timestamp', async () => {
    const { wf } = await buildWorkflow(call, { jobs: {} });
    expect(await ok(call, 'GET', `/workflows/${wf}/latest_event_timestamp`)).toEqual({ timestamp: null });
    const before = Date.now();
    const e1 = await ok(call, 'POST', `/workflows/${wf}/events`, { category: 'job', type: 'start', message: 'one' });
    const e2 = await ok(call, 'POST', `/workflows/${wf}/events`, { category: 'worker', type: 'start', message: 'two' });
    const ts = (await ok(call, 'GET', `/workflows/${wf}/latest_event_timestamp`)).timestamp;
    expect(ts).toBe(Math.max(e1.timestamp, e2.timestamp));
    expect(ts).toBeGreaterThanOrEqual(before);
  });

  it('events_after_timestamp: strictly after, sorted by timestamp then insertion, filtered by category, paged', async () => {
    const { wf } = await buildWorkflow(call, { jobs: {} });
    // Events written straight into the store so several share a millisecond and insertion order
    // differs from timestamp order.
    const put = (timestamp: number, category: string, message: string) =>
      srv.store.insert('events', wf, { timestamp, category, type: 't', message });
    await put(300, 'job', 'e300');
    await put(100, 'job', 'e100');
    await put(200, 'worker', 'w200');
    await put(200, 'job', 'e200a');
    await put(200, 'job', 'e200b');
    await put(50, 'job', 'e50');
    const msgs = (b: { items: { message: string }[] }) => b.items.map((e) => e.message);

    const all = await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/50`);
    expect(msgs(all)).toEqual(['e100', 'w200', 'e200a', 'e200b', 'e300']);
    expect(all).toMatchObject({ total_count: 5, count: 5, has_more: false });

    const jobs = await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/100?category=job`);
    expect(msgs(jobs)).toEqual(['e200a', 'e200b', 'e300']);

    const p1 = await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/0?limit=2`);
    const p2 = await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/0?limit=2&skip=2`);
    const p3 = await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/0?limit=2&skip=4`);
    expect([...msgs(p1), ...msgs(p2), ...msgs(p3)]).toEqual(['e50', 'e100', 'w200', 'e200a', 'e200b', 'e300']);
    expect([p1.has_more, p2.has_more, p3.has_more]).toEqual([true, true, false]);

    expect(msgs(await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/300`))).toEqual([]);
    expect(msgs(await ok(call, 'GET', `/workflows/${wf}/events_after_timestamp/199.5?category=worker`))).toEqual(['w200']);
    expect((await ok(call, 'GET', `/workflows/${wf}/latest_event_timestamp`)).timestamp).toBe(300);
  });

  it('rejects a timestamp that is not a number and an unknown query parameter', async () => {
    const { wf } = await buildWorkflow(call, { jobs: {} });
    const bad = await call('GET', `/workflows/${wf}/events_after_timestamp/yesterday`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toEqual(['timestamp']);
    const unknown = await call('GET', `/workflows/${wf}/events_after_timestamp/0?kind=job`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details[0].path).toEqual(['kind']);
  });
});
