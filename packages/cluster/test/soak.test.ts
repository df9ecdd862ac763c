import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '@adanns/cluster';
import { soakCluster } from './soak/run.js';
import { SCENARIOS, type ScenarioResult } from './soak/scenarios.js';

/**
 * The small form of `npm run soak:cluster`: every fault scenario once, on a
 * fresh loopback cluster (3 nats-server, 4 nodes run from source), with a few
 * seconds of load and a few hundred points each.
 */
describe('cluster fault scenarios (small soak)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-soak-test-'));
  // a run past the timeout is still going when this runs: stop its cluster before removing its directory
  afterAll(async () => {
    await LocalCluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write on every replica, deletes deleted and searches answered through kills of nodes and servers', { timeout: 300_000 }, async () => {
    const results: ScenarioResult[] = [];
    const run = await soakCluster(Object.keys(SCENARIOS), { dir, seconds: 4, points: 200, batch: 10, catchUpTimeoutMs: 60_000, emit: (r) => results.push(r) });
    // the JSON lines, for whoever reads the test log
    for (const r of results) console.log(JSON.stringify(r));
    expect(run.crashes).toEqual([]);
    expect(results.map((r) => r.scenario)).toEqual(Object.keys(SCENARIOS));
    for (const r of results) {
      expect(r, r.scenario).toMatchObject({ ok: true, searchesFailed: 0, writesMissing: 0, deletesResurrected: 0 });
      // something was written and read back, so the zeros above mean something
      expect(r.writesAcknowledged, r.scenario).toBeGreaterThan(0);
      expect(r.replicaReads as number, r.scenario).toBeGreaterThan(0);
    }
    const underLoad = results.filter((r) => r.scenario.startsWith('kill-'));
    for (const r of underLoad) expect(r.searchesSent, r.scenario).toBeGreaterThan(0);
  });
});
