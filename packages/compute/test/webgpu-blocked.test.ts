import { afterAll, describe, it } from 'vitest';
import { heapArena, METRICS, ReferenceBackend, rowBlock, TopK, WebGpuBackend, type BlockLayout } from '../src/index.js';
import { makeLists, makeProbes, stride } from './blocked-lists.js';
import { expectSameTopK } from './compare.js';
import { randomMatrix } from './naive.js';

// The WebGPU list scan (list-scan.wgsl) reads prefix-blocked lists in place:
// against the reference composition over the same blocked lists, every
// encoding and metric, prefixes on and off group boundaries, in one pass and
// (small bindings) in blocks of queries and per list. Runs on llvmpipe
// without a GPU; REQUIRE_WEBGPU=1 fails without an adapter.

const reference = new ReferenceBackend();
let gpu: WebGpuBackend | undefined;
let small: WebGpuBackend | undefined;
try {
  gpu = await WebGpuBackend.create();
  // 8 KiB bindings: queries run in blocks, and those probing the largest lists per list (lists.ts)
  small = await WebGpuBackend.create({ maxBindingBytes: 8 * 1024 });
} catch (e) {
  if (process.env.REQUIRE_WEBGPU === '1') throw e;
  console.warn(`WebGPU blocked-list tests skipped: ${(e as Error).message}`);
}
afterAll(async () => {
  await gpu?.dispose();
  await small?.dispose();
});

const layout: BlockLayout = { blockRows: 32, groupWidth: 16 };

describe.skipIf(!gpu)('WebGPU scans of blocked lists', () => {
  for (const encoding of ['f32', 'f16', 'sq8'] as const) {
    it(`${encoding}: every metric and prefix, resident and plain lists, in one pass and split`, async () => {
      for (const backend of [gpu!, small!]) {
        for (const arena of [backend.arena, heapArena]) {
          const { blocked } = makeLists(arena, encoding, layout, 13);
          for (const metric of METRICS) {
            const queries = rowBlock(randomMatrix(7, stride, 5), 7, stride);
            const probes = makeProbes(7, 4, 3);
            for (const d of [3, 16, 17, 33, 40]) {
              const want = new TopK(7, 10);
              const got = new TopK(7, 10);
              await reference.scanListsTopK(queries, blocked, probes, 4, d, metric, want);
              await backend.scanListsTopK(queries, blocked, probes, 4, d, metric, got);
              expectSameTopK(got, want, 1e-4);
            }
          }
        }
      }
    });
  }
});
