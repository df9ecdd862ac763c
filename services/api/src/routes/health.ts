import type { FastifyInstance } from 'fastify';
import type { Store } from '@adanns/store';
import type { ServiceMetrics } from '../metrics.js';

/**
 * Liveness (answers as soon as the process listens), readiness (false while
 * starting, while any collection is still opening, or while draining; each
 * collection answers for itself meanwhile), Prometheus metrics and the
 * OpenAPI document. Metrics name collections and their traffic, so with keys
 * configured they need one (read or admin; Prometheus sends it with
 * `authorization` in its scrape config) unless `metricsOpen` says otherwise.
 */
export function healthRoutes(app: FastifyInstance, state: { ready: boolean }, store: Store, metrics: ServiceMetrics, metricsOpen = false): void {
  const open = { config: { access: 'open' as const }, schema: { hide: true } };
  app.get('/healthz', open, async () => ({ status: 'ok' }));
  app.get('/readyz', open, async (_request, reply) => {
    if (!state.ready) return reply.status(503).send({ error: 'unavailable', message: 'not ready (starting or shutting down)' });
    const opening = store.pending();
    if (opening.length > 0) {
      return reply
        .status(503)
        .header('retry-after', '5')
        // a count, not names: /readyz is open even when keys guard the rest (the names are in the keyed /metrics and logs)
        .send({ error: 'unavailable', message: `not ready: ${opening.length} collection(s) still opening; the others serve` });
    }
    return { status: 'ready' };
  });
  app.get('/metrics', { ...open, config: { access: metricsOpen ? ('open' as const) : ('read' as const) } }, async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/openapi.json', open, async () => app.swagger());
}
