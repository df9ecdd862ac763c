import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { WebGpuBackend } from '@adanns/compute';
import { AGREEMENT_CASES, expectBackendsAgree } from './same-results.js';

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
});
