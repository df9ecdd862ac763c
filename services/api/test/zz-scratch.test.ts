import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import { loadConfig, serve } from '../src/index.js';

it('scratch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-scr-'));
  const { url, stop } = await serve({ ...loadConfig([], {}), port: 0, dataDir: dir, threads: 1, logLevel: 'error', autoBuildAt: 0 });
  const j = (m: string, p: string, b?: unknown, h: Record<string,string> = {}) => fetch(url + p, { method: m, headers: { 'content-type': 'application/json', ...h }, body: b === undefined ? undefined : typeof b === 'string' ? b : JSON.stringify(b) }).then(async (r) => [r.status, (await r.text()).slice(0, 300)]);
  console.log(await j('PUT', '/v1/collections/c', { dim: 2, metric: 'cosine' }));
  console.log(await j('POST', '/v1/collections/c/points', { points: [{ id: 'a', vector: [0, 1] }, { id: 'tiny', vector: [1e-40, 0] }, { id: 'b', vector: [1, 1] }] }));
  console.log(await j('POST', '/v1/collections/c/search', { vector: [0.1, 1], k: 3 }));
  console.log(await j('POST', '/v1/collections/c/search', { vector: [0, 1], k: 3 }));
  console.log(await j('POST', '/v1/collections/c/points', { points: [{ id: 'z', vector: [0, 0] }] }));
  console.log(await j('POST', '/v1/collections/c/points', { points: [{ id: '\ud800', vector: [0, 1] }] }));
  console.log(await j('POST', '/v1/collections/c/points', '{"points":[{"id":"x","vector":[0,1],"payload":{"__proto__":{"a":1}}}]}'));
  console.log(await j('GET', '/v1/collections/c/points/%E0%A4%A'));
  console.log(await j('GET', '/v1/collections/c/points/' + 'x'.repeat(600)));
  console.log(await j('GET', '/v1/collections/c/points/a', undefined, {}));
  await stop();
});
