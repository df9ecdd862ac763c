import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Store } from '@adanns/store';
import { CalibrateBody, CollectionList, CollectionName, CollectionStats, CreateCollection, ErrorReply, IndexStats, PayloadIndexBody, PayloadIndexInfo, PayloadIndexPath } from '../schemas.js';

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 503: ErrorReply };

/** Collections: create, list, inspect (with the calibrated frontier), drop; index builds and their progress; calibration on given queries. */
export const collectionRoutes: FastifyPluginAsyncTypebox<{ store: Store }> = async (app, { store }) => {
  app.put('/v1/collections/:name', { schema: { params: CollectionName, body: CreateCollection, response: { 201: CollectionStats, ...errors } } }, async (request, reply) => {
    const collection = await store.create(request.params.name, request.body);
    return reply.status(201).send(collection.stats());
  });

  app.get('/v1/collections', { config: { access: 'read' }, schema: { response: { 200: CollectionList, ...errors } } }, async () => ({ collections: store.list() }));

  app.get('/v1/collections/:name', { config: { access: 'read' }, schema: { params: CollectionName, response: { 200: CollectionStats, ...errors } } }, async (request) => {
    const collection = store.get(request.params.name);
    return { ...collection.stats(), frontier: collection.frontier(), frontierK: collection.frontierK(), specParts: collection.specParts(), spectrum: collection.spectrum() };
  });

  app.delete('/v1/collections/:name', { schema: { params: CollectionName, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } } }, async (request) => {
    await store.drop(request.params.name);
    return { deleted: true };
  });

  app.post('/v1/collections/:name/index', { schema: { params: CollectionName, response: { 202: IndexStats, ...errors } } }, async (request, reply) => {
    const collection = store.get(request.params.name);
    void collection.build().catch((e: Error) => request.log.error({ err: e }, 'index build failed'));
    return reply.status(202).send(collection.stats().index);
  });

  // re-calibration in the background on the user's sample queries (kept for later builds and
  // re-calibrations); 202 with the index's stats, whose `calibration.running` says when it is done
  app.post('/v1/collections/:name/calibrate', { schema: { params: CollectionName, body: CalibrateBody, response: { 202: IndexStats, ...errors } } }, async (request, reply) => {
    const collection = store.get(request.params.name);
    void collection.calibrate(request.body.vectors).catch((e: Error) => request.log.error({ err: e }, 'calibration failed'));
    // the decoded body need not live as long as the calibration
    (request as { body: unknown }).body = undefined;
    return reply.status(202).send(collection.stats().index);
  });

  // payload indexes: built in the background over the points already stored (state building, then ready)
  app.put('/v1/collections/:name/payload-index/:field', { schema: { params: PayloadIndexPath, body: PayloadIndexBody, response: { 202: PayloadIndexInfo, ...errors } } }, async (request, reply) =>
    reply.status(202).send(await store.get(request.params.name).createPayloadIndex(request.params.field, request.body.type)),
  );

  app.delete('/v1/collections/:name/payload-index/:field', { schema: { params: PayloadIndexPath, response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errors } } }, async (request) => {
    await store.get(request.params.name).dropPayloadIndex(request.params.field);
    return { deleted: true };
  });

  app.get('/v1/collections/:name/index', { config: { access: 'read' }, schema: { params: CollectionName, response: { 200: IndexStats, ...errors } } }, async (request) => store.get(request.params.name).stats().index);
};
