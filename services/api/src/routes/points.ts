import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PointId, Store } from '@adanns/store';
import { ApiError } from '../errors.js';
import type { ServiceMetrics } from '../metrics.js';
import { CollectionName, CountBody, CountReply, DeleteBody, ErrorReply, PointPath, PointQuery, PointReply, UpsertBody, WriteReply } from '../schemas.js';

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 413: ErrorReply, 503: ErrorReply };

/**
 * A path id of digits names the integer id; `?type=string` asks for the
 * string of those digits instead (1 and "1" are different points).
 */
export function pathId(id: string, type: 'int' | 'string' | undefined): PointId {
  if (type === 'string') return id;
  if (/^[0-9]+$/.test(id)) {
    const n = Number(id);
    if (!Number.isSafeInteger(n)) throw new ApiError(400, 'invalid', `point id ${id} is beyond the integer range`);
    return n;
  }
  if (type === 'int') throw new ApiError(400, 'invalid', `point id "${id}" is not an integer`);
  return id;
}

/** Points: batched upsert and delete by ids or by filter (atomic per batch, acknowledged once durable), get by id, count by filter. */
export const pointRoutes: FastifyPluginAsyncTypebox<{ store: Store; maxBatch: number; metrics: ServiceMetrics }> = async (app, { store, maxBatch, metrics }) => {
  const checkBatch = (n: number, what: string) => {
    if (n > maxBatch) throw new ApiError(413, 'too_large', `${n} ${what} in one request, the limit is ${maxBatch}`);
  };

  app.post('/v1/collections/:name/points', { schema: { params: CollectionName, body: UpsertBody, response: { 200: WriteReply, ...errors } } }, async (request) => {
    const { points } = request.body;
    checkBatch(points.length, 'points');
    const result = await store.get(request.params.name).upsert(points);
    metrics.ingested.inc({ collection: request.params.name }, result.upserted);
    return result;
  });

  app.delete('/v1/collections/:name/points', { schema: { params: CollectionName, body: DeleteBody, response: { 200: WriteReply, ...errors } } }, async (request) => {
    const { ids, filter, all } = request.body;
    if ((ids === undefined) === (filter === undefined)) throw new ApiError(400, 'invalid', 'give exactly one of ids and filter');
    if (all !== undefined && filter === undefined) throw new ApiError(400, 'invalid', '"all" goes with a filter (it allows deleting more points than the batch limit)');
    // a filter matching more than a batch is refused unless the caller says so: {filter: {}} matches every point
    if (filter !== undefined) return store.get(request.params.name).deleteByFilter(filter, all === true ? {} : { limit: maxBatch });
    checkBatch(ids!.length, 'ids');
    return store.get(request.params.name).delete(ids!);
  });

  app.post('/v1/collections/:name/points/count', { config: { access: 'read' }, schema: { params: CollectionName, body: CountBody, response: { 200: CountReply, ...errors } } }, async (request) =>
    store.get(request.params.name).countPoints(request.body?.filter),
  );

  app.get('/v1/collections/:name/points/:id', { config: { access: 'read' }, schema: { params: PointPath, querystring: PointQuery, response: { 200: PointReply, ...errors } } }, async (request) => {
    const id = pathId(request.params.id, request.query.type);
    const point = store.get(request.params.name).get(id);
    if (!point) throw new ApiError(404, 'not_found', `no point ${JSON.stringify(id)} in collection ${request.params.name}`);
    return point;
  });
};
