import { readFileSync, writeFileSync } from 'node:fs';
import type { IdMatrix } from './types.js';

/**
 * The TEXMEX formats (.fvecs float32, .ivecs int32, .bvecs uint8): each row is
 * a little-endian int32 dimension followed by that many values.
 */
type Kind = 'fvecs' | 'ivecs' | 'bvecs';
const WIDTH: Record<Kind, number> = { fvecs: 4, ivecs: 4, bvecs: 1 };

/** Rows and dimension of a TEXMEX file of `size` bytes whose first row declares `dim` (its first 4 bytes), or an error saying what is wrong. */
export function vecsShape(path: string, kind: Kind, size: number, dim: number): { rows: number; dim: number; rowBytes: number } {
  if (size < 4) throw new Error(`${path}: empty or truncated ${kind} file`);
  if (dim < 1 || dim > 1 << 20) throw new Error(`${path}: not a ${kind} file (first row declares dimension ${dim})`);
  const rowBytes = 4 + dim * WIDTH[kind];
  if (size % rowBytes !== 0) {
    throw new Error(`${path}: truncated ${kind} file (${size} bytes is not a whole number of ${rowBytes}-byte rows of dimension ${dim})`);
  }
  return { rows: size / rowBytes, dim, rowBytes };
}

function parseVecs(path: string, kind: Kind): { values: Float32Array | Int32Array | Uint8Array; rows: number; dim: number } {
  const buf = readFileSync(path);
  const { rows, dim, rowBytes } = vecsShape(path, kind, buf.length, buf.length >= 4 ? buf.readInt32LE(0) : 0);
  const values = kind === 'fvecs' ? new Float32Array(rows * dim) : kind === 'ivecs' ? new Int32Array(rows * dim) : new Uint8Array(rows * dim);
  const bytes = new Uint8Array(values.buffer);
  const w = WIDTH[kind];
  for (let r = 0; r < rows; r++) {
    const o = r * rowBytes;
    const d = buf.readInt32LE(o);
    if (d !== dim) throw new Error(`${path}: row ${r} declares dimension ${d}, the first row ${dim}`);
    bytes.set(buf.subarray(o + 4, o + rowBytes), r * dim * w);
  }
  return { values, rows, dim };
}

export function readFvecs(path: string): { data: Float32Array; rows: number; dim: number } {
  const { values, rows, dim } = parseVecs(path, 'fvecs');
  return { data: values as Float32Array, rows, dim };
}

/** .bvecs rows as float32 (0..255). */
export function readBvecs(path: string): { data: Float32Array; rows: number; dim: number } {
  const { values, rows, dim } = parseVecs(path, 'bvecs');
  return { data: Float32Array.from(values as Uint8Array), rows, dim };
}

export function readIvecs(path: string): IdMatrix {
  const { values, rows, dim } = parseVecs(path, 'ivecs');
  return { ids: values as Int32Array, rows, k: dim };
}

function writeVecs(path: string, values: Float32Array | Int32Array | Uint8Array, rows: number, dim: number): void {
  if (values.length !== rows * dim) throw new Error(`${path}: ${values.length} values are not ${rows} x ${dim}`);
  const w = values.BYTES_PER_ELEMENT;
  const out = Buffer.alloc(rows * (4 + dim * w));
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  for (let r = 0; r < rows; r++) {
    const o = r * (4 + dim * w);
    out.writeInt32LE(dim, o);
    out.set(bytes.subarray(r * dim * w, (r + 1) * dim * w), o + 4);
  }
  writeFileSync(path, out);
}

export const writeFvecs = (path: string, data: Float32Array, rows: number, dim: number): void => writeVecs(path, data, rows, dim);
export const writeIvecs = (path: string, ids: Int32Array, rows: number, k: number): void => writeVecs(path, ids, rows, k);
export const writeBvecs = (path: string, data: Uint8Array, rows: number, dim: number): void => writeVecs(path, data, rows, dim);
