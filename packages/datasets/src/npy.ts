import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';

/**
 * NumPy .npy (format 1.0-3.0), little-endian, C order. Reads float32, float16
 * and float64 as float32 data, and integer types (uint8, uint16, int32, int64)
 * as int32 (labels, neighbour ids).
 */
export interface NpyArray {
  shape: number[];
  descr: string;
  /** Float types as float32, integer types as int32. */
  values: Float32Array | Int32Array;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function float32ToFloat16(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = (mant | 0x800000) >> (1 - e);
    return sign | ((m + 0x1000) >> 13);
  }
  return (sign | (e << 10) | (mant >> 13)) + ((mant >> 12) & 1);
}

/** Where a .npy file's values start, their dtype and shape. */
export interface NpyHeader {
  shape: number[];
  descr: string;
  /** Bytes per value. */
  width: number;
  /** Byte offset of the first value. */
  offset: number;
}

const WIDTH: Record<string, number> = { '<f4': 4, '<f2': 2, '<f8': 8, '|u1': 1, '<u1': 1, '<u2': 2, '<i4': 4, '<i8': 8 };

/** Reads and checks a .npy header (and that the file holds all the values it declares). */
export function readNpyHeader(path: string): NpyHeader {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const pre = Buffer.alloc(12);
    readSync(fd, pre, 0, 12, 0);
    if (size < 10 || !pre.subarray(0, 6).equals(MAGIC)) throw new Error(`${path}: not a .npy file (bad magic)`);
    const major = pre[6];
    const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    const headerStart = major === 1 ? 10 : 12;
    const offset = headerStart + headerLen;
    if (offset > size || headerLen > 1 << 20) throw new Error(`${path}: truncated .npy header`);
    const headerBytes = Buffer.alloc(headerLen);
    readSync(fd, headerBytes, 0, headerLen, headerStart);
    const header = headerBytes.toString('latin1');
    const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
    const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
    const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
    if (!descr || !fortran || shapeText === undefined) throw new Error(`${path}: unreadable .npy header ${JSON.stringify(header.trim())}`);
    if (fortran === 'True') throw new Error(`${path}: Fortran-order arrays are not supported (save with np.ascontiguousarray)`);
    const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    const width = WIDTH[descr];
    if (width === undefined) throw new Error(`${path}: dtype ${descr} is not supported (float32/16/64, uint8/16, int32/64 little-endian)`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (size - offset !== count * width) {
      throw new Error(`${path}: truncated .npy data (${size - offset} bytes for shape (${shape.join(', ')}) of ${descr}, need ${count * width})`);
    }
    return { shape, descr, width, offset };
  } finally {
    closeSync(fd);
  }
}

/**
 * Decodes `count` little-endian values of dtype `descr` from `bytes` into
 * out[at..]: floats into a Float32Array, integers into an Int32Array (int64
 * values must fit int32; `where` names the file in that error), or either
 * into a Float64Array, exactly (int64 values must be safe integers).
 */
export function decodeNpyValues(descr: string, bytes: Buffer, count: number, out: Float32Array | Int32Array | Float64Array, at: number, where: string): void {
  const exact = out instanceof Float64Array;
  switch (descr) {
    case '<f4':
    case '<i4':
      if (exact) {
        for (let i = 0; i < count; i++) out[at + i] = descr === '<f4' ? bytes.readFloatLE(i * 4) : bytes.readInt32LE(i * 4);
        return;
      }
      // same width and byte order as the output: a plain copy
      new Uint8Array(out.buffer, out.byteOffset + at * 4, count * 4).set(bytes.subarray(0, count * 4));
      return;
    case '<f2':
      for (let i = 0; i < count; i++) out[at + i] = float16ToFloat32(bytes.readUInt16LE(i * 2));
      return;
    case '<f8':
      for (let i = 0; i < count; i++) out[at + i] = bytes.readDoubleLE(i * 8);
      return;
    case '|u1':
    case '<u1':
      for (let i = 0; i < count; i++) out[at + i] = bytes[i];
      return;
    case '<u2':
      for (let i = 0; i < count; i++) out[at + i] = bytes.readUInt16LE(i * 2);
      return;
    default:
      for (let i = 0; i < count; i++) {
        const v = bytes.readBigInt64LE(i * 8);
        if (exact && (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))) throw new Error(`${where}: int64 value ${v} at index ${at + i} is not a safe integer`);
        if (!exact && (v > 0x7fffffffn || v < -0x80000000n)) throw new Error(`${where}: int64 value ${v} at index ${at + i} does not fit int32`);
        out[at + i] = Number(v);
      }
  }
}

/** Values read per positioned read: bounded, so a file of any size is read without a copy of it. */
const READ_VALUES = 1 << 22;

export function readNpy(path: string): NpyArray;
/** With `exact`: every value as the number it is (float64, int64 within the safe integers), e.g. payload columns. */
export function readNpy(path: string, exact: true): { shape: number[]; descr: string; values: Float64Array };
export function readNpy(path: string, exact = false): NpyArray | { shape: number[]; descr: string; values: Float64Array } {
  const { shape, descr, width, offset } = readNpyHeader(path);
  const count = shape.reduce((a, b) => a * b, 1);
  const values = exact ? new Float64Array(count) : descr.startsWith('<f') ? new Float32Array(count) : new Int32Array(count);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(count, READ_VALUES) * width);
    for (let at = 0; at < count; at += READ_VALUES) {
      const n = Math.min(READ_VALUES, count - at);
      readFully(fd, buf, n * width, offset + at * width, path);
      decodeNpyValues(descr, buf, n, values, at, path);
    }
  } finally {
    closeSync(fd);
  }
  return { shape, descr, values } as NpyArray | { shape: number[]; descr: string; values: Float64Array };
}

/** Reads exactly `length` bytes at `position` (positioned reads may return less). */
export function readFully(fd: number, buf: Uint8Array, length: number, position: number, where: string): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error(`${where}: file ended ${length - done} bytes early at byte ${position + done}`);
    done += n;
  }
}

type WritableDescr = '<f4' | '<f2' | '|u1' | '<u2' | '<i4';

function encodeValues(values: ArrayLike<number>, descr: WritableDescr): Buffer {
  const w = WIDTH[descr];
  const body = Buffer.alloc(values.length * w);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (descr === '<f4') body.writeFloatLE(v, i * 4);
    else if (descr === '<f2') body.writeUInt16LE(float32ToFloat16(v), i * 2);
    else if (descr === '|u1') body[i] = v;
    else if (descr === '<u2') body.writeUInt16LE(v, i * 2);
    else body.writeInt32LE(v, i * 4);
  }
  return body;
}

function npyPreamble(shape: number[], descr: WritableDescr): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1')]);
}

/** Writes a C-order .npy (format 1.0) of float32, float16, uint8, uint16 or int32 values. */
export function writeNpy(path: string, values: ArrayLike<number>, shape: number[], descr: WritableDescr): void {
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`${path}: ${values.length} values do not fill shape (${shape.join(', ')})`);
  writeFileSync(path, Buffer.concat([npyPreamble(shape, descr), encodeValues(values, descr)]));
}

/**
 * Writes a .npy of a known shape piece by piece (for arrays larger than
 * memory): append() takes the values in C order, close() checks that they
 * filled the shape. The file is written under a temporary name and renamed
 * on close, so an interrupted write never leaves a plausible file behind.
 */
export function createNpyWriter(path: string, shape: number[], descr: WritableDescr): { append(values: ArrayLike<number>): void; close(): void } {
  const count = shape.reduce((a, b) => a * b, 1);
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w');
  writeFullySync(fd, npyPreamble(shape, descr));
  let written = 0;
  return {
    append(values) {
      if (written + values.length > count) throw new Error(`${path}: ${written + values.length} values overflow shape (${shape.join(', ')})`);
      const body = descr === '<f4' && values instanceof Float32Array ? Buffer.from(values.buffer, values.byteOffset, values.byteLength) : encodeValues(values, descr);
      writeFullySync(fd, body);
      written += values.length;
    },
    close() {
      fsyncSync(fd);
      closeSync(fd);
      if (written !== count) throw new Error(`${path}: ${written} values do not fill shape (${shape.join(', ')})`);
      renameSync(partial, path);
    },
  };
}

function writeFullySync(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
}
