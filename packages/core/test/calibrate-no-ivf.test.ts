import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { AdannsIndex } from '../src/index.js';

// An index without an IVF stage has no coarseDim or nprobe: its calibration grid and the
// params it reports carry them as 0, and those params must be accepted back (calibration,
// budget plans), while an explicit coarseDim or nprobe is still refused.
describe('an index without IVF', () => {
  it('calibrates, plans a budget and searches with the planned params', async () => {
    const n = 300;
    const dim = 8;
    const data = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i * 1.7));
    const index = await AdannsIndex.build(new ReferenceBackend(), 'flat@8', data, n, dim, { metric: 'l2', calibrate: { sampleSize: 50, maxSeconds: 5 } });
    expect(index.calibration?.points.length).toBeGreaterThan(0);
    const plan = index.plan({ recall: 0.5 }, 10);
    const result = await index.search(data.subarray(0, dim), 1, 10, plan.params);
    expect(result.counts[0]).toBe(10);
    expect(() => index.resolveParams(10, { nprobe: 2 })).toThrow(/no IVF stage/);
  });
});
