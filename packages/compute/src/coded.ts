import { checkPrefix, rowBlock, type RowBlock } from './rows.js';
import { computeInvNorms } from './reference/kernels.js';

/**
 * Compressed row encodings a backend scans directly (the float16 and 8-bit
 * scalar-quantised list codecs of packages/core):
 *   f16  IEEE binary16, 2 bytes per element (little-endian), decoded exactly
 *   sq8  one byte per element; element j decodes to min[j] + scale[j] * code,
 *        in float32 and in that order (FAISS's QT_8bit), so every backend
 *        decodes bit-identically
 */
export type RowEncoding = 'f16' | 'sq8';

export const ROW_ENCODINGS: readonly RowEncoding[] = ['f16', 'sq8'];

/** Bytes one element takes in an encoding. */
export function encodedBytes(encoding: RowEncoding): number {
  return encoding === 'f16' ? 2 : 1;
}

/**
 * A block of encoded rows: row i starts at element i * stride of `codes`
 * (a byte array, so index arenas hand it out like any other array). Kernels
 * decode the first `dim` elements of a row and score them as float32.
 */
export interface CodedRows {
  readonly encoding: RowEncoding;
  readonly codes: Uint8Array;
  readonly rows: number;
  /** Elements per row (at least the scored prefix). */
  readonly stride: number;
  /** sq8: min of each element then scale of each element (2 x stride floats). */
  readonly params?: Float32Array;
  /** For cosine: 1 / ||decoded row[:dim]|| per row (computed by decoding when absent). */
  readonly invNorms?: Float32Array;
}

export function codedRows(encoding: RowEncoding, codes: Uint8Array, rows: number, stride: number, params?: Float32Array, invNorms?: Float32Array): CodedRows {
  const block: CodedRows = { encoding, codes, rows, stride };
  return { ...block, ...(params ? { params } : {}), ...(invNorms ? { invNorms } : {}) };
}

/** Checks that every row has `dim` decodable elements and that sq8 rows come with their parameters. */
export function checkCoded(block: CodedRows, dim: number, what: string): void {
  if (!(ROW_ENCODINGS as readonly string[]).includes(block.encoding)) throw new Error(`${what}: unknown row encoding "${block.encoding}" (expected ${ROW_ENCODINGS.join(', ')})`);
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${what}: prefix length must be a positive integer, got ${dim}`);
  if (dim > block.stride) throw new Error(`${what}: prefix length ${dim} exceeds row length ${block.stride}`);
  const bytes = encodedBytes(block.encoding);
  if (block.rows > 0 && ((block.rows - 1) * block.stride + dim) * bytes > block.codes.length) {
    throw new Error(`${what}: ${block.rows} rows of prefix ${dim} need ${((block.rows - 1) * block.stride + dim) * bytes} bytes, codes hold ${block.codes.length}`);
  }
  if (block.encoding === 'f16' && block.codes.byteOffset % 2 !== 0) throw new Error(`${what}: float16 codes must start at an even byte offset`);
  if (block.encoding === 'sq8' && (!block.params || block.params.length < 2 * block.stride)) throw new Error(`${what}: sq8 rows need 2 x ${block.stride} parameters (min, scale)`);
  if (block.invNorms && block.invNorms.length < block.rows) throw new Error(`${what}: invNorms has ${block.invNorms.length} entries for ${block.rows} rows`);
}

let halfTable: Float32Array | undefined;

/** float32 value of every binary16 bit pattern (exact: every half is a float32). */
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    const magnitude = exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant ? NaN : Infinity) : (1 + mant / 1024) * 2 ** (exp - 15);
    halfTable[h] = h & 0x8000 ? -magnitude : magnitude;
  }
  return halfTable;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * binary16 bits of a float32, rounded to nearest even; magnitudes past the
 * largest half (65504) saturate to it rather than become infinite, so a
 * decoded vector never holds Infinity.
 */
export function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 : sign | 0x7bff;
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7bff;
  if (e <= 0) {
    if (e < -10) return sign;
    // subnormal half: shift the full significand (implicit 1 included), round to nearest even
    const sig = mant | 0x800000;
    const shift = 14 - e;
    let half = sig >>> shift;
    const rest = sig & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++;
  // a carry into the exponent is the correctly rounded next binade; past 65504 saturate
  return sign | Math.min(half, 0x7bff);
}

/** Writes `count` values of `values` from `from` as float16 bytes (little-endian) into out at byte `at`. */
export function writeHalves(values: Float32Array, from: number, count: number, out: Uint8Array, at: number): void {
  for (let j = 0; j < count; j++) {
    const h = floatToHalf(values[from + j]);
    out[at + 2 * j] = h & 0xff;
    out[at + 2 * j + 1] = h >> 8;
  }
}

/** Reads `count` float16 values (little-endian bytes from byte `at`) into out from `outAt`. */
export function readHalves(bytes: Uint8Array, at: number, count: number, out: Float32Array, outAt: number): void {
  const table = halfToFloatTable();
  for (let j = 0; j < count; j++) out[outAt + j] = table[bytes[at + 2 * j] | (bytes[at + 2 * j + 1] << 8)];
}

/**
 * Decodes rows [from, to) of a block, first `dim` elements each, into out
 * (row-major, stride dim), with the float32 arithmetic every backend uses.
 */
export function decodeRows(block: CodedRows, from: number, to: number, dim: number, out: Float32Array): Float32Array {
  const { codes, stride } = block;
  if (block.encoding === 'f16') {
    const table = halfToFloatTable();
    const halves = new Uint16Array(codes.buffer, codes.byteOffset, codes.length >> 1);
    for (let r = from; r < to; r++) {
      const o = (r - from) * dim;
      const c = r * stride;
      for (let j = 0; j < dim; j++) out[o + j] = table[halves[c + j]];
    }
    return out;
  }
  const params = block.params!;
  for (let r = from; r < to; r++) {
    const o = (r - from) * dim;
    const c = r * stride;
    for (let j = 0; j < dim; j++) out[o + j] = Math.fround(params[j] + Math.fround(params[stride + j] * codes[c + j]));
  }
  return out;
}

/** Cosine inverse norms of the decoded prefixes (what kernels use when a block carries none). */
export function codedInvNorms(block: CodedRows, dim: number): Float32Array {
  const step = 1024;
  const out = new Float32Array(block.rows);
  const decoded = new Float32Array(Math.min(step, block.rows) * dim);
  for (let from = 0; from < block.rows; from += step) {
    const to = Math.min(block.rows, from + step);
    decodeRows(block, from, to, dim, decoded);
    computeInvNorms(rowBlock(decoded, to - from, dim), dim, out.subarray(from, to));
  }
  return out;
}

/** A float32 copy of rows [from, to) at prefix dim, as a row block carrying its inverse norms (if any). */
export function decodedBlock(block: CodedRows, from: number, to: number, dim: number): RowBlock {
  const data = decodeRows(block, from, to, dim, new Float32Array((to - from) * dim));
  const decoded = rowBlock(data, to - from, dim, 0, block.invNorms?.subarray(from, to));
  checkPrefix(decoded, dim, 'decoded rows');
  return decoded;
}
