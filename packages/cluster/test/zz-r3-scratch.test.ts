import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, expect } from 'vitest';
import { LocalCluster } from '@adanns/cluster';
import { loadConfig, serve } from '@adanns/api';

it('r3', { timeout: 200_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'r3-'));
  const lc = await LocalCluster.start({ dir, ports: 'free', withoutNodes: true });
  const mk = (id: string) => serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: join(dir, id), threads: 1, logLevel: 'error', autoBuildAt: 0, cluster: { servers: [lc.natsUrl], nodeId: id, leaseMs: 5000, takeoverMs: 30000 } });
  const a = await mk('a'); const b = await mk('b');
  try {
    const j = (b: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
    await fetch(`${a.url}/v1/collections/c`, { method: 'PUT', ...j({ dim: 4, shards: 2, replicas: 2 }) });
    const pts = Array.from({ length: 100 }, (_, id) => ({ id, vector: [id, 1, 2, 3] }));
    const t0 = Date.now();
    const w = await (await fetch(`${a.url}/v1/collections/c/points`, { method: 'POST', ...j({ points: pts }) })).json();
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const st = await (await fetch(`${a.url}/v1/cluster`)).json();
      if (st.collections[0].shards.every((s: any) => s.replicas.every((r: any) => r.state === 'serving' && r.appliedSeq === s.lastSeq))) { console.log('settled after', Date.now() - t0); break; }
    }
    for (const victim of [0, 1]) {
      await lc.killNats(lc.nats[victim].name);
      let t = Date.now();
      const w2 = await fetch(`${b.url}/v1/collections/c/points`, { method: 'POST', ...j({ points: pts.map((p) => ({ ...p, id: p.id + 1000 * (victim + 1) })) }) });
      const w2b = await w2.json();
      console.log('write with nats', victim, 'down', Date.now() - t, w2.status, JSON.stringify(w2b).slice(0, 100));
      t = Date.now();
      let c: any;
      for (;;) {
        c = await (await fetch(`${a.url}/v1/collections/c/points/count`, { method: 'POST', ...j({ after: w2b.writeToken, timeoutMs: 3000 }) })).json();
        if (c.count !== undefined || Date.now() - t > 90_000) break;
      }
      console.log('count', Date.now() - t, JSON.stringify(c).slice(0, 300));
      const { execSync } = await import('node:child_process');
      console.log(execSync(`grep -h -i "leader\\|elect" ${dir}/logs/*.log | tail -30`).toString());
      t = Date.now();
      const s = await fetch(`${b.url}/v1/collections/c/search`, { method: 'POST', ...j({ vector: [5, 1, 2, 3], k: 3 }) });
      console.log('search', Date.now() - t, s.status);
      await lc.startNats(lc.nats[victim].name);
      expect(w2.status).toBe(200);
      expect(c.count).toBe(100 * (victim + 2));
    }
  } finally {
    await a.stop(); await b.stop(); await lc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
