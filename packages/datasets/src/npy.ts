import { readFileSync, writeFileSync } from 'node:fs';

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

export function readNpy(path: string): NpyArray {
  const buf = readFileSync(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new Error(`${path}: not a .npy file (bad magic)`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  if (start > buf.length) throw new Error(`${path}: truncated .npy header`);
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${path}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw new Error(`${path}: Fortran-order arrays are not supported (save with np.ascontiguousarray)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const width: Record<string, number> = { '<f4': 4, '<f2': 2, '<f8': 8, '|u1': 1, '<u1': 1, '<u2': 2, '<i4': 4, '<i8': 8 };
  const w = width[descr];
  if (w === undefined) throw new Error(`${path}: dtype ${descr} is not supported (float32/16/64, uint8/16, int32/64 little-endian)`);
  if (buf.length - start !== count * w) {
    throw new Error(`${path}: truncated .npy data (${buf.length - start} bytes for shape (${shape.join(', ')}) of ${descr}, need ${count * w})`);
  }
  const body = buf.subarray(start);
  const floats = descr.startsWith('<f');
  const values = floats ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * w;
    switch (descr) {
      case '<f4': values[i] = body.readFloatLE(o); break;
      case '<f2': values[i] = float16ToFloat32(body.readUInt16LE(o)); break;
      case '<f8': values[i] = body.readDoubleLE(o); break;
      case '|u1': case '<u1': values[i] = body[o]; break;
      case '<u2': values[i] = body.readUInt16LE(o); break;
      case '<i4': values[i] = body.readInt32LE(o); break;
      default: {
        const v = body.readBigInt64LE(o);
        if (v > 0x7fffffffn || v < -0x80000000n) throw new Error(`${path}: int64 value ${v} at index ${i} does not fit int32`);
        values[i] = Number(v);
      }
    }
  }
  return { shape, descr, values };
}

/** Writes a C-order .npy (format 1.0) of float32, float16, uint8, uint16 or int32 values. */
export function writeNpy(path: string, values: ArrayLike<number>, shape: number[], descr: '<f4' | '<f2' | '|u1' | '<u2' | '<i4'): void {
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`${path}: ${values.length} values do not fill shape (${shape.join(', ')})`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const w = { '<f4': 4, '<f2': 2, '|u1': 1, '<u2': 2, '<i4': 4 }[descr];
  const body = Buffer.alloc(count * w);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (descr === '<f4') body.writeFloatLE(v, i * 4);
    else if (descr === '<f2') body.writeUInt16LE(float32ToFloat16(v), i * 2);
    else if (descr === '|u1') body[i] = v;
    else if (descr === '<u2') body.writeUInt16LE(v, i * 2);
    else body.writeInt32LE(v, i * 4);
  }
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}
