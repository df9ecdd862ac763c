import { WasmSimdBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex } from '@adanns/core';
const b = await WasmSimdBackend.create({ threads: 1 });
const dim = 64;
const { base, queries } = generateSynthetic({ n: 60000, dim, clusters: 64, queries: 300, seed: 5 });
const specs = process.argv.slice(2);
const idx = [];
for (const spec of specs) idx.push(await AdannsIndex.build(b, spec, base.data, base.rows, dim, { metric: 'cosine', seed: 1 }));
for (const params of [{ nprobe: 4, shortlist: 50 }, { nprobe: 16, shortlist: 50 }, { nprobe: 64, shortlist: 50 }]) {
  const res: number[][] = idx.map(() => []);
  for (let pass = 0; pass < 5; pass++) for (let x = 0; x < idx.length; x++) {
    const t = performance.now();
    for (let i = 0; i < 300; i++) await idx[x].search(queries.data.subarray(i * dim, (i + 1) * dim), 1, 10, params);
    res[x].push((performance.now() - t) * 1000 / 300);
  }
  console.log(JSON.stringify(params), specs.map((s, x) => `${s}: ${res[x].sort((a, c) => a - c)[2].toFixed(0)} us`).join('  '));
}
await b.dispose();
