import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

/**
 * One typed array per file, behind a 64-byte header:
 *   0  magic "ADANNS\0\0"     8  format version (u32)   12 dtype code (u32)
 *   16 shape (4 x u32, unused = 1)                     32 payload bytes (u64)
 *   40 CRC-32 of the payload (u32)                     44 reserved
 * A truncated, foreign or corrupted file is refused with a message naming it,
 * so a damaged index never answers queries.
 */
export const FORMAT_VERSION = 1;
const MAGIC = Buffer.from('ADANNS\0\0', 'latin1');
const HEADER = 64;

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;
type DType = 'f32' | 'f64' | 'i32' | 'u8';
const CODES: Record<DType, number> = { f32: 1, f64: 2, i32: 3, u8: 4 };
const CTORS = { f32: Float32Array, f64: Float64Array, i32: Int32Array, u8: Uint8Array } as const;

function dtypeOf(array: TypedArray): DType {
  if (array instanceof Float32Array) return 'f32';
  if (array instanceof Float64Array) return 'f64';
  if (array instanceof Uint8Array) return 'u8';
  return 'i32';
}

/** Writes atomically (temp file, fsync, rename). `shape` must multiply to the array length. */
export function writeArrayFile(path: string, array: TypedArray, shape: number[]): void {
  if (shape.length > 4) throw new Error('at most 4 dimensions');
  if (shape.reduce((a, b) => a * b, 1) !== array.length) throw new Error(`${path}: shape ${shape.join('x')} does not match ${array.length} values`);
  const payload = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeUInt32LE(CODES[dtypeOf(array)], 12);
  for (let i = 0; i < 4; i++) header.writeUInt32LE(shape[i] ?? 1, 16 + 4 * i);
  header.writeBigUInt64LE(BigInt(payload.length), 32);
  header.writeUInt32LE(crc32(payload), 40);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, header);
    writeSync(fd, payload);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Reads and verifies a file written by writeArrayFile; `expectShape` entries of -1 match anything. */
export function readArrayFile<T extends DType>(path: string, dtype: T, expectShape: number[]): { array: InstanceType<(typeof CTORS)[T]>; shape: number[] } {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read index file (${(e as Error).message})`);
  }
  if (file.length < HEADER || !file.subarray(0, 8).equals(MAGIC)) throw new Error(`${path}: not an adanns index file (bad header)`);
  const version = file.readUInt32LE(8);
  if (version !== FORMAT_VERSION) throw new Error(`${path}: format version ${version}, this build reads version ${FORMAT_VERSION}`);
  if (file.readUInt32LE(12) !== CODES[dtype]) throw new Error(`${path}: holds dtype code ${file.readUInt32LE(12)}, expected ${dtype}`);
  const shape = [0, 1, 2, 3].map((i) => file.readUInt32LE(16 + 4 * i));
  const bytes = Number(file.readBigUInt64LE(32));
  const Ctor = CTORS[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes !== count * Ctor.BYTES_PER_ELEMENT) throw new Error(`${path}: header shape ${shape.join('x')} does not match ${bytes} payload bytes`);
  if (file.length !== HEADER + bytes) throw new Error(`${path}: truncated or padded (${file.length - HEADER} payload bytes, header says ${bytes})`);
  const payload = file.subarray(HEADER);
  if (crc32(payload) !== file.readUInt32LE(40)) throw new Error(`${path}: checksum mismatch (file is corrupt)`);
  expectShape.forEach((want, i) => {
    if (want >= 0 && shape[i] !== want) throw new Error(`${path}: shape ${shape.join('x')} where ${expectShape.join('x')} was expected`);
  });
  // copy into a fresh, aligned buffer owned by the array
  const array = new Ctor(count) as InstanceType<(typeof CTORS)[T]>;
  new Uint8Array(array.buffer).set(payload);
  return { array, shape };
}
