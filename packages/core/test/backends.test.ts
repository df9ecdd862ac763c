import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { AGREEMENT_CASES, expectBackendsAgree } from './same-results.js';

let simd: WasmSimdBackend;
const dir = mkdtempSync(join(tmpdir(), 'adanns-backends-'));

beforeAll(async () => {
  // every call split across two threads, however small
  simd = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
});
afterAll(async () => {
  await simd.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('searches agree between the reference and WebAssembly SIMD backends', () => {
  for (const [spec, metric, params] of AGREEMENT_CASES) {
    it(`${spec} (${metric}), then after adds and removes`, () => expectBackendsAgree(simd, dir, spec, metric, params));
  }
});
