import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codedRows, decodeRows, floatToHalf, halfToFloatTable, ReferenceBackend, rowBlock, TopK, WasmSimdBackend } from '../src/index.js';
import { expectCodedScanAgrees, expectSameTopK, randomCoded } from './compare.js';
import { randomMatrix } from './naive.js';

// Encoded rows (float16, sq8): the conversions, the reference decode, and the
// SIMD kernels (one thread and a pool that splits every call) against the reference.

describe('float16 conversion', () => {
  const table = halfToFloatTable();

  it('decodes every finite half exactly and encodes it back to the same bits', () => {
    for (let h = 0; h < 65536; h++) {
      if (((h >> 10) & 0x1f) === 31) continue; // inf and NaN are never produced by the encoder
      expect(floatToHalf(table[h])).toBe(h);
    }
    expect(table[0x3c00]).toBe(1);
    expect(table[0xc000]).toBe(-2);
    expect(table[0x0001]).toBe(2 ** -24);
    expect(table[0x7bff]).toBe(65504);
  });

  it('rounds to nearest even, saturates past 65504 and flushes below half the smallest subnormal', () => {
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie: to even (down)
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: to even (up)
    expect(floatToHalf(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(floatToHalf(1e6)).toBe(0x7bff);
    expect(floatToHalf(-1e6)).toBe(0xfbff);
    expect(floatToHalf(Infinity)).toBe(0x7bff);
    expect(floatToHalf(2 ** -26)).toBe(0);
    expect(floatToHalf(-(2 ** -24) * 0.75)).toBe(0x8001);
    // the nearest half is never further than half an ulp
    const values = randomMatrix(1, 5000, 3);
    for (const v of values) {
      const x = v * 1000;
      const err = Math.abs(table[floatToHalf(x)] - x);
      expect(err).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 2 ** -25);
    }
  });
});

describe('decodeRows', () => {
  it('sq8 decodes min + scale * code in float32 over a prefix of each row', () => {
    const params = Float32Array.of(-1, 0.5, 2, 0.1, 0.01, 0.2);
    const block = codedRows('sq8', Uint8Array.of(0, 10, 255, 1, 2, 3), 2, 3, params);
    const out = decodeRows(block, 0, 2, 2, new Float32Array(4));
    expect(Array.from(out)).toEqual([-1, Math.fround(0.5 + Math.fround(0.01 * 10)), Math.fround(-1 + Math.fround(0.1 * 1)), Math.fround(0.5 + Math.fround(0.01 * 2))]);
  });

  it('refuses rows that overrun their codes and sq8 rows without parameters', async () => {
    const reference = new ReferenceBackend();
    const q = rowBlock(new Float32Array(4), 1, 4);
    await expect(reference.scanCodedTopK(q, codedRows('f16', new Uint8Array(14), 2, 4), 4, 'ip', new TopK(1, 1))).rejects.toThrow(/need 16 bytes, codes hold 14/);
    await expect(reference.scanCodedTopK(q, codedRows('sq8', new Uint8Array(8), 2, 4), 4, 'ip', new TopK(1, 1))).rejects.toThrow(/sq8 rows need 2 x 4 parameters/);
  });

  it('the reference scan of encoded rows equals its scan of the decoded rows', async () => {
    const reference = new ReferenceBackend();
    for (const encoding of ['f16', 'sq8'] as const) {
      const base = randomCoded(encoding, 50, 9, 4);
      const decoded = decodeRows(base, 0, 50, 9, new Float32Array(50 * 9));
      const q = rowBlock(randomMatrix(3, 9, 5), 3, 9);
      const want = new TopK(3, 7);
      const got = new TopK(3, 7);
      await reference.scanTopK(q, rowBlock(decoded, 50, 9), 9, 'cosine', want);
      await reference.scanCodedTopK(q, base, 9, 'cosine', got);
      expectSameTopK(got, want, 0);
    }
  });
});

describe('WasmSimdBackend scans encoded rows as the reference does', () => {
  let simd: WasmSimdBackend;
  let pooled: WasmSimdBackend;
  beforeAll(async () => {
    simd = await WasmSimdBackend.create({ threads: 1 });
    pooled = await WasmSimdBackend.create({ threads: 2, parallelMinWork: 1 });
  });
  afterAll(async () => {
    await simd.dispose();
    await pooled.dispose();
  });

  it('one thread', async () => {
    await expectCodedScanAgrees(simd);
  });

  it('a pool that splits every call (by rows and by queries)', async () => {
    await expectCodedScanAgrees(pooled);
    await expectCodedScanAgrees(pooled, 1e-5, { queries: 9, rows: 40 });
  });

  it('reads encoded rows in place from its arena', async () => {
    const base = randomCoded('f16', 100, 16, 8, true);
    const codes = simd.arena.uint8(base.codes.length);
    codes.set(base.codes);
    const q = rowBlock(randomMatrix(2, 16, 9), 2, 16);
    const want = new TopK(2, 5);
    const got = new TopK(2, 5);
    await new ReferenceBackend().scanCodedTopK(q, base, 12, 'l2', want);
    await simd.scanCodedTopK(q, { ...base, codes }, 12, 'l2', got);
    expectSameTopK(got, want);
    simd.arena.release(codes);
  });
});
