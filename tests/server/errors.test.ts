/**
 * The error rule through a real server: a fault of ours is a 500 whose body shows nothing
 * internal while the log has it in full; a WeftError keeps its status and message.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WeftError } from '../../graph/errors.js';
import { createApp } from '../../server/app.js';
import { resolveServerConfig } from '../../server/config.js';
import { api } from '../helpers/server.js';
import { testStoreForSuite } from '../helpers/store.js';

const logLines: string[] = [];
const store = testStoreForSuite('weft-errors-');
let server: import('node:http').Server;
let base: string;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'error' }, sink);
  const config = resolveServerConfig({ env: {}, flags: { port: 0 } });
  const app = createApp({ store, config, logger });
  app.api.route({ method: 'get', path: '/boom', summary: 'test fault' }, () => {
    throw new Error('secret detail: /var/lib/weft/passwords');
  });
  app.api.route({ method: 'get', path: '/conflict', summary: 'test state conflict' }, () => {
    throw new WeftError('STATE_CONFLICT', 'job 7 is running', { details: [{ path: ['status'], message: 'running', rule: 'state' }] });
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${config.basePath}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

it('a fault of ours is a 500 with no internals in the body, logged in full', async () => {
  const res = await api(base, 'GET', '/boom');
  expect(res.status).toBe(500);
  expect(res.body).toEqual({ error: { code: 'INTERNAL', message: 'Internal error', details: [], retryable: false } });
  expect(JSON.stringify(res.body)).not.toContain('secret');
  const logged = logLines.join('');
  expect(logged).toContain('secret detail: /var/lib/weft/passwords');
  expect(logged).toContain('/boom');
  // The server keeps serving.
  expect((await api(base, 'GET', '/ping')).status).toBe(200);
});

it('a WeftError keeps its catalogue status, message and details', async () => {
  const res = await api(base, 'GET', '/conflict');
  expect(res.status).toBe(409);
  expect(res.body.error).toMatchObject({ code: 'STATE_CONFLICT', message: 'job 7 is running', details: [{ path: ['status'], rule: 'state' }] });
});

it('every response carries a request id, echoed when the client sends one', async () => {
  const res = await api(base, 'GET', '/ping', undefined, { 'x-request-id': 'abc-123' });
  expect(res.headers.get('x-request-id')).toBe('abc-123');
  expect((await api(base, 'GET', '/ping')).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
});
