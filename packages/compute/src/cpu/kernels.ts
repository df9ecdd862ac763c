import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { KERNELS_DIR } from '../package-files.js';

/**
 * The exports of kernels/cpu/simd.ts. Every address is a byte offset into the
 * shared memory; 0 means "absent" for optional arrays (ids, inverse norms, bias).
 */
export interface SimdKernels {
  chunkRows(dim: number): number;
  scanTopKScratch(dim: number, rows: number, k: number): number;
  invNorms(p: number, rows: number, stride: number, dim: number, out: number): void;
  invNormsExact(p: number, rows: number, stride: number, dim: number, out: number): void;
  score(q: number, qFrom: number, qTo: number, qStride: number, qInv: number, b: number, bRows: number, bStride: number, bInv: number, dim: number, metric: number, out: number): void;
  scanTopK(
    q: number, qFrom: number, qTo: number, qStride: number, qInv: number,
    b: number, bFrom: number, bTo: number, bStride: number, bInv: number, ids: number,
    dim: number, metric: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number,
  ): void;
  rescoreTopK(
    q: number, qRows: number, qStride: number, qInv: number, b: number, bStride: number, bInv: number,
    cand: number, candK: number, candSizes: number, dim: number, metric: number, hIds: number, hScores: number, hSizes: number, k: number,
  ): void;
  codedChunkRows(dim: number): number;
  scanCodedTopK(
    q: number, qFrom: number, qTo: number, qStride: number, qInv: number,
    b: number, bFrom: number, bTo: number, bStride: number, bInv: number, ids: number,
    dim: number, mode: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number, params: number,
  ): void;
  adcScanTopK(
    tables: number, qFrom: number, qTo: number, m: number, codes: number, from: number, to: number, ids: number, bias: number,
    hIds: number, hScores: number, hSizes: number, k: number,
  ): void;
  assign(
    v: number, from: number, to: number, vStride: number, vInv: number, c: number, cRows: number, cStride: number, cInv: number,
    dim: number, metric: number, labels: number, scores: number, scratch: number,
  ): void;
  centroidSums(v: number, n: number, vStride: number, dim: number, labels: number, sums: number, counts: number): void;
  fastScanTopK(
    tables: number, qFrom: number, qTo: number, m: number, codes: number, from: number, to: number, ids: number, scales: number, bias: number,
    hIds: number, hScores: number, hSizes: number, k: number, scratch: number,
  ): void;
  fastScanListsScratch(m: number): number;
  fastScanListsTopK(
    tables: number, terms: number, extra: number, m: number, dir: number, nprobe: number,
    qFrom: number, qTo: number, pFrom: number, pTo: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number, mask: number,
  ): void;
  listGroupRows(dim: number): number;
  listScanScratch(dim: number, coded: number, masked: number): number;
  topKBufferBytes(rows: number, k: number): number;
  scanListsTopK(
    q: number, qStride: number, qInv: number, dir: number, eFrom: number, eTo: number, members: number, qFrom: number, qTo: number,
    bStride: number, dim: number, mode: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number, params: number, mask: number,
  ): void;
  listRescoreScratch(dim: number): number;
  rescoreListsTopK(
    q: number, qRows: number, qStride: number, qInv: number, dir: number, cEntries: number, cPos: number, candK: number, candSizes: number,
    bStride: number, dim: number, mode: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number, params: number,
  ): void;
  pqScanScratch(dim: number, m: number): number;
  pqScanListsTopK(
    x: number, xStride: number, qFrom: number, qTo: number, entries: number, nprobe: number, pFrom: number, pTo: number, dir: number, cfg: number,
    hIds: number, hScores: number, hSizes: number, k: number, scratch: number, mask: number,
  ): void;
  peak(iterations: number, seed: number): number;
  rescoreByRowsScratch(pairs: number): number;
  rescoreByRows(
    q: number, qFrom: number, qTo: number, qStride: number, qInv: number, b: number, bStride: number, bInv: number,
    cand: number, candK: number, candSizes: number, dim: number, metric: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number,
  ): void;
  rescoreGroupedScratch(pairs: number, groups: number, candK: number): number;
  rescoreGrouped(
    q: number, qRows: number, qStride: number, qInv: number, b: number, bStride: number, bInv: number, cand: number, candK: number, candSizes: number,
    groups: number, groupCount: number, gFrom: number, gTo: number, dim: number, metric: number, hIds: number, hScores: number, hSizes: number, k: number, scratch: number,
  ): void;
}

/** Kernels a worker thread can be asked to run, by op code. */
export const POOL_OPS = ['score', 'scanTopK', 'adcScanTopK', 'assign', 'scanCodedTopK', 'fastScanTopK', 'scanListsTopK', 'pqScanListsTopK', 'fastScanListsTopK', 'rescoreByRows', 'rescoreGrouped'] as const;
export type PoolOp = (typeof POOL_OPS)[number];
/** Most arguments any pooled kernel takes. */
export const MAX_ARGS = 21;

/** Compiled from kernels/cpu into the package by `npm run build:kernels` (dist is not committed). */
export const KERNELS_WASM = fileURLToPath(new URL('simd.wasm', KERNELS_DIR));

export async function compileKernels(): Promise<WebAssembly.Module> {
  let bytes: Buffer;
  try {
    bytes = await readFile(KERNELS_WASM);
  } catch {
    throw new Error(`WebAssembly kernels not found at ${KERNELS_WASM}: run "npm run build:kernels" first (it compiles kernels/cpu)`);
  }
  return WebAssembly.compile(bytes);
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): SimdKernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as SimdKernels;
}

/** Calls a pooled kernel with its arguments from `args` (extra arguments are ignored by WebAssembly). */
export function callKernel(kernels: SimdKernels, op: number, a: Int32Array, at: number): void {
  const fn = kernels[POOL_OPS[op]] as unknown as (...x: number[]) => void;
  fn(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5], a[at + 6], a[at + 7], a[at + 8], a[at + 9], a[at + 10], a[at + 11], a[at + 12], a[at + 13], a[at + 14], a[at + 15], a[at + 16], a[at + 17], a[at + 18], a[at + 19], a[at + 20]);
}
