import { parseArgs } from 'node:util';
import { BACKEND_NAMES, defaultThreads } from '@adanns/compute';
import { defaultDataDir } from '@adanns/store';

/** Service configuration: flags override environment variables, which override the defaults. */
export interface ServiceConfig {
  host: string;
  port: number;
  dataDir: string;
  backend: string;
  threads: number;
  /** Admin key (all routes) and read-only key (searches and reads); no key configured = open. */
  apiKey?: string;
  readKey?: string;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Most points per upsert or ids per delete, and query vectors per search. */
  maxBatch: number;
  maxK: number;
  /** Searches allowed at once before 429. */
  maxInflightSearches: number;
  /** Unindexed collections start a build at this many points (0 = only on request). */
  autoBuildAt: number;
  /** Rebuild by itself when a collection has doubled (or halved) since its index was trained. */
  autoRebuild: boolean;
  logLevel: string;
}

export const CONFIG_USAGE = `adanns serve [--host H] [--port P] [--data-dir DIR] [--backend ${BACKEND_NAMES.join('|')}] [--threads N]
  Serves the HTTP API. Environment: ADANNS_HOST (127.0.0.1), ADANNS_PORT (8080), ADANNS_DATA_DIR (./data),
  ADANNS_BACKEND (auto), ADANNS_THREADS (all cores), ADANNS_API_KEY (admin), ADANNS_READ_KEY (read-only),
  ADANNS_MAX_BODY_BYTES (67108864), ADANNS_MAX_BATCH (10000), ADANNS_MAX_K (1000),
  ADANNS_MAX_INFLIGHT_SEARCHES (64), ADANNS_AUTO_BUILD_AT (10000), ADANNS_AUTO_REBUILD (false),
  ADANNS_LOG_LEVEL (info).`;

/** A configuration error naming the offending setting and value. */
export class ConfigError extends Error {}

function positiveInt(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new ConfigError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got "${text}"`);
  return n;
}

function flag(name: string, text: string | undefined): boolean {
  if (text === undefined || text === '' || text === 'false' || text === '0') return false;
  if (text === 'true' || text === '1') return true;
  throw new ConfigError(`${name} must be true or false, got "${text}"`);
}

export function loadConfig(argv: string[] = [], env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  let flags;
  try {
    flags = parseArgs({
      args: argv,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        backend: { type: 'string' },
        threads: { type: 'string' },
      },
    }).values;
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const backend = flags.backend ?? env.ADANNS_BACKEND ?? 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(backend)) throw new ConfigError(`backend must be one of ${BACKEND_NAMES.join(', ')}, got "${backend}"`);
  const port = positiveInt('port', flags.port ?? env.ADANNS_PORT, 8080, true);
  if (port > 65535) throw new ConfigError(`port must be at most 65535, got ${port}`);
  const dataDir = flags['data-dir'] ?? (env.ADANNS_DATA_DIR || undefined);
  return {
    host: flags.host ?? (env.ADANNS_HOST || '127.0.0.1'),
    port,
    dataDir: dataDir ?? defaultDataDir(),
    backend,
    threads: positiveInt('threads', flags.threads ?? env.ADANNS_THREADS, defaultThreads()),
    ...(env.ADANNS_API_KEY ? { apiKey: env.ADANNS_API_KEY } : {}),
    ...(env.ADANNS_READ_KEY ? { readKey: env.ADANNS_READ_KEY } : {}),
    maxBodyBytes: positiveInt('ADANNS_MAX_BODY_BYTES', env.ADANNS_MAX_BODY_BYTES, 64 * 1024 * 1024),
    maxBatch: positiveInt('ADANNS_MAX_BATCH', env.ADANNS_MAX_BATCH, 10_000),
    maxK: positiveInt('ADANNS_MAX_K', env.ADANNS_MAX_K, 1000),
    maxInflightSearches: positiveInt('ADANNS_MAX_INFLIGHT_SEARCHES', env.ADANNS_MAX_INFLIGHT_SEARCHES, 64),
    autoBuildAt: positiveInt('ADANNS_AUTO_BUILD_AT', env.ADANNS_AUTO_BUILD_AT, 10_000, true),
    autoRebuild: flag('ADANNS_AUTO_REBUILD', env.ADANNS_AUTO_REBUILD),
    logLevel: env.ADANNS_LOG_LEVEL || 'info',
  };
}
