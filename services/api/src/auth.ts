import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

export type Access = 'open' | 'read' | 'write';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: anyone, a read or admin key, or the admin key. */
    access?: Access;
  }
}

function same(given: string, key: string | undefined): boolean {
  if (!key) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  const apiKey = request.headers['api-key'];
  return typeof apiKey === 'string' ? apiKey : undefined;
}

/**
 * API keys, when configured: the admin key may do everything, the read key
 * may search and read. No key: 401; the read key on a write route: 403.
 * With no key configured at all the API is open.
 */
export function registerAuth(app: FastifyInstance, keys: { apiKey?: string; readKey?: string }): void {
  if (!keys.apiKey && !keys.readKey) return;
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access ?? 'write';
    if (access === 'open') return;
    const key = presentedKey(request);
    if (key === undefined) throw new ApiError(401, 'unauthorized', 'an API key is required (Authorization: Bearer KEY or api-key: KEY)');
    if (same(key, keys.apiKey)) return;
    if (same(key, keys.readKey)) {
      if (access === 'read') return;
      throw new ApiError(403, 'forbidden', 'the read-only key cannot change data');
    }
    throw new ApiError(401, 'unauthorized', 'the API key is not valid');
  });
}
