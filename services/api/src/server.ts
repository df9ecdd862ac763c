import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Store } from '@adanns/store';
import { registerAuth } from './auth.js';
import type { ServiceConfig } from './config.js';
import { registerErrors } from './errors.js';
import { ServiceMetrics } from './metrics.js';
import { registerMsgpack } from './msgpack.js';
import { collectionRoutes } from './routes/collections.js';
import { healthRoutes } from './routes/health.js';
import { pointRoutes } from './routes/points.js';
import { searchRoutes } from './routes/search.js';

export type ServerConfig = Pick<ServiceConfig, 'apiKey' | 'readKey' | 'maxBodyBytes' | 'maxBatch' | 'maxK' | 'maxInflightSearches' | 'logLevel'>;

/**
 * The HTTP API over a store: thin routes (each group a plugin given what it
 * needs), schemas that validate and document, JSON or MessagePack either way.
 * `state.ready` drives /readyz.
 */
export async function buildServer(store: Store, config: ServerConfig, state = { ready: true }): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: config.maxBodyBytes,
    // ids may be integers or strings: keep what the client sent
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();
  const metrics = new ServiceMetrics(store);
  registerMsgpack(app);
  registerErrors(app);
  registerAuth(app, config);
  metrics.register(app);
  await app.register(swagger, {
    openapi: {
      info: { title: 'adanns', description: 'Adaptive approximate nearest-neighbour search over Matryoshka embeddings', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  healthRoutes(app, state, metrics);
  await app.register(collectionRoutes, { store });
  await app.register(pointRoutes, { store, maxBatch: config.maxBatch, metrics });
  await app.register(searchRoutes, { store, limits: { maxBatch: config.maxBatch, maxK: config.maxK, maxInflight: config.maxInflightSearches }, metrics });
  await app.ready();
  return app;
}
