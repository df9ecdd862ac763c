import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

export type Access = 'open' | 'read' | 'write';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: anyone, a read or admin key, or the admin key. */
    access?: Access;
  }
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Compares digests (always 32 bytes) in constant time: neither the key's
 * length nor how much of it matched shows in the timing.
 */
function same(given: Buffer, key: Buffer | undefined): boolean {
  return key !== undefined && timingSafeEqual(given, key);
}

function presentedKey(request: FastifyRequest): string | undefined {
  // the scheme is case-insensitive (RFC 9110 section 11.1)
  const bearer = /^bearer[ \t]+(.+)$/i.exec(request.headers.authorization ?? '');
  if (bearer) return bearer[1].trim();
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
  const adminDigest = keys.apiKey ? digest(keys.apiKey) : undefined;
  const readDigest = keys.readKey ? digest(keys.readKey) : undefined;
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access ?? 'write';
    if (access === 'open') return;
    const key = presentedKey(request);
    if (key === undefined) throw new ApiError(401, 'unauthorized', 'an API key is required (Authorization: Bearer KEY or api-key: KEY)');
    const given = digest(key);
    // both comparisons always run: which key matched does not show in the timing either
    const admin = same(given, adminDigest);
    const read = same(given, readDigest);
    if (admin) return;
    if (read) {
      if (access === 'read') return;
      throw new ApiError(403, 'forbidden', 'the read-only key cannot change data');
    }
    throw new ApiError(401, 'unauthorized', 'the API key is not valid');
  });
}
