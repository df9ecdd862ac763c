import { isIP } from 'node:net';
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
  /** Serve without any key on a non-loopback address (refused unless set). */
  allowOpen: boolean;
  /**
   * Serve /metrics without a key even when keys are configured (for scrapers on a
   * private network); by default a configured key guards it like the read routes.
   */
  metricsOpen?: boolean;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Largest search request body: parsing JSON costs the event loop about 3 ms per MB. */
  maxSearchBodyBytes: number;
  /** Most points per upsert or ids per delete, and query vectors per search. */
  maxBatch: number;
  maxK: number;
  /** Searches allowed at once (counted once their body has arrived) before 429. */
  maxInflightSearches: number;
  /** Most hits (query vectors x k) in one search answer. */
  maxSearchHits: number;
  /** Most planned MFLOPs of one search request (all its query vectors). */
  maxSearchMflops: number;
  /** Most planned MFLOPs of one query vector (one query cannot be cut into slices). */
  maxQueryMflops: number;
  /** Target ms per search slice: searches run slice by slice, one slice per event-loop turn. */
  searchSliceMs: number;
  /** Most payload bytes (as JSON) in one search answer. */
  maxResponsePayloadBytes: number;
  /** Time for a request (headers and body) to arrive, in ms (408 past it). */
  requestTimeoutMs: number;
  /** An idle socket is closed after this many ms. */
  connectionTimeoutMs: number;
  /** An idle keep-alive connection is closed after this many ms. */
  keepAliveTimeoutMs: number;
  /** Unindexed collections start a build at this many points (0 = only on request). */
  autoBuildAt: number;
  /** Automatic builds and rebuilds wait until a collection has had no write for this many ms. */
  autoBuildQuietMs: number;
  /** Rebuild by itself when a collection has doubled (or halved) since its index was trained. */
  autoRebuild: boolean;
  /** Re-calibrate (in the background, no rebuild) once list-size shares drift this far from calibration's (total variation; 0 = never). */
  recalibrateDrift: number;
  logLevel: string;
  /** Cluster mode (README "Cluster"): the nats-server URLs; absent = a single node, as always. */
  cluster?: ClusterConfig;
}

export interface ClusterConfig {
  servers: string[];
  /** This node's name in the cluster (kept across restarts: its replicas are found again by it). */
  nodeId: string;
  /** The URL other nodes reach this node's HTTP API at (default: http://host:port as it listens). */
  advertiseUrl?: string;
  /** A replica lease lasts this long unless renewed (heartbeats every second, or every fifth of it when shorter). */
  leaseMs: number;
  /** Another node takes over a replica whose lease ran out this long ago (its own node may come back and resume it first). */
  takeoverMs: number;
  /** false: each shard trains its own coarse quantiser (for comparisons; default true: one shared by a collection's shards). */
  shareQuantiser?: boolean;
}

/**
 * Search slices hold the event loop for about this long; one query (which
 * cannot be sliced) plans at most this many MFLOPs: an exact 100 MFLOPs
 * query (130,000 x 768) took 55 ms on one busy core of the 2-core dev machine
 * (benchmarks/src/http-health.ts measures /healthz under load).
 */
const DEFAULT_SLICE_MS = 10;
const DEFAULT_MAX_QUERY_MFLOPS = 100;

export const CONFIG_USAGE = `adanns serve [--host H] [--port P] [--data-dir DIR] [--backend ${BACKEND_NAMES.join('|')}] [--threads N]
             [--cluster nats://HOST:PORT,... --node-id ID [--advertise-url URL]]
  Serves the HTTP API; with --cluster (ADANNS_NATS_URL) as a node of a cluster on NATS JetStream,
  named by --node-id (ADANNS_NODE_ID), reached by the other nodes at --advertise-url (ADANNS_ADVERTISE_URL);
  ADANNS_LEASE_MS (15000) and ADANNS_TAKEOVER_MS (30000) time replica leases (README, "Cluster"). Environment: ADANNS_HOST (127.0.0.1), ADANNS_PORT (8080), ADANNS_DATA_DIR (./data),
  ADANNS_BACKEND (auto), ADANNS_THREADS (all cores), ADANNS_API_KEY (admin), ADANNS_READ_KEY (read-only),
  ADANNS_ALLOW_OPEN (false: a non-loopback host needs a key), ADANNS_METRICS_OPEN (false: with a key set,
  /metrics needs it too), ADANNS_MAX_BODY_BYTES (67108864),
  ADANNS_MAX_SEARCH_BODY_BYTES (8388608), ADANNS_MAX_BATCH (10000), ADANNS_MAX_K (1000),
  ADANNS_MAX_INFLIGHT_SEARCHES (64), ADANNS_MAX_SEARCH_HITS (25000), ADANNS_MAX_SEARCH_MFLOPS (20000),
  ADANNS_MAX_QUERY_MFLOPS (${DEFAULT_MAX_QUERY_MFLOPS}), ADANNS_SEARCH_SLICE_MS (${DEFAULT_SLICE_MS}),
  ADANNS_MAX_RESPONSE_PAYLOAD_BYTES (16777216), ADANNS_REQUEST_TIMEOUT_MS (30000),
  ADANNS_CONNECTION_TIMEOUT_MS (60000), ADANNS_KEEP_ALIVE_TIMEOUT_MS (5000), ADANNS_AUTO_BUILD_AT (10000),
  ADANNS_AUTO_BUILD_QUIET_MS (3000), ADANNS_AUTO_REBUILD (true), ADANNS_RECALIBRATE_DRIFT (0.2),
  ADANNS_LOG_LEVEL (info).`;

/** A configuration error naming the offending setting and value. */
export class ConfigError extends Error {}

/** A number from 0 to 1 (0 turns the behaviour off). */
function fraction(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(`${name} must be a number from 0 to 1, got "${text}"`);
  return n;
}

function positiveInt(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new ConfigError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got "${text}"`);
  return n;
}

function flag(name: string, text: string | undefined, fallback = false): boolean {
  if (text === undefined || text === '') return fallback;
  if (text === 'false' || text === '0') return false;
  if (text === 'true' || text === '1') return true;
  throw new ConfigError(`${name} must be true or false, got "${text}"`);
}

/** Whether `host` only takes connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^(0:){7}1$/.test(h) || /^::ffff:127\./.test(h);
  return false;
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
        cluster: { type: 'string' },
        'node-id': { type: 'string' },
        'advertise-url': { type: 'string' },
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
  const host = flags.host ?? (env.ADANNS_HOST || '127.0.0.1');
  const allowOpen = flag('ADANNS_ALLOW_OPEN', env.ADANNS_ALLOW_OPEN);
  // safe by default: an address others can reach needs a key, unless openness is asked for by name
  if (!isLoopback(host) && !env.ADANNS_API_KEY && !env.ADANNS_READ_KEY && !allowOpen) {
    throw new ConfigError(
      `host ${host} is reachable from other machines and no ADANNS_API_KEY is set: anyone who can connect could write and drop collections. Set ADANNS_API_KEY (and ADANNS_READ_KEY for read-only clients), or ADANNS_ALLOW_OPEN=true to serve it open on purpose`,
    );
  }
  const natsUrl = flags.cluster ?? (env.ADANNS_NATS_URL || undefined);
  let cluster: ClusterConfig | undefined;
  if (natsUrl !== undefined) {
    const servers = natsUrl.split(',').map((u) => u.trim()).filter((u) => u !== '');
    for (const u of servers) if (!/^(nats|tls):\/\/[^\s/]+$/.test(u)) throw new ConfigError(`cluster must be comma-separated nats://host:port URLs, got "${u}"`);
    if (servers.length === 0) throw new ConfigError(`cluster must name at least one nats://host:port URL, got "${natsUrl}"`);
    const nodeId = flags['node-id'] ?? (env.ADANNS_NODE_ID || undefined);
    if (nodeId === undefined) throw new ConfigError('cluster mode needs --node-id (ADANNS_NODE_ID): the name this node keeps across restarts');
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(nodeId)) throw new ConfigError(`node-id must be 1-64 letters, digits, "_" or "-", got "${nodeId}"`);
    const advertiseUrl = flags['advertise-url'] ?? (env.ADANNS_ADVERTISE_URL || undefined);
    if (advertiseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(advertiseUrl)) throw new ConfigError(`advertise-url must be an http(s):// URL, got "${advertiseUrl}"`);
    // 15 s outlives the JetStream leader elections that follow the loss of a nats server (measured by the
    // cluster soak: 5 s leases all ran out at once), so a node keeps serving through one
    const leaseMs = positiveInt('ADANNS_LEASE_MS', env.ADANNS_LEASE_MS, 15_000);
    if (leaseMs < 500) throw new ConfigError(`ADANNS_LEASE_MS must be at least 500 (heartbeats come at most every fifth of it), got "${env.ADANNS_LEASE_MS}"`);
    const takeoverMs = positiveInt('ADANNS_TAKEOVER_MS', env.ADANNS_TAKEOVER_MS, 30_000, true);
    cluster = { servers, nodeId, leaseMs, takeoverMs, ...(advertiseUrl ? { advertiseUrl: advertiseUrl.replace(/\/+$/, '') } : {}) };
  }
  return {
    ...(cluster ? { cluster } : {}),
    host,
    port,
    dataDir: dataDir ?? defaultDataDir(),
    backend,
    threads: positiveInt('threads', flags.threads ?? env.ADANNS_THREADS, defaultThreads()),
    ...(env.ADANNS_API_KEY ? { apiKey: env.ADANNS_API_KEY } : {}),
    ...(env.ADANNS_READ_KEY ? { readKey: env.ADANNS_READ_KEY } : {}),
    allowOpen,
    metricsOpen: flag('ADANNS_METRICS_OPEN', env.ADANNS_METRICS_OPEN),
    maxBodyBytes: positiveInt('ADANNS_MAX_BODY_BYTES', env.ADANNS_MAX_BODY_BYTES, 64 * 1024 * 1024),
    maxSearchBodyBytes: positiveInt('ADANNS_MAX_SEARCH_BODY_BYTES', env.ADANNS_MAX_SEARCH_BODY_BYTES, 8 * 1024 * 1024),
    maxBatch: positiveInt('ADANNS_MAX_BATCH', env.ADANNS_MAX_BATCH, 10_000),
    maxK: positiveInt('ADANNS_MAX_K', env.ADANNS_MAX_K, 1000),
    maxInflightSearches: positiveInt('ADANNS_MAX_INFLIGHT_SEARCHES', env.ADANNS_MAX_INFLIGHT_SEARCHES, 64),
    maxSearchHits: positiveInt('ADANNS_MAX_SEARCH_HITS', env.ADANNS_MAX_SEARCH_HITS, 25_000),
    maxSearchMflops: positiveInt('ADANNS_MAX_SEARCH_MFLOPS', env.ADANNS_MAX_SEARCH_MFLOPS, 20_000),
    maxQueryMflops: positiveInt('ADANNS_MAX_QUERY_MFLOPS', env.ADANNS_MAX_QUERY_MFLOPS, DEFAULT_MAX_QUERY_MFLOPS),
    searchSliceMs: positiveInt('ADANNS_SEARCH_SLICE_MS', env.ADANNS_SEARCH_SLICE_MS, DEFAULT_SLICE_MS),
    maxResponsePayloadBytes: positiveInt('ADANNS_MAX_RESPONSE_PAYLOAD_BYTES', env.ADANNS_MAX_RESPONSE_PAYLOAD_BYTES, 16 * 1024 * 1024),
    requestTimeoutMs: positiveInt('ADANNS_REQUEST_TIMEOUT_MS', env.ADANNS_REQUEST_TIMEOUT_MS, 30_000),
    connectionTimeoutMs: positiveInt('ADANNS_CONNECTION_TIMEOUT_MS', env.ADANNS_CONNECTION_TIMEOUT_MS, 60_000),
    keepAliveTimeoutMs: positiveInt('ADANNS_KEEP_ALIVE_TIMEOUT_MS', env.ADANNS_KEEP_ALIVE_TIMEOUT_MS, 5_000),
    autoBuildAt: positiveInt('ADANNS_AUTO_BUILD_AT', env.ADANNS_AUTO_BUILD_AT, 10_000, true),
    autoBuildQuietMs: positiveInt('ADANNS_AUTO_BUILD_QUIET_MS', env.ADANNS_AUTO_BUILD_QUIET_MS, 3000, true),
    autoRebuild: flag('ADANNS_AUTO_REBUILD', env.ADANNS_AUTO_REBUILD, true),
    recalibrateDrift: fraction('ADANNS_RECALIBRATE_DRIFT', env.ADANNS_RECALIBRATE_DRIFT, 0.2),
    logLevel: env.ADANNS_LOG_LEVEL || 'info',
  };
}
