import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, serve } from '../src/index.js';

// /metrics over a real loopback socket: guarded by a configured key unless ADANNS_METRICS_OPEN says otherwise.

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-metrics-'));
  dirs.push(dir);
  const { url, stop, store } = await serve({ ...loadConfig([], env), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: 'silent', autoBuildAt: 0 });
  stops.push(stop);
  await store.opened;
  return url;
}

async function get(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${url}${path}`, { headers });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

const isMetrics = (r: { status: number; type: string | null; text: string }) => {
  expect(r.status).toBe(200);
  expect(r.type).toMatch(/^text\/plain/);
  expect(r.text).toMatch(/^# HELP adanns_http_requests_total /m);
};

describe('/metrics access', () => {
  it('needs a key (admin or read) when one is configured', async () => {
    const url = await start({ ADANNS_API_KEY: 'admin-secret', ADANNS_READ_KEY: 'reader' });
    const anonymous = await get(url, '/metrics');
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.text)).toMatchObject({ error: 'unauthorized', message: expect.stringMatching(/API key is required/) });
    expect((await get(url, '/metrics', { authorization: 'Bearer wrong' })).status).toBe(401);
    // what a Prometheus scrape config sends (authorization: {credentials: KEY}), and the api-key header
    isMetrics(await get(url, '/metrics', { authorization: 'Bearer admin-secret' }));
    isMetrics(await get(url, '/metrics', { authorization: 'Bearer reader' }));
    isMetrics(await get(url, '/metrics', { 'api-key': 'reader' }));
    // health and readiness stay open for probes
    expect((await get(url, '/healthz')).status).toBe(200);
    expect((await get(url, '/readyz')).status).toBe(200);
  });

  it('stays open with ADANNS_METRICS_OPEN=true, and only /metrics does', async () => {
    const url = await start({ ADANNS_API_KEY: 'admin-secret', ADANNS_METRICS_OPEN: 'true' });
    isMetrics(await get(url, '/metrics'));
    isMetrics(await get(url, '/metrics', { authorization: 'Bearer admin-secret' }));
    expect((await get(url, '/v1/collections')).status).toBe(401);
  });

  it('is open, as every route, when no key is configured', async () => {
    const url = await start({});
    isMetrics(await get(url, '/metrics'));
    expect((await get(url, '/v1/collections')).status).toBe(200);
  });

  it('reads ADANNS_METRICS_OPEN as a flag, naming a bad value', () => {
    expect(loadConfig([], {}).metricsOpen).toBe(false);
    expect(loadConfig([], { ADANNS_METRICS_OPEN: '1' }).metricsOpen).toBe(true);
    expect(() => loadConfig([], { ADANNS_METRICS_OPEN: 'yes' })).toThrow(/ADANNS_METRICS_OPEN must be true or false, got "yes"/);
  });
});
