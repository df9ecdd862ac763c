import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { AdannsClient } from '@adanns/client';
import { loadConfig, serve } from '../src/index.js';
import { registerConsole } from '../src/console.js';
import { registerErrors } from '../src/errors.js';

// What the web console reads beyond the collection's stats (GET /v1/collections/{name}: frontierK,
// specParts, spectrum, each frontier point's latencyMs), and /console before the bundle is built.
// The console itself is tested in a browser: services/console/test/console.test.ts.

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the console route and the collection details it plots', () => {
  it('answers 404 saying how to build the console when its bundle is missing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'adanns-no-console-'));
    dirs.push(root);
    const app = Fastify();
    registerErrors(app);
    await registerConsole(app, `${root}/`);
    for (const url of ['/console', '/console/', '/console/console.js']) {
      const reply = await app.inject({ url });
      expect(reply.statusCode).toBe(404);
      expect(reply.json()).toEqual({ error: 'not_found', message: `the console is not built (no bundle in ${root}/): run npm run build` });
    }
    await app.close();
  });

  it('gives the frontier with latencies and its k, the spec by stage and the PCA spectrum', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adanns-details-'));
    dirs.push(dir);
    const { url, stop } = await serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: 'silent', autoBuildAt: 0 });
    stops.push(stop);
    const client = new AdannsClient(url);
    const dim = 16;
    await client.createCollection('d', { dim, metric: 'l2', index: 'pca,ivf8@8,flat@16', calibrationK: [5] });
    let seed = 11;
    const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    await client.upsert('d', Array.from({ length: 300 }, (_, id) => ({ id, vector: Array.from({ length: dim }, (_, j) => next() / (1 + j)) })));
    const before = await client.getCollection('d');
    expect([before.frontierK, before.specParts, before.spectrum, before.frontier]).toEqual([null, null, null, []]);
    await client.buildIndex('d');
    expect((await client.waitForIndex('d', 100, 120_000)).state).toBe('ready');
    const info = await client.getCollection('d');
    expect(info.frontierK).toBe(5);
    expect(info.specParts).toEqual({ transform: 'pca', coarse: { dim: 8, lists: 8 }, scan: { codec: 'flat', dim: 16 } });
    expect(info.frontier!.length).toBeGreaterThan(0);
    for (const p of info.frontier!) expect(p.latencyMs).toBeGreaterThan(0);
    const spectrum = info.spectrum!;
    // the ladder and 64 evenly spaced prefixes, at most one point per dimension
    expect(spectrum.map((s) => s.dim)).toEqual(Array.from({ length: dim }, (_, i) => i + 1));
    for (let i = 1; i < spectrum.length; i++) expect(spectrum[i].share).toBeGreaterThanOrEqual(spectrum[i - 1].share);
    expect(spectrum.at(-1)!.share).toBeCloseTo(1, 10);
    // the list omits them: they are for one collection's page
    const listed = (await client.listCollections()).find((c) => c.name === 'd')!;
    expect('spectrum' in listed).toBe(false);
  });
});
