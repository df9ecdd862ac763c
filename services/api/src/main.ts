import { fileURLToPath } from 'node:url';
import { createBackend } from '@adanns/compute';
import { Store } from '@adanns/store';
import { ClusterNode } from '@adanns/cluster';
import { ConfigError, CONFIG_USAGE, loadConfig, type ServiceConfig } from './config.js';
import { createLogger } from './logger.js';
import { buildServer, drain } from './server.js';

/**
 * Starts the service: backend, then the listener at once, while the store
 * opens (and recovers) its collections in the background; /readyz turns
 * ready when all are open, and a collection still opening answers 503 with
 * Retry-After. SIGTERM and SIGINT drain it: readiness goes false, the
 * listener stops accepting, in-flight requests finish, storage closes
 * (indexes checkpointed), then the process exits.
 */
export async function serve(config: ServiceConfig): Promise<{ url: string; stop: () => Promise<void>; store: Store; cluster?: ClusterNode }> {
  const logger = createLogger(config.logLevel);
  const backend = await createBackend(config.backend, { threads: config.threads, log: (line) => logger.info(line) });
  const state = { ready: false };
  const store = Store.start(config.dataDir, {
    backend,
    backendName: config.backend,
    threads: config.threads,
    // in cluster mode builds go through the shards' logs (ClusterNode autoBuildAt), so every shard builds on one quantiser
    autoBuildAt: config.cluster ? 0 : config.autoBuildAt,
    autoBuildQuietMs: config.autoBuildQuietMs,
    autoRebuild: config.cluster ? false : config.autoRebuild,
    recalibrateDrift: config.recalibrateDrift,
    logger,
  });
  // cluster mode: the local store holds this node's shard replicas; the cluster node answers the API
  const cluster = config.cluster ? new ClusterNode({ servers: config.cluster.servers, nodeId: config.cluster.nodeId, leaseMs: config.cluster.leaseMs, heartbeatMs: Math.max(100, Math.min(1000, Math.floor(config.cluster.leaseMs / 5))), takeoverMs: config.cluster.takeoverMs, ...(config.cluster.shareQuantiser === false ? { shareQuantiser: false } : {}), autoBuildAt: config.autoBuildAt, rebuildFactor: config.autoRebuild ? 2 : 0, autoBuildQuietMs: config.autoBuildQuietMs, store, logger, ...(config.apiKey || config.readKey ? { apiKey: config.apiKey ?? config.readKey } : {}) }) : undefined;
  const app = await buildServer(store, config, state, logger, cluster);
  const url = await app.listen({ host: config.host, port: config.port });
  if (cluster && config.cluster) {
    try {
      await cluster.start(config.cluster.advertiseUrl ?? url);
    } catch (e) {
      await app.close();
      await store.close();
      await backend.dispose();
      throw new Error(`could not join the cluster at ${config.cluster.servers.join(',')}: ${(e as Error).message}`);
    }
  }
  logger.info({ backend: backend.name, dataDir: config.dataDir, collections: store.pending().length }, `backend ${backend.name} (asked for ${config.backend}), data in ${config.dataDir}; opening ${store.pending().length} collection(s)`);
  if (!config.apiKey && !config.readKey) logger.warn(`no API key is set: anyone who can connect to ${url} may write and drop collections`);
  state.ready = true;
  void store.opened.then(() => logger.info({ collections: store.names().length }, 'every collection opened; ready'));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      state.ready = false;
      // a body still arriving gets as long as a request may take to arrive, within the
      // 30 s a container stop allows (docker-compose.yml stop_grace_period) before SIGKILL
      await drain(app, Math.min(config.requestTimeoutMs + 1000, 25_000));
      await cluster?.close();
      await store.close();
      await backend.dispose();
    })());
  return { url, stop, store, ...(cluster ? { cluster } : {}) };
}

/** Longest shutdown: the 25 s drain plus closing, within docker-compose's 30 s stop_grace_period. */
const SHUTDOWN_LIMIT_MS = 29_000;

/** Serves until SIGTERM or SIGINT, then drains and exits (0, or 1 if closing failed or overran). */
export async function serveUntilSignal(config: ServiceConfig): Promise<void> {
  const { stop } = await serve(config);
  const shutdown = () => {
    // the drain above is bounded; this bounds the rest (a cluster close waiting on an unreachable
    // NATS, a stuck store): a stopped service must exit, never linger as an orphan
    setTimeout(() => {
      console.error(`shutdown did not finish within ${SHUTDOWN_LIMIT_MS} ms: exiting`);
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS).unref();
    return stop().then(
      () => process.exit(0),
      (e: Error) => {
        console.error(`shutdown failed: ${e.message}`);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, shutdown);
  // ADANNS_PARENT_PID (set by the local cluster launcher): a node whose launcher died without stopping
  // it (SIGKILL, a timed-out test) is re-parented; it shuts down then instead of running on orphaned
  const parent = Number(process.env.ADANNS_PARENT_PID);
  if (Number.isInteger(parent) && parent > 0) {
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      console.error(`adanns serve: the launcher (pid ${parent}) is gone: shutting down`);
      void shutdown();
    }, 1000);
    watch.unref();
  }
}

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(CONFIG_USAGE);
    return;
  }
  let config: ServiceConfig;
  try {
    config = loadConfig(argv);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`adanns serve: ${e.message}\n\n${CONFIG_USAGE}`);
    process.exit(2);
  }
  await serveUntilSignal(config);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
