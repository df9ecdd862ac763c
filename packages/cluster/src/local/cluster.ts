import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { hasSyncInterval, natsConfig, natsServerVersion, waitForJetStream, type NatsServerSpec } from './nats.js';
import { describeExit, PidFile, Supervised, type UnexpectedExit } from './processes.js';

/** First ports of each kind; server/node i gets base + i. */
export interface PortBases {
  natsClient: number;
  natsCluster: number;
  natsMonitor: number;
  node: number;
}

/** The ports of each server and node. */
export interface PortTable {
  natsClient: number[];
  natsCluster: number[];
  natsMonitor: number[];
  node: number[];
}

export const DEFAULT_PORTS: PortBases = { natsClient: 4222, natsCluster: 6222, natsMonitor: 8222, node: 8081 };

export interface LocalClusterOptions {
  /** Holds everything: nats/ (configs and JetStream stores), nodes/ (each node's data dir), logs/, pids.json. */
  dir: string;
  /** nats-server processes (3: JetStream's replicated streams need a quorum that survives one loss). */
  natsServers?: number;
  /** adanns nodes. */
  nodes?: number;
  /** Only loopback makes sense for a cluster on one machine; kept as an option for containers. */
  host?: string;
  /** Port bases, 'free' for ports the system picks (tests, and several clusters at once), or every port (another cluster's `ports`). */
  ports?: Partial<PortBases> | PortTable | 'free';
  natsServerBin?: string;
  /**
   * fsync every JetStream write before its acknowledgement (`sync_interval: always`); refused on
   * nats-server before 2.10, which has no such setting (the default: see DURABILITY_NOTE).
   */
  syncAlways?: boolean;
  /** How to run `adanns` (default: this repository's CLI, see nodeFrom). */
  nodeCommand?: { command: string; args: string[] };
  /** Run the CLI built (dist) or from source with tsx (default: as this module runs). */
  nodeFrom?: 'source' | 'dist';
  /** Extra environment for the nodes. */
  nodeEnv?: NodeJS.ProcessEnv;
  /** ADANNS_THREADS of each node (1: several nodes share this machine's cores). */
  threads?: number;
  /** Remove `dir` first (a new cluster) instead of restarting on its data. */
  fresh?: boolean;
  /** Longest wait for JetStream's meta leader and for each node's /readyz, in ms. */
  readyTimeoutMs?: number;
  /** Start the NATS servers only (the node side's own tests, the launcher's tests). */
  withoutNodes?: boolean;
  /** A child exited without being asked to (default: a line on stderr). */
  onUnexpectedExit?: UnexpectedExit;
}

export interface LocalNats {
  name: string;
  clientUrl: string;
  spec: NatsServerSpec;
  configFile: string;
  logFile: string;
  process?: Supervised;
}

export interface LocalNode {
  id: string;
  url: string;
  port: number;
  dataDir: string;
  logFile: string;
  process?: Supervised;
}

/** The adanns CLI of this repository (the launcher only spawns it: no import, so no package cycle). */
function defaultNodeCommand(from: 'source' | 'dist'): { command: string; args: string[] } {
  let cliDir: string;
  try {
    cliDir = dirname(createRequire(import.meta.url).resolve('@adanns/cli/package.json'));
  } catch {
    throw new Error('the adanns CLI (@adanns/cli) is not installed next to @adanns/cluster: give nodeCommand');
  }
  return from === 'source'
    ? { command: process.execPath, args: ['--import', 'tsx', '--conditions', 'adanns-source', join(cliDir, 'src', 'main.ts')] }
    : { command: process.execPath, args: [join(cliDir, 'dist', 'main.js')] };
}

/**
 * A launcher that dies without running any handler (SIGKILL, or a test
 * runner's SIGTERM to a timed-out worker) would leave its children running:
 * each runs in its own process group, and nats-server cannot watch its
 * parent. So the launcher also starts this small watchdog (detached): when
 * its parent (the launcher) is gone, it SIGKILLs the processes of the pid
 * file still naming the data directory, then exits. It keeps the last list
 * it read, in case the directory was removed meanwhile.
 */
const WATCHDOG = `
const fs = require('node:fs');
const [, parent, file, marker] = process.argv;
let pids = [];
const read = () => { try { pids = JSON.parse(fs.readFileSync(file, 'utf8')).map((r) => r.pid); } catch {} };
const ours = (pid) => { try { return fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0').some((a) => a.includes(marker)); } catch { return false; } };
read();
setInterval(() => {
  if (process.ppid === Number(parent)) return read();
  for (const pid of pids) if (ours(pid)) try { process.kill(pid, 'SIGKILL'); } catch {}
  process.exit(0);
}, 500);
`;

/** `count` distinct ports the system considers free now. */
async function freePorts(count: number, host: string): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((ok, fail) => {
          const s = createServer();
          s.once('error', fail);
          s.listen(0, host, () => ok(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  return value;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * A cluster on one machine: `natsServers` nats-server processes with
 * JetStream in one NATS cluster, then `nodes` adanns nodes in cluster mode,
 * each a child process with its own port, data directory and log file. The
 * fault tests kill and restart single processes through it.
 */
export class LocalCluster {
  readonly dir: string;
  readonly host: string;
  readonly nats: LocalNats[];
  readonly nodes: LocalNode[];
  readonly natsVersion: string;
  /** Every port in use, to start another cluster on the same ones (a restart on the same directory). */
  readonly ports: PortTable;
  private readonly options: LocalClusterOptions;
  private readonly pidFile: PidFile;
  private readonly onUnexpectedExit: UnexpectedExit;
  private readonly nodeCommand: { command: string; args: string[] };
  private readonly killAllNow = () => this.children().forEach((c) => c.killNow());
  private stopping: Promise<void> | undefined;
  private watchdog: ChildProcess | undefined;
  /** Clusters started by this process and not yet stopped (LocalCluster.stopAll). */
  private static readonly running = new Set<LocalCluster>();

  /** Stops every cluster this process started and has not stopped: a test's teardown after a timeout, whatever was left mid-run. */
  static async stopAll(): Promise<void> {
    await Promise.all([...LocalCluster.running].map((c) => c.stop()));
  }

  private constructor(options: LocalClusterOptions, natsVersion: string, ports: PortTable, host: string) {
    this.options = options;
    this.dir = resolve(options.dir);
    this.host = host;
    this.natsVersion = natsVersion;
    this.ports = ports;
    this.pidFile = new PidFile(join(this.dir, 'pids.json'), this.dir);
    this.onUnexpectedExit =
      options.onUnexpectedExit ??
      ((name, pid, exit, tail) => console.error(`${name} (pid ${pid}) exited unexpectedly (${describeExit(exit)})${tail ? `; its log ends:\n${tail}` : ''}`));
    this.nodeCommand = options.nodeCommand ?? defaultNodeCommand(options.nodeFrom ?? (import.meta.url.endsWith('.ts') ? 'source' : 'dist'));
    this.nats = ports.natsClient.map((clientPort, i) => {
      const name = `nats${i + 1}`;
      const spec: NatsServerSpec = {
        name,
        host,
        clientPort,
        clusterPort: ports.natsCluster[i],
        monitorPort: ports.natsMonitor[i],
        storeDir: join(this.dir, 'nats', name),
        routePorts: ports.natsCluster,
        clusterName: 'adanns',
        ...(options.syncAlways ? { syncAlways: true } : {}),
      };
      return { name, clientUrl: `nats://${host}:${spec.clientPort}`, spec, configFile: join(this.dir, 'nats', `${name}.conf`), logFile: join(this.dir, 'logs', `${name}.log`) };
    });
    this.nodes = ports.node.map((port, i) => {
      const id = `n${i + 1}`;
      return { id, port, url: `http://${host}:${port}`, dataDir: join(this.dir, 'nodes', id), logFile: join(this.dir, 'logs', `${id}.log`) };
    });
  }

  /** Starts the NATS servers, waits for JetStream, then starts the nodes and waits until each is ready. */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const natsCount = positive('natsServers', options.natsServers ?? 3);
    const nodeCount = positive('nodes', options.nodes ?? 4);
    const host = options.host ?? '127.0.0.1';
    const version = await natsServerVersion(options.natsServerBin ?? 'nats-server');
    if (options.syncAlways && !hasSyncInterval(version)) throw new Error(`nats-server ${version} has no sync_interval setting (it arrived in 2.10.0): it cannot fsync every write; run without syncAlways or with nats-server 2.10 or later`);
    let ports: PortTable;
    const given = options.ports;
    if (given !== undefined && given !== 'free' && Array.isArray((given as PortTable).natsClient)) {
      ports = given as PortTable;
      if (ports.natsClient.length !== natsCount || ports.node.length !== nodeCount) throw new Error(`the port table has ${ports.natsClient.length} servers and ${ports.node.length} nodes, not ${natsCount} and ${nodeCount}`);
    } else if (given === 'free') {
      const free = await freePorts(3 * natsCount + nodeCount, host);
      ports = { natsClient: free.slice(0, natsCount), natsCluster: free.slice(natsCount, 2 * natsCount), natsMonitor: free.slice(2 * natsCount, 3 * natsCount), node: free.slice(3 * natsCount) };
    } else {
      const bases: PortBases = { ...DEFAULT_PORTS, ...(given as Partial<PortBases> | undefined) };
      for (const [name, port] of Object.entries(bases)) {
        const count = name === 'node' ? nodeCount : natsCount;
        if (!Number.isInteger(port) || port < 1 || port + count - 1 > 65535) throw new Error(`port base ${name} must be from 1 to ${65536 - count}, got ${port}`);
      }
      const run = (base: number, count: number) => Array.from({ length: count }, (_, i) => base + i);
      ports = { natsClient: run(bases.natsClient, natsCount), natsCluster: run(bases.natsCluster, natsCount), natsMonitor: run(bases.natsMonitor, natsCount), node: run(bases.node, nodeCount) };
    }
    const cluster = new LocalCluster(options, version, ports, host);
    await cluster.boot();
    return cluster;
  }

  private async boot(): Promise<void> {
    if (this.options.fresh) rmSync(this.dir, { recursive: true, force: true });
    for (const sub of ['nats', 'nodes', 'logs']) mkdirSync(join(this.dir, sub), { recursive: true });
    const reaped = await this.pidFile.reapStale();
    if (reaped.length > 0) console.error(`stopped processes a previous launcher left running on ${this.dir}: ${reaped.join(', ')}`);
    process.on('exit', this.killAllNow);
    LocalCluster.running.add(this);
    this.watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), join(this.dir, 'pids.json'), this.dir], { stdio: 'ignore', detached: true });
    this.watchdog.unref();
    try {
      for (const n of this.nats) this.spawnNats(n);
      await this.waitForJetStream();
      if (!this.options.withoutNodes) await Promise.all(this.nodes.map((n) => this.startNode(n.id)));
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** The servers' client URLs, comma-separated: the value of `adanns serve --cluster`. */
  get natsUrl(): string {
    return this.nats.map((n) => n.clientUrl).join(',');
  }

  children(): Supervised[] {
    return [...this.nodes, ...this.nats].flatMap((c) => (c.process ? [c.process] : []));
  }

  node(id: string): LocalNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id} (nodes: ${this.nodes.map((n) => n.id).join(', ')})`);
    return node;
  }

  natsServer(name: string): LocalNats {
    const server = this.nats.find((n) => n.name === name);
    if (!server) throw new Error(`no nats server ${name} (servers: ${this.nats.map((n) => n.name).join(', ')})`);
    return server;
  }

  private spawnNats(n: LocalNats): void {
    if (n.process?.running) throw new Error(`${n.name} is already running (pid ${n.process.pid})`);
    writeFileSync(n.configFile, natsConfig(n.spec));
    n.process = new Supervised({ name: n.name, command: this.options.natsServerBin ?? 'nats-server', args: ['-c', n.configFile], logFile: n.logFile }, this.onUnexpectedExit);
    this.pidFile.write(this.children());
  }

  private async waitForJetStream(requireHealthy = true): Promise<string> {
    const running = this.nats.filter((n) => n.process?.running);
    return waitForJetStream(
      this.host,
      running.map((n) => n.spec.monitorPort),
      this.options.readyTimeoutMs ?? 60_000,
      () => running.every((n) => n.process?.running),
      requireHealthy,
    );
  }

  /** (Re)starts a node on its data directory and waits until its /readyz answers 200. */
  async startNode(id: string): Promise<void> {
    const node = this.node(id);
    if (node.process?.running) throw new Error(`node ${id} is already running (pid ${node.process.pid})`);
    mkdirSync(node.dataDir, { recursive: true });
    const args = [...this.nodeCommand.args, 'serve', '--cluster', this.natsUrl, '--node-id', id, '--host', this.host, '--port', String(node.port), '--data-dir', node.dataDir];
    const env = { ...process.env, ADANNS_THREADS: String(this.options.threads ?? 1), ADANNS_PARENT_PID: String(process.pid), ...this.options.nodeEnv };
    const child = new Supervised({ name: `adanns ${id}`, command: this.nodeCommand.command, args, env, logFile: node.logFile }, this.onUnexpectedExit);
    node.process = child;
    this.pidFile.write(this.children());
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (!child.running) throw new Error(`node ${id} exited while starting (${child.describeExit()}); see ${node.logFile}`);
      try {
        const res = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`node ${id} was not ready within ${this.options.readyTimeoutMs ?? 60_000} ms; see ${node.logFile}`);
      await sleep(100);
    }
  }

  /** kill -9 (by default) of one node; resolves once it has exited. */
  async killNode(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.node(id);
    if (!node.process?.running) throw new Error(`node ${id} is not running`);
    await node.process.kill(signal);
    this.pidFile.write(this.children());
  }

  /** kill -9 (by default) of one nats-server; resolves once it has exited. */
  async killNats(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const server = this.natsServer(name);
    if (!server.process?.running) throw new Error(`${name} is not running`);
    await server.process.kill(signal);
    this.pidFile.write(this.children());
  }

  /** Restarts a nats-server on its store and waits until every server names one meta leader again (the streams it holds catch up after). */
  async startNats(name: string): Promise<void> {
    this.spawnNats(this.natsServer(name));
    await this.waitForJetStream(false);
  }

  /** Stops the nodes (SIGTERM: they drain), then the NATS servers; idempotent. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      await Promise.all(this.nodes.map((n) => n.process?.stop()));
      await Promise.all(this.nats.map((n) => n.process?.stop()));
      this.pidFile.write(this.children());
      process.off('exit', this.killAllNow);
      this.watchdog?.kill('SIGKILL');
      LocalCluster.running.delete(this);
    })());
  }
}
