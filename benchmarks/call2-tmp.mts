import { WasmSimdBackend, TopK, fastScanBytes } from '@adanns/compute';
const b = await WasmSimdBackend.create({ threads: 1 });
const n = 32, calls = 50000;
const best = new TopK(1, 50), rows = Int32Array.of(0), ids = b.arena.int32(n);
const fcodes = b.arena.uint8(fastScanBytes(32, n)); const ftables = new Uint8Array(32 * 16); const sc = Float32Array.of(0.01), bi = Float32Array.of(0);
const acodes = b.arena.uint8(n * 16); const atables = new Float32Array(16 * 256); const abias = Float32Array.of(0);
for (let r = 0; r < 3; r++) {
  let t = performance.now();
  for (let i = 0; i < calls; i++) await b.fastScanTopK(ftables, 1, 32, fcodes, n, sc, bi, best, ids, rows);
  const f = (performance.now() - t) * 1000 / calls;
  t = performance.now();
  for (let i = 0; i < calls; i++) await b.adcScanTopK(atables, 1, 16, acodes, n, best, ids, rows, abias);
  const a = (performance.now() - t) * 1000 / calls;
  t = performance.now();
  for (let i = 0; i < calls; i++) await Promise.resolve();
  const p = (performance.now() - t) * 1000 / calls;
  console.log(`fastScanTopK ${f.toFixed(2)} us, adcScanTopK ${a.toFixed(2)} us, await ${p.toFixed(2)} us`);
}
await b.dispose();
