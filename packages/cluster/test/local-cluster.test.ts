import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { hasSyncInterval, jetStreamMeta, LocalCluster, natsConfig, natsServerVersion } from '@adanns/cluster';
import { alive } from '../../store/test/processes.js';

describe('local cluster launcher (NATS side)', () => {
  const dirs: string[] = [];
  const clusters: LocalCluster[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'adanns-local-cluster-'));
    dirs.push(d);
    return d;
  };
  afterEach(async () => {
    await Promise.all(clusters.splice(0).map((c) => c.stop()));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes a config nats-server accepts for each server, with every route', () => {
    const text = natsConfig({ name: 'nats1', host: '127.0.0.1', clientPort: 4222, clusterPort: 6222, monitorPort: 8222, storeDir: '/tmp/x y', routePorts: [6222, 6223, 6224], clusterName: 'adanns' });
    expect(text).toContain('store_dir: "/tmp/x y"');
    expect(text).toContain('routes: ["nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"]');
  });

  it('starts 3 servers with one JetStream meta leader, survives a kill -9, and stops every process', async () => {
    const dir = tempDir();
    const exits: string[] = [];
    const cluster = await LocalCluster.start({ dir, withoutNodes: true, ports: 'free', onUnexpectedExit: (name) => exits.push(name) });
    clusters.push(cluster);
    const metas = await Promise.all(cluster.nats.map((n) => jetStreamMeta(cluster.host, n.spec.monitorPort)));
    expect(new Set(metas.map((m) => m?.leader)).size).toBe(1);
    expect(metas.every((m) => m!.leader.startsWith('nats'))).toBe(true);
    // the config file on disk is the one the server runs
    expect(readFileSync(cluster.nats[0].configFile, 'utf8')).toContain(`listen: "127.0.0.1:${cluster.nats[0].spec.clientPort}"`);

    const leader = metas[0]!.leader;
    await cluster.killNats(leader);
    await cluster.startNats(leader);
    expect(exits).toEqual([]); // a kill asked for is not reported as a crash
    const pids = cluster.children().map((c) => c.pid);
    await cluster.stop();
    expect(pids.filter(alive)).toEqual([]);
  });

  it('reports a child that dies on its own, and a new launcher on the same directory stops what an old one left', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const exits: string[] = [];
    const old = await LocalCluster.start({ dir, withoutNodes: true, ports: 'free', onUnexpectedExit: (name, _pid, exit) => exits.push(`${name} ${exit.signal}`) });
    clusters.push(old);
    const oldPids = old.children().map((c) => c.pid);
    // as if the old launcher had been killed with SIGKILL: its servers still run (on the ports a restart needs);
    // the new one reaps them by the pid file
    const fresh = await LocalCluster.start({ dir, withoutNodes: true, ports: old.ports });
    clusters.push(fresh);
    expect(oldPids.filter(alive)).toEqual([]);
    expect(exits.sort()).toEqual(['nats1 SIGKILL', 'nats2 SIGKILL', 'nats3 SIGKILL']);
    expect(fresh.children().every((c) => c.running)).toBe(true);
  });

  it('npm run cluster: prints the nodes, answers on them, and stops every process on SIGTERM', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const main = fileURLToPath(new URL('../src/local/main.ts', import.meta.url));
    const child = spawn(process.execPath, [...process.execArgv, main, '--dir', dir, '--nodes', '1', '--free-ports'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => out.includes('Ctrl-C stops the cluster') && resolve());
      void exited.then((code) => reject(new Error(`the launcher exited (${code}) before it was up: ${err}`)));
    });
    const nodeUrl = /node n1: (http:\/\/\S+)/.exec(out)![1];
    const view = (await (await fetch(`${nodeUrl}/v1/cluster`)).json()) as { nodeId: string };
    expect(view.nodeId).toBe('n1');
    const pids = (JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')) as { pid: number }[]).map((p) => p.pid);
    expect(pids).toHaveLength(4);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped');
    expect(pids.filter(alive)).toEqual([]);
    expect(err).not.toMatch(/exited unexpectedly/);
  });

  it('leaves no server or node running when the launcher itself is killed with SIGKILL (its watchdog stops them)', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const main = fileURLToPath(new URL('../src/local/main.ts', import.meta.url));
    const child = spawn(process.execPath, [...process.execArgv, main, '--dir', dir, '--nodes', '1', '--free-ports'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => out.includes('Ctrl-C stops the cluster') && resolve());
      void exited.then(() => reject(new Error('the launcher exited before it was up')));
    });
    const pids = (JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')) as { pid: number }[]).map((p) => p.pid);
    expect(pids).toHaveLength(4);
    // no handler of the launcher runs on SIGKILL (as for a test worker killed after a timeout)
    child.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 20_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(pids.filter(alive)).toEqual([]);
  });

  it('fsyncs every write only where nats-server has the setting (2.10 and later), and says why not on 2.9', async () => {
    expect([hasSyncInterval('2.9.10'), hasSyncInterval('2.10.0'), hasSyncInterval('2.11.3'), hasSyncInterval('3.0.0')]).toEqual([false, true, true, true]);
    const spec = { name: 'nats1', host: '127.0.0.1', clientPort: 4222, clusterPort: 6222, monitorPort: 8222, storeDir: '/s', routePorts: [6222], clusterName: 'adanns' };
    expect(natsConfig(spec)).not.toMatch(/^\s*sync_interval/m);
    expect(natsConfig({ ...spec, syncAlways: true })).toContain('  sync_interval: always\n}');
    const version = await natsServerVersion('nats-server');
    const starting = LocalCluster.start({ dir: tempDir(), withoutNodes: true, ports: 'free', syncAlways: true });
    if (hasSyncInterval(version)) clusters.push(await starting);
    else await expect(starting).rejects.toThrow(`nats-server ${version} has no sync_interval setting`);
  });

  it('names a missing nats-server binary', async () => {
    await expect(LocalCluster.start({ dir: tempDir(), withoutNodes: true, ports: 'free', natsServerBin: 'no-such-nats-server' })).rejects.toThrow(/no-such-nats-server not found: install NATS/);
  });
});
