import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '@adanns/store';

/** Prometheus metrics: per-route request counts and latencies, search cost, and per-collection state. */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'adanns_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'adanns_http_request_duration_seconds',
    help: 'HTTP request latency by route and method',
    labelNames: ['route', 'method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly searchMflops = new Histogram({
    name: 'adanns_search_mflops',
    help: 'Modelled MFLOPs per query vector of each search',
    labelNames: ['collection'],
    buckets: [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({ name: 'adanns_http_requests_in_flight', help: 'HTTP requests received (head parsed) whose answer has not started', registers: [this.registry] });
  readonly searchesInFlight = new Gauge({ name: 'adanns_searches_in_flight', help: 'Searches admitted (body arrived) and not yet answered', registers: [this.registry] });
  readonly ingested = new Counter({ name: 'adanns_ingested_points_total', help: 'Points upserted, by collection', labelNames: ['collection'], registers: [this.registry] });

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'adanns_collection_points',
      help: 'Points stored per collection',
      labelNames: ['collection'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const c of store.list()) if ('count' in c) this.set({ collection: c.name }, c.count);
      },
    });
    new Gauge({
      name: 'adanns_collection_index_state',
      help: '1 for the index state each collection is in (none, building, ready)',
      labelNames: ['collection', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const c of store.list()) if ('index' in c) for (const state of ['none', 'building', 'ready', 'exact']) this.set({ collection: c.name, state }, c.index.state === state ? 1 : 0);
      },
    });
  }

  register(app: FastifyInstance): void {
    const counted = new WeakSet<object>();
    const done = (request: object) => {
      if (counted.delete(request)) this.inFlight.dec();
    };
    app.addHook('onRequest', async (request) => {
      counted.add(request);
      this.inFlight.inc();
    });
    app.addHook('onRequestAbort', async (request) => done(request));
    // counted out before the answer is written: a client that has its answer never sees its request counted
    app.addHook('onSend', async (request, _reply, payload) => {
      done(request);
      return payload;
    });
    app.addHook('onResponse', async (request, reply) => {
      done(request);
      const route = request.routeOptions.url ?? 'unmatched';
      this.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
      this.latency.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    });
  }
}
