/**
 * The client's retry: a call made while the server is down lands once it is up (the worker's
 * completion reports rely on this); a 4xx is the caller's fault and is not retried; past the
 * retry window the call fails with SERVER_UNREACHABLE.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { WeftApiError, WeftClient, WeftUnreachableError } from '../../client/index.js';
import { freePort } from '../helpers/ports.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let srv: TestServer | undefined;
afterAll(async () => srv?.close());

describe('WeftClient retries', () => {
  it('a call made while the server is down completes when the server comes up', async () => {
    const port = await freePort();
    const client = new WeftClient(`http://127.0.0.1:${port}/torc-service`, { retryMinutes: 1 });
    const retries: number[] = [];
    const c2 = new WeftClient(client.baseUrl, { retryMinutes: 1, onRetry: (i) => retries.push(i.attempt) });
    const pending = c2.add('x', 'files', { name: 'f', path: '/tmp/f' }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 1_000));
    srv = await startTestServer({ flags: { port } });
    const wf = await client.request<{ _key: string }>('POST', '/workflows', { body: { name: 'w', user: 'u' } });
    expect(retries.length).toBeGreaterThan(0);
    // the early call was for an unknown workflow: once the server is up it is answered (404), not lost
    const early = await pending;
    expect(early).toBeInstanceOf(WeftApiError);
    expect((early as WeftApiError).status).toBe(404);
    const file = await client.add(wf._key, 'files', { name: 'f', path: '/tmp/f' });
    expect(file._key).toBeTruthy();
  });

  it('does not retry a 4xx', async () => {
    const retries: number[] = [];
    const client = new WeftClient(srv!.baseUrl, { retryMinutes: 1, onRetry: (i) => retries.push(i.attempt) });
    await expect(client.get('no-such-workflow', 'jobs', 'nope')).rejects.toMatchObject({ status: 404 });
    expect(retries).toEqual([]);
  });

  it('gives up after the retry window with SERVER_UNREACHABLE', async () => {
    const port = await freePort();
    const client = new WeftClient(`http://127.0.0.1:${port}/torc-service`, { retryMinutes: 0.02 });
    const err = await client.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeftUnreachableError);
    expect((err as WeftUnreachableError).code).toBe('SERVER_UNREACHABLE');
  });
});
