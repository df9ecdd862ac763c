import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Budget } from '@adanns/core';
import type { SearchLimits as StoreSearchLimits, Store } from '@adanns/store';
import { ApiError } from '../errors.js';
import type { ServiceMetrics } from '../metrics.js';
import type { Static } from '@sinclair/typebox';
import { CollectionName, ErrorReply, SearchBody, SearchReply } from '../schemas.js';

export interface SearchLimits {
  maxBatch: number;
  maxK: number;
  maxInflight: number;
  /** Largest search body in bytes. */
  maxBodyBytes: number;
  /** Work and answer bounds, and the slice size, handed to the collection. */
  work: StoreSearchLimits;
}

/**
 * A search body checked against the limits (400/413 naming what is wrong) and
 * turned into its query vectors and the collection's search options; the
 * single-node route and the cluster route both read bodies through it.
 */
export function readSearchBody(body: Static<typeof SearchBody>, limits: SearchLimits) {
  if ((body.vector === undefined) === (body.vectors === undefined)) throw new ApiError(400, 'invalid', 'give exactly one of vector and vectors');
  if (body.budget && body.params) throw new ApiError(400, 'invalid', 'give a budget or params, not both');
  if (body.k > limits.maxK) throw new ApiError(400, 'invalid', `k ${body.k} exceeds the limit ${limits.maxK}`);
  const queries = body.vectors ?? [body.vector];
  if (queries.length > limits.maxBatch) throw new ApiError(413, 'too_large', `${queries.length} query vectors in one request, the limit is ${limits.maxBatch}`);
  const options = {
    k: body.k,
    ...(body.params ? { params: body.params } : {}),
    ...(body.budget ? { budget: body.budget as Budget } : {}),
    ...(body.strict !== undefined ? { strict: body.strict } : {}),
    withPayload: body.withPayload ?? false,
    ...(body.filter !== undefined ? { filter: body.filter } : {}),
    limits: limits.work,
  };
  return { queries, options };
}

/**
 * Search, single (`vector`) or batched (`vectors`), with explicit `params`, a
 * `budget` the planner turns into params, or neither (the defaults). A search
 * counts as in flight from the moment its body has arrived and validated
 * (preHandler) to its answer, so searches waiting for their turn count too
 * but a slow client sending its body does not; past maxInflight the answer
 * is 429 with Retry-After, and a burst sheds load instead of queueing
 * without bound. The collection runs a batch in slices of bounded work, one
 * per event-loop turn, and refuses (413) a batch over the work limits.
 */
export const searchRoutes: FastifyPluginAsyncTypebox<{ store: Store; limits: SearchLimits; metrics: ServiceMetrics }> = async (app, { store, limits, metrics }) => {
  let inflight = 0;
  const admitted = new WeakSet<FastifyRequest>();
  app.post(
    '/v1/collections/:name/search',
    {
      config: { access: 'read' },
      bodyLimit: limits.maxBodyBytes,
      preHandler: async (request) => {
        if (inflight >= limits.maxInflight) throw new ApiError(429, 'too_many_requests', `${inflight} searches are in flight, the limit is ${limits.maxInflight}; retry shortly`, { 'retry-after': '1' });
        inflight++;
        metrics.searchesInFlight.set(inflight);
        admitted.add(request);
      },
      onResponse: async (request) => {
        if (admitted.delete(request)) metrics.searchesInFlight.set(--inflight);
      },
      onRequestAbort: async (request) => {
        if (admitted.delete(request)) metrics.searchesInFlight.set(--inflight);
      },
      schema: { params: CollectionName, body: SearchBody, response: { 200: SearchReply, 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 413: ErrorReply, 429: ErrorReply, 503: ErrorReply } },
    },
    async (request, reply) => {
      const { queries, options } = readSearchBody(request.body, limits);
      // a client that goes away stops its search at the next slice
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const searching = store.get(request.params.name).search(queries, { ...options, signal: gone.signal });
      // the collection copies the vectors it needs; the decoded body need not live as long as the search
      (request as { body: unknown }).body = undefined;
      const answer = await searching;
      metrics.searchMflops.observe({ collection: request.params.name }, answer.mflops);
      return answer;
    },
  );
};
