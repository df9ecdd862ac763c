import { fileURLToPath } from 'node:url';
import { createBackend } from '@adanns/compute';
import { Store } from '@adanns/store';
import { ConfigError, CONFIG_USAGE, loadConfig, type ServiceConfig } from './config.js';
import { buildServer } from './server.js';

/**
 * Starts the service: backend, store (every collection opened and
 * recovered), then the listener. SIGTERM and SIGINT drain it: readiness goes
 * false, the listener stops accepting, in-flight requests finish, storage
 * closes (indexes checkpointed), then the process exits.
 */
export async function serve(config: ServiceConfig): Promise<{ url: string; stop: () => Promise<void> }> {
  const logs: string[] = [];
  const backend = await createBackend(config.backend, { threads: config.threads, log: (line) => logs.push(`info\t${line}`) });
  const state = { ready: false };
  const store = await Store.open(config.dataDir, {
    backend,
    backendName: config.backend,
    threads: config.threads,
    autoBuildAt: config.autoBuildAt,
    autoRebuild: config.autoRebuild,
    log: (level, message) => logs.push(`${level}\t${message}`),
  });
  const app = await buildServer(store, config, state);
  for (const line of logs) {
    const [level, message] = line.split('\t');
    app.log[level as 'info' | 'warn' | 'error'](message);
  }
  const url = await app.listen({ host: config.host, port: config.port });
  app.log.info(`backend ${backend.name} (asked for ${config.backend}), data in ${config.dataDir}`);
  state.ready = true;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      state.ready = false;
      await app.close();
      await store.close();
      await backend.dispose();
    })());
  return { url, stop };
}

/** Serves until SIGTERM or SIGINT, then drains and exits (0, or 1 if closing failed). */
export async function serveUntilSignal(config: ServiceConfig): Promise<void> {
  const { stop } = await serve(config);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stop().then(
        () => process.exit(0),
        (e: Error) => {
          console.error(`shutdown failed: ${e.message}`);
          process.exit(1);
        },
      );
    });
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
