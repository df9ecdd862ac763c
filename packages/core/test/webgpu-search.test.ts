import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebGpuBackend } from '@adanns/compute';
import { AdannsIndex } from '../src/index.js';
import { AGREEMENT_CASES, expectBackendsAgree } from './same-results.js';
import { randomMatrix } from '../../compute/test/naive.js';

// End-to-end: IVF-flat and IVF-OPQ searches on WebGPU equal the reference's.
// REQUIRE_WEBGPU=1 (CI) fails without an adapter; elsewhere the file skips.

let gpu: WebGpuBackend | undefined;
try {
  gpu = await WebGpuBackend.create();
} catch (e) {
  if (process.env.REQUIRE_WEBGPU === '1') throw e;
  console.warn(`WebGPU search tests skipped: ${(e as Error).message}`);
}
const dir = mkdtempSync(join(tmpdir(), 'adanns-webgpu-'));
afterAll(async () => {
  await gpu?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!gpu)('searches agree between the reference and WebGPU backends', () => {
  for (const [spec, metric, params] of AGREEMENT_CASES) {
    it(`${spec} (${metric}), then after adds and removes`, () => expectBackendsAgree(gpu!, dir, spec, metric, params));
  }

  it('trains on the device (k-means assignment and centroid sums) an index that finds the exact neighbours when every list is probed', async () => {
    const data = randomMatrix(600, 16, 91);
    const index = await AdannsIndex.build(gpu!, 'ivf8@16,flat@16', data, 600, 16, { metric: 'l2', seed: 2 });
    const sizes = Array.from(index.listSizes());
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(600);
    expect(Math.max(...sizes)).toBeLessThan(600); // the clustering did split the data
    const queries = randomMatrix(5, 16, 92);
    const found = await index.search(queries, 5, 5, { nprobe: 8 });
    const exact = await index.exactSearch(queries, 5, 5);
    expect(Array.from(found.ids)).toEqual(Array.from(exact.ids));
  });
});
