/** The retry policy of the ArangoDB adapter: which failures are transient, and the backoff. */
import { describe, expect, it } from 'vitest';
import { ArangoError, FetchFailedError, HttpError } from 'arangojs/errors';
import { backoffDelayMs, isTransient, redactUrl, toWeftError, withRetry } from '../../graph/store/arango-errors.js';
import { WeftError } from '../../graph/errors.js';

const req = new Request('http://127.0.0.1:8529/_api/cursor', { method: 'POST' });
const arango = (code: number, errorNum: number) => new ArangoError({ code, errorNum, errorMessage: `error ${errorNum}` });
const sysErr = (code: string) => Object.assign(new Error(code), { code, errno: -1, syscall: 'connect' });

describe('arango retry policy', () => {
  it('treats refusals the server reports as transient, and data errors as final', () => {
    expect(isTransient(arango(503, 503), false)).toBe(true);
    expect(isTransient(arango(503, 1495), false)).toBe(true); // leadership challenge
    expect(isTransient(arango(503, 1496), false)).toBe(true); // not the leader
    expect(isTransient(arango(409, 1200), false)).toBe(true); // write-write conflict
    expect(isTransient(arango(409, 1210), false)).toBe(false); // unique constraint
    expect(isTransient(arango(404, 1202), true)).toBe(false);
    expect(isTransient(new WeftError('STORE_UNAVAILABLE'), true)).toBe(false);
  });

  it('retries a refused connection always, a reset connection only for reads', () => {
    const refused = new FetchFailedError('fetch failed', req, { cause: Object.assign(new TypeError('fetch failed'), { cause: sysErr('ECONNREFUSED') }) });
    const reset = new FetchFailedError('fetch failed', req, { cause: Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) }) });
    expect(isTransient(refused, false)).toBe(true);
    expect(isTransient(reset, true)).toBe(true);
    expect(isTransient(reset, false)).toBe(false);
  });

  it('backs off exponentially with full jitter under the cap', () => {
    const policy = { retries: 8, baseDelayMs: 50, maxDelayMs: 2000 };
    expect(backoffDelayMs(policy, 0, () => 0.999)).toBe(49);
    expect(backoffDelayMs(policy, 3, () => 0.999)).toBe(399);
    expect(backoffDelayMs(policy, 10, () => 0.999)).toBe(1998);
    expect(backoffDelayMs(policy, 10, () => 0)).toBe(0);
  });

  it('withRetry stops after the policy retries and rethrows the last failure', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw arango(503, 503);
        },
        { idempotent: true, policy: { retries: 3, baseDelayMs: 1, maxDelayMs: 2 } },
      ),
    ).rejects.toBeInstanceOf(ArangoError);
    expect(calls).toBe(4);
    calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw arango(409, 1210);
        },
        { idempotent: true, policy: { retries: 3, baseDelayMs: 1, maxDelayMs: 2 } },
      ),
    ).rejects.toBeInstanceOf(ArangoError);
    expect(calls).toBe(1);
  });

  it('never shows credentials of a URL in a message', () => {
    expect(redactUrl('http://root:pw@db:8529/')).toBe('http://db:8529');
    const err = toWeftError(new HttpError(Object.assign(new Response(null, { status: 503 }), { request: req, parsedBody: undefined, arangojsHostUrl: '' }) as never), 'http://u:secret@db:8529', 'get jobs/1');
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).not.toContain('secret');
    expect(err.message).toContain('http://db:8529');
  });
});
