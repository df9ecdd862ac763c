/**
 * `npm run cluster`: a local cluster on loopback (3 nats-server with
 * JetStream, 4 adanns nodes) until Ctrl-C or SIGTERM, which stop the nodes
 * and then the servers. A child that exits on its own is reported with the
 * end of its log; the others keep running (that is what a cluster is for).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption, parseOrUsage, UsageError } from '@adanns/cli-kit';
import { DEFAULT_PORTS, LocalCluster } from './cluster.js';
import { DURABILITY_NOTE } from './nats.js';

const USAGE = `npm run cluster [-- --dir DIR] [--fresh] [--nodes 4] [--nats 3] [--threads 1]
    [--nats-port ${DEFAULT_PORTS.natsClient}] [--route-port ${DEFAULT_PORTS.natsCluster}] [--monitor-port ${DEFAULT_PORTS.natsMonitor}] [--port ${DEFAULT_PORTS.node}] [--free-ports] [--nats-server BIN]
  Starts nats-server processes with JetStream in one cluster (client, route and monitoring ports from the
  given bases), waits for JetStream's meta leader, then adanns nodes in cluster mode (node K on port + K - 1,
  data in DIR/nodes/nK), all on 127.0.0.1, and stops them all on Ctrl-C or SIGTERM. DIR (./data/cluster)
  keeps the data across runs; --fresh starts from nothing. --free-ports takes ports the system picks instead of
  the bases (beside another cluster). --sync-always makes JetStream fsync every write before acknowledging
  it (nats-server 2.10 or later; 2.9.10, Debian bookworm's, has no such setting). Logs: DIR/logs/.`;

async function localCluster(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const { values: o } = parseOrUsage(() =>
    parseArgs({
      args: argv,
      options: {
        dir: { type: 'string', default: 'data/cluster' },
        fresh: { type: 'boolean', default: false },
        nodes: { type: 'string' },
        nats: { type: 'string' },
        threads: { type: 'string' },
        'nats-port': { type: 'string' },
        'route-port': { type: 'string' },
        'monitor-port': { type: 'string' },
        port: { type: 'string' },
        'free-ports': { type: 'boolean', default: false },
        'sync-always': { type: 'boolean', default: false },
        'nats-server': { type: 'string' },
      },
    }),
  );
  const port = (flag: string, fallback: number) => {
    const p = intOption(o[flag as keyof typeof o] as string | undefined, flag, fallback);
    if (p > 65535) throw new UsageError(`--${flag} must be at most 65535, got ${p}`);
    return p;
  };
  const ports = { natsClient: port('nats-port', DEFAULT_PORTS.natsClient), natsCluster: port('route-port', DEFAULT_PORTS.natsCluster), natsMonitor: port('monitor-port', DEFAULT_PORTS.natsMonitor), node: port('port', DEFAULT_PORTS.node) };
  const dir = resolve(o.dir!);
  console.log(`starting a local cluster in ${dir} ...`);
  const cluster = await LocalCluster.start({
    dir,
    fresh: o.fresh!,
    natsServers: intOption(o.nats, 'nats', 3),
    nodes: intOption(o.nodes, 'nodes', 4),
    threads: intOption(o.threads, 'threads', 1),
    ports: o['free-ports'] ? 'free' : ports,
    syncAlways: o['sync-always']!,
    ...(o['nats-server'] ? { natsServerBin: o['nats-server'] } : {}),
  });
  console.log(`nats-server ${cluster.natsVersion}: ${cluster.natsUrl} (logs ${dir}/logs/nats*.log)`);
  console.log(`durability: ${o['sync-always'] ? 'sync_interval: always (every write fsynced on a quorum before its acknowledgement)' : DURABILITY_NOTE}`);
  for (const n of cluster.nodes) console.log(`node ${n.id}: ${n.url}  (data ${n.dataDir}, log ${n.logFile})`);
  const first = cluster.nodes[0].url;
  console.log(`every node serves the whole API, e.g. a collection of 2 shards x 2 replicas:
  curl -X PUT ${first}/v1/collections/docs -H 'content-type: application/json' -d '{"dim": 128, "shards": 2, "replicas": 2}'
  curl ${first}/v1/cluster
Ctrl-C stops the cluster.`);
  await new Promise<void>((done) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      // a second Ctrl-C does not wait for the nodes to drain
      if (++signals > 1) {
        console.error(`${signal} again: killing every process of the cluster`);
        cluster.children().forEach((c) => c.killNow());
        process.exit(1);
      }
      console.log(`${signal}: stopping the nodes, then the NATS servers ...`);
      cluster.stop().then(done, (e: Error) => {
        console.error(`stopping failed: ${e.message}`);
        process.exit(1);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  console.log('stopped');
}

try {
  await localCluster(process.argv.slice(2));
} catch (e) {
  // bad flags and a missing nats-server are the user's to fix: one line; anything else with its stack
  console.error(`cluster: error: ${(e as Error).message}`);
  if (!(e instanceof UsageError) && process.env.ADANNS_DEBUG) console.error((e as Error).stack);
  process.exitCode = e instanceof UsageError ? 2 : 1;
}
