import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from '../metrics.js';

/** Liveness, readiness (false while starting or draining), Prometheus metrics and the OpenAPI document. */
export function healthRoutes(app: FastifyInstance, state: { ready: boolean }, metrics: ServiceMetrics): void {
  const open = { config: { access: 'open' as const }, schema: { hide: true } };
  app.get('/healthz', open, async () => ({ status: 'ok' }));
  app.get('/readyz', open, async (_request, reply) => {
    if (!state.ready) return reply.status(503).send({ error: 'unavailable', message: 'not ready (starting or shutting down)' });
    return { status: 'ready' };
  });
  app.get('/metrics', open, async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/openapi.json', open, async () => app.swagger());
}
