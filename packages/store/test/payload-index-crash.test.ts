import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { Store } from '../src/index.js';

let backend: WasmSimdBackend;
const dir = mkdtempSync(join(tmpdir(), 'adanns-payload-crash-'));
beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
});
afterAll(async () => {
  await backend.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('a payload index build interrupted by a crash', () => {
  it('goes on at the next open and ends complete and consistent with the payloads', async () => {
    const points = 20_000;
    // run from source like this file: the child gets the same TypeScript loader (process.execArgv)
    const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'payload-index-child.ts'), dir, String(points)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // killed after a few rewrites acknowledged during the build
    let acked = 0;
    for await (const text of createInterface({ input: child.stdout! })) {
      if (text.startsWith('ack ')) acked++;
      if (acked === 2) break;
    }
    child.kill('SIGKILL');
    await exited;

    const store = await Store.open(dir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0 });
    try {
      const c = store.get('indexed');
      expect(c.count).toBe(points);
      // the kill landed mid-build: the declarations say so, and the build goes on
      expect(c.stats().payloadIndexes.map((i) => i.state)).toContain('building');
      await c.whenPayloadIndexed();
      expect(c.stats().payloadIndexes.map((i) => [i.field, i.state])).toEqual([
        ['n', 'ready'],
        ['tag', 'ready'],
      ]);
      // every entry the payloads call for, and none other
      expect(c.checkPayloadIndexes()).toEqual([]);
      // counts from the indexes equal counts from reading every payload
      const fromIndex = await c.countPoints({ must: [{ key: 'n', range: { gte: 100, lt: 400 } }, { key: 'tag', match: { any: ['t1', 't3'] } }] });
      // (one clause holding an unindexed condition: every point's payload decides the whole clause)
      const fromPayloads = await c.countPoints({ must: [{ must: [{ key: 'n', range: { gte: 100, lt: 400 } }, { should: [{ key: 'tag', match: { value: 't1' } }, { key: 'tag', match: { value: 't3' } }] }, { is_empty: { key: 'unindexed' } }] }] });
      expect(fromIndex.note).toBeNull();
      expect(fromPayloads.note).toMatch(/"unindexed"/);
      expect(fromIndex.count).toBe(fromPayloads.count);
      expect(fromIndex.count).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  }, 120_000);
});
