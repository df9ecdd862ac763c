import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ClusterNode } from '@adanns/cluster';
import { ApiError } from '../errors.js';
import type { ServiceMetrics } from '../metrics.js';
import { CollectionName, CountBody, CountReply, CreateCollection, DeleteBody, ErrorReply, PayloadIndexBody, PayloadIndexPath, PointPath, PointQuery, PointReply, SearchBody, SearchReply, UpsertBody } from '../schemas.js';
import { pathId } from './points.js';
import { readSearchBody, type SearchLimits } from './search.js';

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 413: ErrorReply, 429: ErrorReply, 503: ErrorReply };

const RequestId = Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'the same id on a retried write makes the retry a no-op (within the logs duplicate window)' }));
const ClusterCreate = Type.Object(
  { ...CreateCollection.properties, shards: Type.Optional(Type.Integer({ minimum: 1 })), replicas: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
const ClusterUpsert = Type.Object({ ...UpsertBody.properties, requestId: RequestId }, { additionalProperties: false });
const ClusterDelete = Type.Object({ ...DeleteBody.properties, requestId: RequestId }, { additionalProperties: false });
const ReadOptions = { after: Type.Optional(Type.String({ maxLength: 8192 })), timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })) };
const ClusterSearch = Type.Object({ ...SearchBody.properties, ...ReadOptions }, { additionalProperties: false });
const ClusterCount = Type.Object({ ...CountBody.properties, ...ReadOptions }, { additionalProperties: false });
const WriteAck = Type.Object({
  sequence: Type.Integer(),
  upserted: Type.Optional(Type.Integer()),
  accepted: Type.Optional(Type.Integer()),
  writeToken: Type.String(),
  /** Every message of this request was already in the logs (a retry with the same requestId): nothing new was written. */
  duplicate: Type.Optional(Type.Boolean()),
});
const ShardReport = Type.Object({ shard: Type.Integer(), node: Type.String(), tookMs: Type.Number(), retried: Type.Integer() });
const ClusterSearchReply = Type.Object({ ...SearchReply.properties, shards: Type.Array(ShardReport) });
const Loose = Type.Object({}, { additionalProperties: true });
const InternalPath = Type.Object({ name: CollectionName.properties.name, shard: Type.String({ pattern: '^[0-9]{1,3}$' }), op: Type.String({ maxLength: 16 }) });

/**
 * The HTTP API in cluster mode (`adanns serve --cluster`): the same routes as
 * a single node, answered by the cluster node (packages/cluster): writes go to
 * the shards' logs and are answered once JetStream acknowledged them (with a
 * writeToken a read may pass as `after`), reads are routed to live replicas.
 * Plus GET /v1/cluster, and the internal route other nodes call on this
 * node's replicas.
 */
export const clusterRoutes: FastifyPluginAsyncTypebox<{ cluster: ClusterNode; limits: SearchLimits; maxBatch: number; metrics: ServiceMetrics }> = async (app, { cluster, limits, maxBatch, metrics }) => {
  const checkBatch = (n: number, what: string) => {
    if (n > maxBatch) throw new ApiError(413, 'too_large', `${n} ${what} in one request, the limit is ${maxBatch}`);
  };

  app.get('/v1/cluster', { config: { access: 'read' }, schema: { response: { 200: Loose, ...errors } } }, async () => cluster.status());

  app.put('/v1/collections/:name', { schema: { params: CollectionName, body: ClusterCreate, response: { 201: Loose, ...errors } } }, async (request, reply) =>
    reply.status(201).send(await cluster.createCollection(request.params.name, request.body)),
  );
  app.get('/v1/collections', { config: { access: 'read' }, schema: { response: { 200: Loose, ...errors } } }, async () => ({ collections: await cluster.listCollections() }));
  app.get('/v1/collections/:name', { config: { access: 'read' }, schema: { params: CollectionName, response: { 200: Loose, ...errors } } }, async (request) => cluster.describe(request.params.name));
  app.delete('/v1/collections/:name', { schema: { params: CollectionName, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } } }, async (request) => {
    await cluster.dropCollection(request.params.name);
    return { deleted: true };
  });
  app.post('/v1/collections/:name/index', { schema: { params: CollectionName, response: { 202: WriteAck, ...errors } } }, async (request, reply) => reply.status(202).send(await cluster.build(request.params.name)));
  app.put('/v1/collections/:name/payload-index/:field', { schema: { params: PayloadIndexPath, body: PayloadIndexBody, response: { 202: WriteAck, ...errors } } }, async (request, reply) =>
    reply.status(202).send(await cluster.createPayloadIndex(request.params.name, request.params.field, request.body.type)),
  );
  app.delete('/v1/collections/:name/payload-index/:field', { schema: { params: PayloadIndexPath, response: { 202: WriteAck, ...errors } } }, async (request, reply) =>
    reply.status(202).send(await cluster.dropPayloadIndex(request.params.name, request.params.field)),
  );
  app.post('/v1/collections/:name/calibrate', { schema: { params: CollectionName, response: errors } }, async () => {
    throw new ApiError(400, 'invalid', 'calibration on given queries is not available in cluster mode yet: each replica calibrates on its own points when it builds');
  });

  app.post('/v1/collections/:name/points', { schema: { params: CollectionName, body: ClusterUpsert, response: { 200: WriteAck, ...errors } } }, async (request) => {
    const { points, requestId } = request.body;
    checkBatch(points.length, 'points');
    const result = await cluster.upsert(request.params.name, points, requestId);
    metrics.ingested.inc({ collection: request.params.name }, result.upserted);
    return result;
  });

  app.delete('/v1/collections/:name/points', { schema: { params: CollectionName, body: ClusterDelete, response: { 200: WriteAck, ...errors } } }, async (request) => {
    const { ids, filter, all, requestId } = request.body;
    if ((ids === undefined) === (filter === undefined)) throw new ApiError(400, 'invalid', 'give exactly one of ids and filter');
    if (filter !== undefined) {
      // each shard evaluates the filter when it applies the delete: no node can count the matches first
      if (all !== true) throw new ApiError(400, 'invalid', 'in cluster mode a delete by filter must say "all": true (the shards apply it each on its own, so the batch limit cannot be checked first)');
      return cluster.deleteByFilter(request.params.name, filter, requestId);
    }
    if (all !== undefined) throw new ApiError(400, 'invalid', '"all" goes with a filter (it allows deleting more points than the batch limit)');
    checkBatch(ids!.length, 'ids');
    return cluster.delete(request.params.name, ids!, requestId);
  });

  app.post('/v1/collections/:name/points/count', { config: { access: 'read' }, schema: { params: CollectionName, body: ClusterCount, response: { 200: CountReply, ...errors } } }, async (request) => {
    const { filter, after, timeoutMs } = request.body ?? {};
    return cluster.count(request.params.name, filter, { ...(after ? { after } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
  });

  app.get('/v1/collections/:name/points/:id', { config: { access: 'read' }, schema: { params: PointPath, querystring: Type.Object({ ...PointQuery.properties, after: Type.Optional(Type.String({ maxLength: 8192 })), local: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) }), response: { 200: PointReply, ...errors } } }, async (request) => {
    const id = pathId(request.params.id, request.query.type);
    // local=true: what this node's own replica of the point's shard holds (fault tests check every replica so)
    if (request.query.local === 'true') {
      const { held, point } = await cluster.localPoint(request.params.name, id);
      if (!held) throw new ApiError(404, 'not_found', `node ${cluster.nodeId} holds no replica of the shard of point ${JSON.stringify(id)}`);
      if (!point) throw new ApiError(404, 'not_found', `no point ${JSON.stringify(id)} in this node's replica of collection ${request.params.name}`);
      return point;
    }
    const point = await cluster.getPoint(request.params.name, id, request.query.after ? { after: request.query.after } : {});
    if (!point) throw new ApiError(404, 'not_found', `no point ${JSON.stringify(id)} in collection ${request.params.name}`);
    return point;
  });

  let inflight = 0;
  app.post('/v1/collections/:name/search', { config: { access: 'read' }, bodyLimit: limits.maxBodyBytes, schema: { params: CollectionName, body: ClusterSearch, response: { 200: ClusterSearchReply, ...errors } } }, async (request) => {
    const body = request.body;
    const { queries, options } = readSearchBody(body, limits);
    if (inflight >= limits.maxInflight) throw new ApiError(429, 'too_many_requests', `${inflight} searches are in flight, the limit is ${limits.maxInflight}; retry shortly`, { 'retry-after': '1' });
    inflight++;
    try {
      const answer = await cluster.search(
        request.params.name,
        queries,
        options,
        { ...(body.after ? { after: body.after } : {}), ...(body.timeoutMs ? { timeoutMs: body.timeoutMs } : {}) },
      );
      metrics.searchMflops.observe({ collection: request.params.name }, answer.mflops);
      return answer;
    } finally {
      inflight--;
    }
  });

  // what other nodes call on this node's replicas (search, count, get); refused unless the replica serves
  app.post(
    '/v1/internal/replicas/:name/:shard/:op',
    { config: { access: 'read' }, bodyLimit: limits.maxBodyBytes, schema: { hide: true, params: InternalPath, body: Loose } },
    async (request) => {
      const body = request.body as { timeoutMs?: unknown };
      const timeoutMs = typeof body.timeoutMs === 'number' && body.timeoutMs > 0 ? body.timeoutMs : 10_000;
      return cluster.replicaCall(request.params.name, Number(request.params.shard), request.params.op, request.body, timeoutMs);
    },
  );
};
