import { expect } from 'vitest';
import { blockedBytes, codedInvNorms, codedRows, computeInvNorms, floatToHalf, rowBlock, writeBlockedRow, type ArrayArena, type BlockLayout, type ListSet, type TopK } from '../src/index.js';
import { randomMatrix } from './naive.js';

// Lists for the blocked-layout scan tests (blocked.test.ts, webgpu-blocked.test.ts).

export const stride = 40;
export const sizes = [0, 1, 5, 31, 32, 33, 3, 64, 0, 9, 130, 2, 17, 71];
const count = sizes.length;
export const keptDim = 17;

/** The same random lists twice, one member after another and in `layout`'s blocks; norms kept at keptDim only. */
export function makeLists(arena: ArrayArena, encoding: 'f32' | 'f16' | 'sq8', layout: BlockLayout, seed: number, filler = 0): { rows: ListSet; blocked: ListSet } {
  const bytesPer = encoding === 'f32' ? 4 : encoding === 'f16' ? 2 : 1;
  const params = encoding === 'sq8' ? Float32Array.from({ length: 2 * stride }, (_, j) => (j < stride ? -0.5 - (j % 5) * 0.1 : 1 / 255 + (j % 3) * 0.001)) : undefined;
  const rowCodes: Uint8Array[] = [];
  const blockCodes: Uint8Array[] = [];
  const ids: Int32Array[] = [];
  const norms: Float32Array[] = [];
  sizes.forEach((size, l) => {
    const values = randomMatrix(size, stride, seed + 31 * l);
    const bytes =
      encoding === 'f32' ? new Uint8Array(values.buffer) : encoding === 'f16' ? new Uint8Array(Uint16Array.from(values, (v) => floatToHalf(v * 3)).buffer) : Uint8Array.from(values, (v) => Math.floor((v + 0.5) * 255.99));
    if (filler) arena.uint8(filler);
    const held = arena.uint8(bytes.length);
    held.set(bytes);
    rowCodes.push(held);
    if (filler) arena.uint8(filler);
    const blocks = arena.uint8(blockedBytes(layout, stride, bytesPer, size));
    for (let r = 0; r < size; r++) writeBlockedRow(blocks, layout, stride, bytesPer, r, bytes, r * stride * bytesPer);
    blockCodes.push(blocks);
    const id = arena.int32(size);
    id.set(Int32Array.from({ length: size }, (_, j) => j * count + l));
    ids.push(id);
    const inv = arena.float32(size);
    const block = encoding === 'f32' ? rowBlock(values, size, stride) : undefined;
    inv.set(block ? computeInvNorms(block, keptDim) : codedInvNorms(codedRows(encoding, bytes, size, stride, params), keptDim));
    norms.push(inv);
  });
  const common = { encoding, count, stride, ...(params ? { params } : {}), size: (l: number) => sizes[l], ids: (l: number) => ids[l] };
  const invNorms = (l: number, d: number) => (d === keptDim ? norms[l] : undefined);
  return { rows: { ...common, codes: (l) => rowCodes[l], invNorms }, blocked: { ...common, layout, codes: (l) => blockCodes[l], invNorms } };
}

/** rows x nprobe distinct lists per query, some -1. */
export function makeProbes(rows: number, nprobe: number, seed: number): Int32Array {
  const probes = new Int32Array(rows * nprobe);
  let s = seed;
  for (let q = 0; q < rows; q++) {
    const order = Array.from({ length: count }, (_, i) => i);
    for (let i = count - 1; i > 0; i--) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let p = 0; p < nprobe; p++) probes[q * nprobe + p] = q % 4 === 3 && p === 1 ? -1 : order[p];
  }
  return probes;
}

export function expectIdentical(got: TopK, want: TopK): void {
  got.sort();
  want.sort();
  expect(Array.from(got.sizes)).toEqual(Array.from(want.sizes));
  expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
  expect(Array.from(got.scores)).toEqual(Array.from(want.scores));
}

