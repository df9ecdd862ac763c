import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** One nats-server of a local cluster, all on one host (loopback). */
export interface NatsServerSpec {
  name: string;
  host: string;
  clientPort: number;
  clusterPort: number;
  /** The monitoring endpoint (/jsz, /healthz): how the launcher sees JetStream's state without a client. */
  monitorPort: number;
  storeDir: string;
  /** Cluster ports of every server of the cluster, this one included (nats-server ignores a route to itself). */
  routePorts: number[];
  clusterName: string;
  /** fsync every write before acknowledging it (`sync_interval: always`, nats-server >= 2.10 only). */
  syncAlways?: boolean;
}

/**
 * Durability. nats-server 2.9.10 (Debian bookworm) has no setting for it: the
 * jetstream block's `sync_interval` (and `sync_interval: always`, an fsync
 * per write) arrived in 2.10.0, and 2.9.10 refuses the field. It writes every
 * message to its files with a write() before counting it stored (the stores
 * run with AsyncFlush false), and fsyncs a stream's blocks every 60 s and its
 * Raft log every 5 min. With 3 replicas a publish is acknowledged once the
 * stream's Raft group has committed it, that is once a quorum (2 of 3
 * servers) holds it in that Raft log. So an acknowledged write survives the
 * kill -9 of any process (the kernel still has the pages) and the loss of one
 * machine; it could be lost only if a majority of machines lost power within
 * the minutes before their next fsync. On nats-server >= 2.10 add
 * `sync_interval: always` to the jetstream block to fsync before every
 * acknowledgement instead (slower writes).
 */
export const DURABILITY_NOTE =
  'nats-server 2.9.10 has no sync_interval setting (2.10+): an acknowledged write is in the Raft log of 2 of 3 servers (written, fsynced within 60 s / 5 min)';

/** The configuration file of one server (nats-server's own format; JSON strings are valid there). */
export function natsConfig(spec: NatsServerSpec): string {
  const q = JSON.stringify;
  return [
    `# written by the adanns local cluster launcher (packages/cluster/src/local); rewritten at every start`,
    `# durability: ${DURABILITY_NOTE}`,
    `server_name: ${q(spec.name)}`,
    `listen: ${q(`${spec.host}:${spec.clientPort}`)}`,
    `http: ${q(`${spec.host}:${spec.monitorPort}`)}`,
    `jetstream {`,
    `  store_dir: ${q(spec.storeDir)}`,
    ...(spec.syncAlways ? ['  sync_interval: always'] : []),
    `}`,
    `cluster {`,
    `  name: ${q(spec.clusterName)}`,
    `  listen: ${q(`${spec.host}:${spec.clusterPort}`)}`,
    `  routes: [${spec.routePorts.map((p) => q(`nats-route://${spec.host}:${p}`)).join(', ')}]`,
    `}`,
    '',
  ].join('\n');
}

/** Whether `version` ("2.9.10") has the jetstream `sync_interval` setting (2.10.0 and later). */
export function hasSyncInterval(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 10);
}

/** `nats-server --version` ("2.9.10"); a clear error when the binary is missing. */
export async function natsServerVersion(bin: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(bin, ['--version']);
    const match = /v?(\d+\.\d+\.\d+)/.exec(stdout);
    if (!match) throw new Error(`unexpected answer to ${bin} --version: ${stdout.trim()}`);
    return match[1];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${bin} not found: install NATS (Debian: apt-get install nats-server) or give its path with --nats-server`);
    }
    throw e;
  }
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

/** The meta leader a server sees and the cluster size it knows, or undefined while it does not answer. */
export async function jetStreamMeta(host: string, monitorPort: number, timeoutMs = 1000): Promise<{ leader: string; size: number } | undefined> {
  try {
    const res = await fetch(`http://${host}:${monitorPort}/jsz`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const jsz = (await res.json()) as Jsz;
    return { leader: jsz.meta_cluster?.leader ?? '', size: jsz.meta_cluster?.cluster_size ?? 0 };
  } catch {
    return undefined;
  }
}

/** Whether a server's /healthz says its JetStream is in contact with, and current with, the meta leader. */
async function jetStreamHealthy(host: string, monitorPort: number, timeoutMs = 1000): Promise<boolean> {
  try {
    return (await fetch(`http://${host}:${monitorPort}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })).ok;
  } catch {
    return false;
  }
}

/**
 * Waits until every given server is healthy (/healthz: JetStream in contact
 * and current with the meta leader) and all name the same meta leader: before
 * that, creating streams fails ("JetStream system temporarily unavailable").
 * Polls the monitoring endpoint: nats-server announces the election only in
 * its log. (The `cluster_size` /jsz reports is no readiness signal: servers
 * restarted on a young store can report 2 of 3 for good while healthy.)
 * `requireHealthy` false waits for the leader only: a server restarted under
 * load reports unhealthy until every stream it holds has caught up, which
 * can take long; catching up is then the cluster's to show.
 */
export async function waitForJetStream(host: string, monitorPorts: number[], timeoutMs: number, isAlive: () => boolean = () => true, requireHealthy = true): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('a nats-server exited while JetStream was starting');
    const [metas, healthy] = await Promise.all([Promise.all(monitorPorts.map((p) => jetStreamMeta(host, p))), Promise.all(monitorPorts.map((p) => jetStreamHealthy(host, p)))]);
    const leaders = new Set(metas.map((m) => m?.leader));
    const [leader] = leaders;
    if (leaders.size === 1 && leader && (!requireHealthy || healthy.every(Boolean))) return leader;
    seen = metas.map((m, i) => `${monitorPorts[i]}: ${m ? `leader "${m.leader}"` : 'no answer'}, ${healthy[i] ? 'healthy' : 'not healthy'}`).join('; ');
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`JetStream was not ready on every server within ${timeoutMs} ms (${seen})`);
}
