import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Store } from '@adanns/store';
import type { ClusterNode } from '@adanns/cluster';
import { registerAuth } from './auth.js';
import type { ServiceConfig } from './config.js';
import { clientErrorHandler, frameworkErrors, registerErrors } from './errors.js';
import { createLogger } from './logger.js';
import { PointPath } from './schemas.js';
import { ServiceMetrics } from './metrics.js';
import { registerMsgpack } from './msgpack.js';
import { registerConsole } from './console.js';
import { clusterRoutes } from './routes/cluster.js';
import { collectionRoutes } from './routes/collections.js';
import { healthRoutes } from './routes/health.js';
import { pointRoutes } from './routes/points.js';
import { searchRoutes } from './routes/search.js';

export type ServerConfig = Pick<
  ServiceConfig,
  | 'apiKey'
  | 'readKey'
  | 'metricsOpen'
  | 'maxBodyBytes'
  | 'maxSearchBodyBytes'
  | 'maxBatch'
  | 'maxK'
  | 'maxInflightSearches'
  | 'maxSearchHits'
  | 'maxSearchMflops'
  | 'maxQueryMflops'
  | 'searchSliceMs'
  | 'maxResponsePayloadBytes'
  | 'requestTimeoutMs'
  | 'connectionTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'logLevel'
>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Requests whose head has arrived and whose answer has not been sent. */
    requestsInFlight(): number;
  }
}

function trackRequests(app: FastifyInstance): void {
  let inFlight = 0;
  const open = new WeakSet<object>();
  const done = async (request: FastifyRequest) => {
    if (open.delete(request)) inFlight--;
  };
  app.decorate('requestsInFlight', () => inFlight);
  app.addHook('onRequest', async (request, reply) => {
    open.add(request);
    inFlight++;
    // answered, or its connection gone (no hook runs when a client half-closes mid-request)
    reply.raw.once('close', () => void done(request));
  });
  app.addHook('onResponse', done);
}

/**
 * Closes the listener and waits for the requests in flight, a body still
 * arriving included (Node's server.close() does not wait for those), at
 * most `deadlineMs`.
 */
export async function drain(app: FastifyInstance, deadlineMs: number): Promise<void> {
  const closed = app.close();
  const end = Date.now() + deadlineMs;
  while (app.requestsInFlight() > 0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
  await closed;
}

/** Routes probed every few seconds: logged at debug, not info. */
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

/** One log line per request, when it completes (Fastify's default is two, health checks included). */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = { method: request.method, url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else if (QUIET.has(request.routeOptions.url ?? '')) reply.log.debug(fields, 'request');
    else reply.log.info(fields, 'request');
  }
}

/**
 * The HTTP API over a store: thin routes (each group a plugin given what it
 * needs), schemas that validate and document, JSON or MessagePack either way.
 * `state.ready` (false while starting or draining) and the store's
 * collections still opening drive /readyz.
 */
export async function buildServer(store: Store, config: ServerConfig, state = { ready: true }, logger: FastifyBaseLogger = createLogger(config.logLevel), cluster?: ClusterNode): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger,
    logController: new OneLinePerRequest(),
    bodyLimit: config.maxBodyBytes,
    // a point id may be as long as the schema allows (Fastify's default, 100, made longer ids unreadable)
    routerOptions: { maxParamLength: PointPath.properties.id.maxLength },
    // ids may be integers or strings: keep what the client sent
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    return503OnClosing: true,
    // a request (headers and body) must arrive in time; idle sockets and keep-alives are closed
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Node checks request timeouts on this period (30 s by default, longer than short timeouts),
    // and only applies requestTimeout when headersTimeout is not longer
    http: {
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(config.requestTimeoutMs / 4))),
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
      requestTimeout: config.requestTimeoutMs,
    },
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(config.requestTimeoutMs),
  }).withTypeProvider<TypeBoxTypeProvider>();
  const metrics = new ServiceMetrics(store);
  trackRequests(app);
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
  healthRoutes(app, state, store, metrics, config.metricsOpen === true);
  await registerConsole(app);
  const limits = {
    maxBatch: config.maxBatch,
    maxK: config.maxK,
    maxInflight: config.maxInflightSearches,
    maxBodyBytes: Math.min(config.maxSearchBodyBytes, config.maxBodyBytes),
    work: {
      maxHits: config.maxSearchHits,
      maxMflops: config.maxSearchMflops,
      maxQueryMflops: config.maxQueryMflops,
      sliceMs: config.searchSliceMs,
      maxPayloadBytes: config.maxResponsePayloadBytes,
    },
  };
  // cluster mode: the same routes answered by the cluster node (the local store holds this node's replicas)
  if (cluster) await app.register(clusterRoutes, { cluster, limits, maxBatch: config.maxBatch, metrics });
  else {
    await app.register(collectionRoutes, { store });
    await app.register(pointRoutes, { store, maxBatch: config.maxBatch, metrics });
    await app.register(searchRoutes, { store, limits, metrics });
  }
  await app.ready();
  return app;
}
