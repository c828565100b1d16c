/** Service routes: ping and version. */
import { z } from 'zod';
import type { ApiRouter } from '../api-router.js';
import { API_VERSION, WEFT_VERSION } from '../version.js';

export function registerServiceRoutes(api: ApiRouter): void {
  api.route(
    {
      method: 'get',
      path: '/ping',
      summary: 'Check if the service is running',
      operationId: 'ping',
      tags: ['service'],
      response: z.object({ message: z.string() }),
    },
    () => ({ message: 'weft service is running' }),
  );
  api.route(
    {
      method: 'get',
      path: '/version',
      summary: 'Return the version of the service',
      operationId: 'get_version',
      tags: ['service'],
      response: z.object({ version: z.string(), api_version: z.string(), store: z.string() }),
    },
    ({ deps }) => ({ version: WEFT_VERSION, api_version: API_VERSION, store: deps.store.capabilities.kind }),
  );
}
