/**
 * What payload indexes cost and buy, on a PointStore in a temporary
 * directory: upsert time with and without three indexes, and filter
 * evaluation time (median of 5) from the indexes and from the payloads.
 *
 *   node --import tsx --conditions adanns-source packages/store/test/soak/filter-bench.ts [--points 100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseFilter, type Filter } from '@adanns/wire';
import { evaluateFilter } from '../../src/filter.js';
import { PointStore } from '../../src/points.js';
import { makeSchema } from '../../src/schema.js';
import type { PayloadIndexType } from '../../src/payload-index.js';

const { values } = parseArgs({ options: { points: { type: 'string', default: '100000' } } });
const n = Number(values.points);
const dim = 8;
const INDEXES: Record<string, PayloadIndexType> = { c: 'keyword', n: 'integer', x: 'float' };
const payload = (i: number) => ({ c: `c${i % 10}`, n: i, x: (i * 7919) % 1000 / 10, ...(i % 50 === 0 ? {} : { t: ['a', 'b'] }) });

async function load(indexes: Record<string, PayloadIndexType>): Promise<{ store: PointStore; dir: string; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'adanns-filter-bench-'));
  const { store } = PointStore.open(join(dir, 'points'), makeSchema('bench', { dim, metric: 'l2' }));
  for (const [f, t] of Object.entries(indexes)) await store.declarePayloadIndex(f, t, 'ready');
  const started = performance.now();
  for (let from = 0; from < n; from += 10_000) {
    await store.upsert(Array.from({ length: Math.min(10_000, n - from) }, (_, j) => ({ id: from + j, vector: new Float32Array(dim).fill(from + j), payload: payload(from + j) })));
  }
  return { store, dir, seconds: (performance.now() - started) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
async function time(store: PointStore, filter: Filter): Promise<{ ms: number; count: number }> {
  const node = parseFilter(filter);
  const ms: number[] = [];
  let count = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    count = (await evaluateFilter(store, node)).allowed.count;
    ms.push(performance.now() - t);
  }
  return { ms: median(ms), count };
}

const FILTERS: [string, Filter][] = [
  ['keyword match (10%)', { must: [{ key: 'c', match: { value: 'c3' } }] }],
  ['integer range (1%)', { must: [{ key: 'n', range: { gte: 5000, lt: 5000 + n / 100 } }] }],
  ['keyword any + float range (~5%)', { must: [{ key: 'c', match: { any: ['c1', 'c2'] } }, { key: 'x', range: { lt: 25 } }] }],
  ['must_not keyword (90%)', { must_not: [{ key: 'c', match: { value: 'c3' } }] }],
];

const plain = await load({});
const indexed = await load(INDEXES);
console.log(`${n} points, dim ${dim}: upsert in 10,000-point batches ${plain.seconds.toFixed(2)} s without payload indexes, ${indexed.seconds.toFixed(2)} s with ${Object.keys(INDEXES).length} (${Object.entries(INDEXES).map(([f, t]) => `${f}:${t}`).join(', ')})`);
for (const [what, filter] of FILTERS) {
  const a = await time(indexed.store, filter);
  const b = await time(plain.store, filter);
  if (a.count !== b.count) throw new Error(`${what}: ${a.count} from the indexes, ${b.count} from the payloads`);
  console.log(`${what.padEnd(34)} ${String(a.count).padStart(7)} matches   indexed ${a.ms.toFixed(1).padStart(7)} ms   payload scan ${b.ms.toFixed(1).padStart(7)} ms   (median of 5)`);
}
for (const s of [plain, indexed]) {
  await s.store.close();
  rmSync(s.dir, { recursive: true, force: true });
}
