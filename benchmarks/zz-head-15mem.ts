// One-memory scan cost: this tree's CPU backend against edd3780's (before several memories), interleaved passes.
import * as now from '@adanns/compute';
import * as head from '/tmp/head/packages/compute/src/index.ts';
const rows = 1000, dim = 64, passes = 31, calls = 1500;
const rng = now.createRng(7);
const values = Float32Array.from({ length: rows * dim }, () => rng.next() - 0.5);
const norms = now.computeInvNorms(now.rowBlock(values, rows, dim), dim);
const ids = Int32Array.from({ length: rows }, (_, j) => j * 3);
const q = Float32Array.from({ length: dim }, () => rng.next() - 0.5);
async function setup(lib: any) {
  const b = await lib.WasmSimdBackend.create({ threads: 1 });
  const d = b.arena.float32(rows * dim); d.set(values);
  const n = b.arena.float32(rows); n.set(norms);
  const i = b.arena.int32(rows); i.set(ids);
  const block = lib.rowBlock(d, rows, dim, 0, n), query = lib.rowBlock(q, 1, dim);
  return { b, run: () => b.scanTopK(query, block, dim, 'cosine', new lib.TopK(1, 10), i) };
}
const a = await setup(head), c = await setup(now);
const t: Record<string, number[]> = { before: [], now: [] };
for (let p = 0; p < passes; p++) for (const [name, s] of [['before', a], ['now', c]] as const) {
  const st = performance.now(); for (let k = 0; k < calls; k++) await s.run(); t[name].push((performance.now() - st) * 1000 / calls);
}
const med = (x: number[]) => [...x].sort((u, v) => u - v)[x.length >> 1];
console.log(JSON.stringify({ shape: '1 x 1000 x 64 cosine top-10, ids+norms in arena, 1 thread', beforeUs: +med(t.before).toFixed(2), nowUs: +med(t.now).toFixed(2), ratio: +(med(t.now) / med(t.before)).toFixed(3) }));
await a.b.dispose(); await c.b.dispose();
