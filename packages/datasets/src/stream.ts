import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFully } from './npy.js';
import type { VectorSet } from './types.js';

/** Rows [from, from + rows) of a source, row-major float32. */
export interface VectorChunk {
  from: number;
  rows: number;
  data: Float32Array;
  /** The rows' class labels, for a source that makes them as it goes (synthetic). */
  labels?: Int32Array;
}

/**
 * A source read in pieces, so that a build or a ground-truth pass over a set
 * larger than memory holds one chunk at a time (files are read with
 * positioned reads; nothing keeps a copy of the whole file).
 */
export interface VectorStream {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  /** One class label per row, when the source has them. */
  readonly labels?: Int32Array;
  /** Rows [from, to) in order, at most `chunkRows` per chunk; each chunk's data is an array of its own. */
  chunks(chunkRows: number, from?: number, to?: number): AsyncGenerator<VectorChunk>;
  /** The rows numbered by `indices` (strictly increasing), row-major. */
  readRows(indices: ArrayLike<number>): Promise<Float32Array>;
  close(): Promise<void>;
}

export function checkRange(stream: { name: string; rows: number }, chunkRows: number, from: number, to: number): void {
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`${stream.name}: chunk rows must be a positive integer, got ${chunkRows}`);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > stream.rows || from > to) {
    throw new Error(`${stream.name}: rows [${from}, ${to}) are not within its ${stream.rows} rows`);
  }
}

export function checkIndices(stream: { name: string; rows: number }, indices: ArrayLike<number>): void {
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (!Number.isInteger(r) || r < 0 || r >= stream.rows || (i > 0 && r <= indices[i - 1])) {
      throw new Error(`${stream.name}: row numbers must be strictly increasing and below ${stream.rows}; got ${r} at position ${i}`);
    }
  }
}

/** Picks rows by one ordered pass over the chunks: for sources without random access. */
export async function readRowsByScan(stream: VectorStream, indices: ArrayLike<number>, chunkRows = 16384): Promise<Float32Array> {
  checkIndices(stream, indices);
  const { dim } = stream;
  const out = new Float32Array(indices.length * dim);
  if (indices.length === 0) return out;
  let next = 0;
  for await (const chunk of stream.chunks(chunkRows, indices[0], indices[indices.length - 1] + 1)) {
    while (next < indices.length && indices[next] < chunk.from + chunk.rows) {
      const r = indices[next] - chunk.from;
      out.set(chunk.data.subarray(r * dim, (r + 1) * dim), next * dim);
      next++;
    }
  }
  return out;
}

/** A set already in memory, served in chunks (views, no copies). */
export function memoryStream(set: VectorSet): VectorStream {
  const stream: VectorStream = {
    name: set.name,
    rows: set.rows,
    dim: set.dim,
    labels: set.labels,
    async *chunks(chunkRows, from = 0, to = set.rows) {
      checkRange(stream, chunkRows, from, to);
      for (let at = from; at < to; at += chunkRows) {
        const rows = Math.min(chunkRows, to - at);
        yield { from: at, rows, data: set.data.subarray(at * set.dim, (at + rows) * set.dim) };
      }
    },
    async readRows(indices) {
      checkIndices(stream, indices);
      const out = new Float32Array(indices.length * set.dim);
      for (let i = 0; i < indices.length; i++) out.set(set.data.subarray(indices[i] * set.dim, (indices[i] + 1) * set.dim), i * set.dim);
      return out;
    },
    close: async () => {},
  };
  return stream;
}

/** Layout of a file of fixed-size rows: .fvecs/.bvecs (a dimension before each row) and .npy (one header). */
export interface FixedRowLayout {
  name: string;
  path: string;
  rows: number;
  dim: number;
  /** Byte offset of row 0. */
  offset: number;
  /** Bytes before each row's values (4 for the TEXMEX formats: the row's dimension). */
  rowPrefix: number;
  /** Bytes per value. */
  width: number;
  /** Decodes `count` values from `bytes` into out[at..]. */
  decode(bytes: Buffer, count: number, out: Float32Array, at: number): void;
  labels?: Int32Array;
}

/** Bytes read per positioned read when streaming chunks. */
const READ_BYTES = 1 << 24;

export function fixedRowStream(layout: FixedRowLayout): VectorStream {
  const { path, dim, rowPrefix, width, offset } = layout;
  const rowBytes = rowPrefix + dim * width;
  let fd: number | undefined = openSync(path, 'r');
  const size = fstatSync(fd).size;
  if (size < offset + layout.rows * rowBytes) {
    closeSync(fd);
    throw new Error(`${path}: truncated (${size} bytes, ${layout.rows} rows of ${rowBytes} bytes need ${offset + layout.rows * rowBytes})`);
  }
  const handle = (): number => {
    if (fd === undefined) throw new Error(`${path}: read after close`);
    return fd;
  };
  // decodes `rows` consecutive rows held in `bytes` (row `first` first) into out[at..]
  const decodeRows = (bytes: Buffer, rows: number, first: number, out: Float32Array, at: number): void => {
    if (rowPrefix === 0) {
      layout.decode(bytes, rows * dim, out, at);
      return;
    }
    for (let r = 0; r < rows; r++) {
      const o = r * rowBytes;
      const d = bytes.readInt32LE(o);
      if (d !== dim) throw new Error(`${path}: row ${first + r} declares dimension ${d}, the first row ${dim}`);
      layout.decode(bytes.subarray(o + rowPrefix, o + rowBytes), dim, out, at + r * dim);
    }
  };
  const stream: VectorStream = {
    name: layout.name,
    rows: layout.rows,
    dim,
    labels: layout.labels,
    async *chunks(chunkRows, from = 0, to = layout.rows) {
      checkRange(stream, chunkRows, from, to);
      const perRead = Math.max(1, Math.min(chunkRows, Math.floor(READ_BYTES / rowBytes)));
      const buf = Buffer.alloc(perRead * rowBytes);
      for (let at = from; at < to; at += chunkRows) {
        const rows = Math.min(chunkRows, to - at);
        const data = new Float32Array(rows * dim);
        for (let r = 0; r < rows; r += perRead) {
          const n = Math.min(perRead, rows - r);
          readFully(handle(), buf, n * rowBytes, offset + (at + r) * rowBytes, path);
          decodeRows(buf, n, at + r, data, r * dim);
        }
        yield { from: at, rows, data };
      }
    },
    async readRows(indices) {
      checkIndices(stream, indices);
      const out = new Float32Array(indices.length * dim);
      const buf = Buffer.alloc(rowBytes);
      for (let i = 0; i < indices.length; i++) {
        readFully(handle(), buf, rowBytes, offset + indices[i] * rowBytes, path);
        decodeRows(buf, 1, indices[i], out, i * dim);
      }
      return out;
    },
    async close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
  return stream;
}

/** The first `rows` rows of a stream (the whole stream when it has no more). */
export function limitStream(stream: VectorStream, rows: number | undefined): VectorStream {
  if (rows !== undefined && (!Number.isInteger(rows) || rows < 1)) throw new Error(`limit must be a positive integer, got ${rows}`);
  if (rows === undefined || rows >= stream.rows) return stream;
  const limited: VectorStream = {
    name: stream.name,
    rows,
    dim: stream.dim,
    labels: stream.labels?.subarray(0, rows),
    chunks(chunkRows, from = 0, to = rows) {
      checkRange(limited, chunkRows, from, to);
      return stream.chunks(chunkRows, from, to);
    },
    readRows(indices) {
      checkIndices(limited, indices);
      return stream.readRows(indices);
    },
    close: () => stream.close(),
  };
  return limited;
}

/** Reads every row of a stream (or the first `limit`) into one array. */
export async function readAll(stream: VectorStream, limit = stream.rows): Promise<VectorSet> {
  const rows = Math.min(limit, stream.rows);
  const data = new Float32Array(rows * stream.dim);
  let labels = stream.labels?.slice(0, rows);
  for await (const chunk of stream.chunks(65536, 0, rows)) {
    data.set(chunk.data, chunk.from * stream.dim);
    if (chunk.labels) (labels ??= new Int32Array(rows)).set(chunk.labels, chunk.from);
  }
  return { name: stream.name, data, rows, dim: stream.dim, labels };
}
