import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AdannsClient, AdannsError } from '@adanns/client';
import { createRng } from '@adanns/compute';
import { loadConfig, serve } from '../src/index.js';

// POST /v1/collections/{name}/calibrate over a real socket, in JSON and MessagePack, and
// budgets at calibrated and uncalibrated k.

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-calibrate-'));
  dirs.push(dir);
  const { url, stop } = await serve({ ...loadConfig([], {}), host: '127.0.0.1', port: 0, dataDir: dir, threads: 1, logLevel: 'silent' });
  stops.push(stop);
  return url;
}

async function expectError(promise: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AdannsError);
  expect((error as AdannsError).status).toBe(status);
  expect((error as AdannsError).message).toMatch(message);
}

/** Points around 30 random centres. */
function clustered(rows: number, dim: number, seed: number): number[][] {
  const rng = createRng(seed);
  const centres = Array.from({ length: 30 }, () => Array.from({ length: dim }, () => rng.normal()));
  return Array.from({ length: rows }, () => {
    const c = centres[rng.int(30)];
    return c.map((v) => v + 0.5 * rng.normal());
  });
}

describe('calibration through the service', () => {
  it('calibrates on given queries in JSON and MessagePack, refuses bad ones, and plans budgets per k', async () => {
    const url = await start();
    const client = new AdannsClient(url);
    const packed = new AdannsClient(url, { format: 'msgpack' });
    const dim = 12;
    const all = clustered(3200, dim, 4);
    await client.createCollection('cal', { dim, index: 'ivf16@12,flat@12', calibrationK: [1, 10, 100] });
    await client.upsert('cal', all.slice(0, 3000).map((vector, id) => ({ id, vector })));
    const queries = all.slice(3000);
    // nothing to calibrate before an index is trained
    await expectError(client.calibrate('cal', queries.slice(0, 10)), 400, /has no trained index to calibrate/);
    await client.buildIndex('cal');
    const built = await client.waitForIndex('cal', 100, 120_000);
    expect(built).toMatchObject({ state: 'ready', calibration: { ks: [1, 10, 100], source: 'held-out', running: false } });

    await expectError(client.calibrate('cal', [queries[0]]), 400, /vectors/);
    await expectError(client.calibrate('cal', [queries[0], queries[1].slice(0, 5)]), 400, /vectors\[1\]/);
    await expectError(client.calibrate('cal', [queries[0], queries[1].map(() => Number.NaN)]), 400, /vectors\[1\]/);
    await expectError(client.calibrate('nope', queries.slice(0, 10)), 404, /nope/);

    const accepted = await client.calibrate('cal', queries.slice(0, 100));
    expect(accepted.calibration?.running).toBe(true);
    await expectError(client.calibrate('cal', queries.slice(0, 10)), 409, /already calibrating/);
    const given = await client.waitForCalibration('cal', 100, 120_000);
    expect(given.calibration).toMatchObject({ ks: [1, 10, 100], source: 'given', queries: 100, running: false, lastError: null });

    const f32 = queries.slice(100, 180).map((q) => Float32Array.from(q));
    await packed.calibrate('cal', f32);
    expect((await client.waitForCalibration('cal', 100, 120_000)).calibration).toMatchObject({ source: 'given', queries: 80, lastError: null });

    const at10 = await client.search('cal', queries[190], { k: 10, budget: { recall: 0.8 } });
    expect(at10.planned?.k).toBe(10);
    expect(at10.note).toBeNull();
    const at50 = await client.search('cal', queries[191], { k: 50, budget: { recall: 0.8 } });
    expect(at50.budgetMet).toBe(false);
    expect(at50.planned?.k).toBe(100);
    expect(at50.note).toMatch(/recall at k = 50 is not calibrated \(calibrated k: 1, 10, 100\)/);
  }, 240_000);

  it('re-calibrates an index that keeps no vectors at the full dimension', async () => {
    const client = new AdannsClient(await start());
    const dim = 12;
    const all = clustered(420, dim, 6);
    // a flat scan of 6-d prefixes and no re-rank: ground truth reads the collection's stored vectors
    await client.createCollection('prefix', { dim, metric: 'l2', index: 'ivf4@6,flat@6' });
    await client.upsert('prefix', all.slice(0, 400).map((vector, id) => ({ id, vector })));
    await client.buildIndex('prefix');
    expect(await client.waitForIndex('prefix', 100, 120_000)).toMatchObject({ state: 'ready', calibration: { source: 'held-out' } });
    const accepted = await client.calibrate('prefix', all.slice(400));
    expect(accepted.calibration?.running).toBe(true);
    const done = await client.waitForCalibration('prefix', 100, 120_000);
    expect(done.calibration).toMatchObject({ source: 'given', queries: 20, running: false, lastError: null });
  }, 240_000);

  it('reads the drift that re-calibrates from ADANNS_RECALIBRATE_DRIFT and names a bad one', () => {
    expect(loadConfig([], {}).recalibrateDrift).toBe(0.2);
    expect(loadConfig([], { ADANNS_RECALIBRATE_DRIFT: '0' }).recalibrateDrift).toBe(0);
    expect(() => loadConfig([], { ADANNS_RECALIBRATE_DRIFT: '1.5' })).toThrow(/ADANNS_RECALIBRATE_DRIFT must be a number from 0 to 1, got "1.5"/);
  });

  it('refuses a bad calibrationK when a collection is created', async () => {
    const client = new AdannsClient(await start());
    await expectError(client.createCollection('bad', { dim: 4, calibrationK: [] }), 400, /calibrationK/);
    await expectError(client.createCollection('bad', { dim: 4, calibrationK: [0] }), 400, /calibrationK/);
  });
});
