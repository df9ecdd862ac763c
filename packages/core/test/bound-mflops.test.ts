import { describe, expect, it } from 'vitest';
import { METRICS, ReferenceBackend } from '@adanns/compute';
import { generateSynthetic } from '@adanns/datasets';
import { AdannsIndex, type SearchParams } from '../src/index.js';

// AdannsIndex.boundMflops (what work limits check params calibration never
// measured against) counts by the same terms as a search: it bounds every
// query's reported MFLOPs, and equals them when every list is probed.

const dim = 32;
const n = 600;
const { base, queries } = generateSynthetic({ n, dim, clusters: 8, queries: 6, decay: 0.5, seed: 7 });
const k = 5;

const shapes: { spec: string; params: Partial<SearchParams> }[] = [
  { spec: 'flat', params: { scanDim: 13 } },
  // cosine off the dims ladder: the scan computes the members' norms too
  { spec: 'ivf8@16,f16@32', params: { scanDim: 12 } },
  { spec: 'pca,ivf8@16,flat@16,rerank@32', params: { shortlist: 20, scanDim: 8 } },
  { spec: 'ivf8@16,pq8@32', params: {} },
  { spec: 'ivf8@16,opq8@32,rerank@32', params: { shortlist: 20 } },
  // 4-bit fast scan: 16-entry tables, q . ref per list (ip, cosine), per-list tables (l2)
  { spec: 'ivf8@16,pq8x4@32,rerank@32', params: { shortlist: 20 } },
  { spec: 'pca,ivf8@16,opq8x4@16,rerank@24:f32', params: { shortlist: 25 } },
];

describe('AdannsIndex.boundMflops', () => {
  for (const metric of METRICS) {
    for (const shape of shapes) {
      it(`${shape.spec} (${metric}): bounds each query, exact when every list is probed`, async () => {
        const index = await AdannsIndex.build(new ReferenceBackend(), shape.spec, base.data, n, dim, { metric, seed: 3, opqIterations: 2, kmeansIterations: 4 });
        const lists = index.spec.coarse?.lists ?? 0;
        for (const nprobe of lists > 0 ? [2, lists] : [0]) {
          const p = index.resolveParams(k, { ...shape.params, ...(lists > 0 ? { nprobe } : {}) });
          const result = await index.search(queries.data, queries.rows, k, p);
          const bound = index.boundMflops(p);
          const largest = Math.max(...result.mflops);
          if (nprobe === lists) expect(bound).toBeCloseTo(largest, 9);
          else expect(bound).toBeGreaterThanOrEqual(largest - 1e-9);
        }
      });
    }
  }
});
