import type { Backend, BlockLayout, ListSet, RowBlock, RowEncoding } from '@adanns/compute';
import { blockedBytes, checkBlockLayout, computeInvNorms, moveBlockedRow, readBlockedRow, rowBlock, writeBlockedRow } from '@adanns/compute';
import type { CodeLayout, InvertedLists } from '../index/inverted-lists.js';
import type { ScanSpec } from '../spec.js';
import { scanFloatLists } from '../stages/scan-flat.js';
import type { HeldArray, ListCodec, ScanRequest, ScanResult } from './codec.js';

/**
 * The float lists' prefix blocks (compute's blocked.ts): 32 members per block
 * and 16 values per dimension group (one 64-byte cache line of float32), so
 * a scan at a prefix reads a contiguous run of ceil(d / 16) groups per block
 * however wide the stored members are.
 */
export const FLOAT_BLOCKS: BlockLayout = { blockRows: 32, groupWidth: 16 };

/** The lists' CodeLayout of float members of `stride` values of `bytesPerValue` bytes in `blocks`. */
export function floatBlockLayout(stride: number, bytesPerValue: number, blocks: BlockLayout = FLOAT_BLOCKS): CodeLayout {
  checkBlockLayout(blocks);
  return {
    blocks,
    bytes: (members) => blockedBytes(blocks, stride, bytesPerValue, members),
    write: (codes, pos, code, offset) => writeBlockedRow(codes, blocks, stride, bytesPerValue, pos, code, offset),
    read: (codes, pos, out, offset) => readBlockedRow(codes, blocks, stride, bytesPerValue, pos, out, offset),
    move: (codes, from, to) => moveBlockedRow(codes, blocks, stride, bytesPerValue, from, to),
  };
}

/**
 * Shared part of the codecs whose members decode to the vector's prefix at
 * d_s (f32, f16, sq8): encoding row by row, list-grouped scans at any prefix
 * up to d_s over the prefix-blocked lists, and inverse norms of the decoded
 * prefixes.
 */
export abstract class FloatCodec implements ListCodec {
  readonly decodes = true;
  abstract readonly flopsPerValue: number;
  readonly codeBytes: number;
  readonly layout: CodeLayout;

  constructor(
    readonly spec: ScanSpec,
    bytesPerValue: number,
  ) {
    this.codeBytes = spec.dim * bytesPerValue;
    this.layout = floatBlockLayout(spec.dim, bytesPerValue);
  }

  /** Encodes spec.dim values of `src` from `from` into `out` at byte `at`. */
  protected abstract encodeRow(src: Float32Array, from: number, out: Uint8Array, at: number): void;

  abstract decode(codes: Uint8Array, rows: number, dim: number, out: Float32Array): void;

  /** How the lists hold members for the backend's scan: float32 values, float16, or sq8 with its min and scale. */
  protected abstract readonly listEncoding: 'f32' | RowEncoding;
  protected get listParams(): Float32Array | undefined {
    return undefined;
  }

  async encode(_backend: Backend, space: RowBlock, _labels: Int32Array | undefined): Promise<Uint8Array> {
    const out = new Uint8Array(space.rows * this.codeBytes);
    for (let r = 0; r < space.rows; r++) this.encodeRow(space.data, (space.offset ?? 0) + r * space.stride, out, r * this.codeBytes);
    return out;
  }

  scan(request: ScanRequest): Promise<ScanResult> {
    return scanFloatLists(request, this.listEncoding, this.spec.dim, this.listParams);
  }

  listSet(lists: InvertedLists): ListSet {
    return lists.scanSet(this.listEncoding, this.spec.dim, this.listParams);
  }

  arrays(): HeldArray[] {
    return [];
  }

  save(_dir: string): void {}

  release(): void {}
}

/** Inverse norms of decoded members at each of `dims`: rows x dims.length, row-major. */
export function decodedInvNorms(codec: ListCodec, codes: Uint8Array, rows: number, dims: readonly number[]): Float32Array {
  const d = codec.spec.dim;
  const decoded = new Float32Array(rows * d);
  codec.decode!(codes, rows, d, decoded);
  const out = new Float32Array(rows * dims.length);
  const one = new Float32Array(rows);
  dims.forEach((dim, n) => {
    computeInvNorms(rowBlock(decoded, rows, d), dim, one);
    for (let r = 0; r < rows; r++) out[r * dims.length + n] = one[r];
  });
  return out;
}

/** A float32 view of bytes that hold float32 values (offset a multiple of 4). */
export function floatView(bytes: Uint8Array, from = 0, length = (bytes.length - from) >> 2): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset + from, length);
}
