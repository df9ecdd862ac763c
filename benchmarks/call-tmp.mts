import { WasmSimdBackend, TopK, fastScanBytes } from '@adanns/compute';
const b = await WasmSimdBackend.create({ threads: 1 });
const m = 32;
for (const n of [32]) {
  const codes = b.arena.uint8(fastScanBytes(m, Math.max(n, 1)));
  for (let i = 0; i < codes.length; i++) codes[i] = (i * 2654435761) >>> 24;
  const ids = b.arena.int32(Math.max(n, 1));
  const tables = Uint8Array.from({ length: m * 16 }, (_, i) => (i * 97) & 255);
  const sc = Float32Array.of(0.01), bi = Float32Array.of(0), rows = Int32Array.of(0);
  const best = new TopK(1, 50);
  const calls = 100000;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    for (let i = 0; i < calls; i++) await b.fastScanTopK(tables, 1, m, codes, n, sc, bi, best, ids, rows);
    console.log(`n=${n}: ${((performance.now() - t) * 1000 / calls).toFixed(2)} us per call`);
  }
}
await b.dispose();
