import { closeSync, fstatSync, openSync } from 'node:fs';
import { DataType, Message, Precision, RecordBatchReader, Type, type Data, type Schema } from 'apache-arrow';
import { Footer } from 'apache-arrow/ipc/metadata/file';
import { float16ToFloat32, readFully } from './npy.js';
import { checkIndices, checkRange, type VectorStream } from './stream.js';

/**
 * Apache Arrow IPC files (the stream format, as Hugging Face `datasets` writes
 * its `.arrow` cache files, and the file format, "ARROW1"): one column of
 * embeddings, a fixed-size or variable-size list of float16/32/64 per row
 * (e.g. the AdANNS authors' NQ embeddings, columns `id` and `embedding`).
 *
 * Opening reads the footer (file format) or walks the message headers,
 * skipping bodies (stream format), which gives the row count and where each
 * record batch lies; chunks then read one batch at a
 * time with positioned reads, so a file far larger than memory streams.
 * Dictionary-encoded and compressed batches are refused with a message.
 */
export const DEFAULT_ARROW_COLUMN = 'embedding';

const FILE_MAGIC = Buffer.from('ARROW1\0\0', 'latin1');
const END_OF_STREAM = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

interface BatchPlace {
  /** Byte offset and length of the whole message (prefix, metadata, body). */
  at: number;
  bytes: number;
  /** First row and row count. */
  from: number;
  rows: number;
}

interface Layout {
  schemaMessage: Buffer;
  schema: Schema;
  batches: BatchPlace[];
  rows: number;
}

/** Decodes the message whose prefix starts at byte `at`: its framing and header. */
function readMessage(fd: number, path: string, size: number, at: number): { message: Message; bytes: number } | undefined {
  const head = Buffer.alloc(8);
  readFully(fd, head, Math.min(8, size - at), at, path);
  const first = head.readInt32LE(0);
  // since Arrow 0.15 each message starts with 0xFFFFFFFF; older writers put the length first
  const prefix = first === -1 ? 8 : 4;
  const metaBytes = first === -1 ? head.readInt32LE(4) : first;
  if (metaBytes === 0) return undefined; // end of stream
  if (metaBytes < 0 || at + prefix + metaBytes > size) throw new Error(`${path}: not an Arrow IPC file (bad message length ${metaBytes} at byte ${at})`);
  const meta = Buffer.alloc(metaBytes);
  readFully(fd, meta, metaBytes, at + prefix, path);
  let message: Message;
  try {
    message = Message.decode(meta);
  } catch (e) {
    throw new Error(`${path}: not an Arrow IPC file (unreadable message at byte ${at}: ${(e as Error).message})`);
  }
  const bytes = prefix + metaBytes + Number(message.bodyLength);
  if (at + bytes > size) throw new Error(`${path}: truncated Arrow file (a message at byte ${at} needs ${bytes} bytes)`);
  return { message, bytes };
}

/** Adds the record batch at `at` to the layout (refusing what cannot be read). */
function addBatch(layout: Layout, path: string, at: number, message: Message, bytes: number): void {
  if (message.isDictionaryBatch()) throw new Error(`${path}: dictionary-encoded columns are not supported`);
  if (!message.isRecordBatch()) return;
  const header = message.header();
  if (header.compression) throw new Error(`${path}: compressed record batches are not supported (write it uncompressed)`);
  const rows = Number(header.length);
  layout.batches.push({ at, bytes, from: layout.rows, rows });
  layout.rows += rows;
}

/** The stream format: walk the messages, skipping bodies. */
function streamLayout(fd: number, path: string, size: number): Layout {
  // the schema message comes first
  const first = size >= 4 ? readMessage(fd, path, size, 0) : undefined;
  if (!first?.message.isSchema()) throw new Error(`${path}: not an Arrow IPC file (no schema message)`);
  const schemaMessage = Buffer.alloc(first.bytes);
  readFully(fd, schemaMessage, first.bytes, 0, path);
  const layout: Layout = { schemaMessage, schema: first.message.header(), batches: [], rows: 0 };
  for (let at = first.bytes; at + 4 <= size; ) {
    const read = readMessage(fd, path, size, at);
    if (!read) break;
    if (read.message.isSchema()) throw new Error(`${path}: holds two schemas`);
    addBatch(layout, path, at, read.message, read.bytes);
    at += read.bytes;
  }
  return layout;
}

/** The file format: the footer names the schema and where each record batch lies. */
function fileLayout(fd: number, path: string, size: number): Layout {
  const tail = Buffer.alloc(10);
  if (size < 8 + 10) throw new Error(`${path}: truncated Arrow file`);
  readFully(fd, tail, 10, size - 10, path);
  const footerBytes = tail.readInt32LE(0);
  if (!tail.subarray(4).equals(FILE_MAGIC.subarray(0, 6)) || footerBytes <= 0 || footerBytes > size - 18) {
    throw new Error(`${path}: truncated Arrow file (no footer)`);
  }
  const raw = Buffer.alloc(footerBytes);
  readFully(fd, raw, footerBytes, size - 10 - footerBytes, path);
  const footer = Footer.decode(raw);
  // a stream-format schema message, so each batch can be read as a one-batch stream
  const meta = Message.encode(Message.from(footer.schema));
  const padded = Math.ceil(meta.length / 8) * 8;
  const schemaMessage = Buffer.alloc(8 + padded);
  schemaMessage.writeInt32LE(-1, 0);
  schemaMessage.writeInt32LE(padded, 4);
  schemaMessage.set(meta, 8);
  const layout: Layout = { schemaMessage, schema: footer.schema, batches: [], rows: 0 };
  for (const block of footer.recordBatches()) {
    const read = readMessage(fd, path, size, Number(block.offset));
    if (read) addBatch(layout, path, Number(block.offset), read.message, read.bytes);
  }
  return layout;
}

/** The flat float values of one batch's list column, checked to be dim per row and without nulls. */
function listValues(data: Data, dim: number, where: string): { values: ArrayLike<number>; half: boolean; rowStart(r: number): number } {
  if (data.nullCount > 0) throw new Error(`${where}: the column has null rows`);
  const child = data.children[0];
  if (child.nullCount > 0) throw new Error(`${where}: the column has null values`);
  const half = DataType.isFloat(child.type) && child.type.precision === Precision.HALF;
  const values = child.values as ArrayLike<number>;
  if (data.type.typeId === Type.FixedSizeList) return { values, half, rowStart: (r) => child.offset + (data.offset + r) * dim };
  const offsets = data.valueOffsets as ArrayLike<number | bigint>;
  return {
    values,
    half,
    rowStart: (r) => {
      const start = Number(offsets[data.offset + r]);
      const length = Number(offsets[data.offset + r + 1]) - start;
      if (length !== dim) throw new Error(`${where}: row ${r} of a batch has ${length} values, the first row ${dim}`);
      return child.offset + start;
    },
  };
}

/** Opens `path` and streams the list column `column` as float32 rows. */
export function arrowStream(path: string, column = DEFAULT_ARROW_COLUMN): VectorStream {
  let fd: number | undefined = openSync(path, 'r');
  let layout: Layout;
  try {
    const size = fstatSync(fd).size;
    const magic = Buffer.alloc(8);
    if (size >= 8) readFully(fd, magic, 8, 0, path);
    layout = magic.equals(FILE_MAGIC) ? fileLayout(fd, path, size) : streamLayout(fd, path, size);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const field = layout.schema.fields.find((f) => f.name === column);
  const fields = layout.schema.fields.map((f) => `${f.name}: ${f.type}`).join(', ');
  const fail = (why: string): never => {
    closeSync(fd!);
    throw new Error(`${path}: ${why} (columns: ${fields})`);
  };
  if (!field) fail(`no column "${column}"; name one as ${path}:COLUMN`);
  const listTypes = [Type.FixedSizeList, Type.List, Type.LargeList];
  const type = field!.type;
  if (!listTypes.includes(type.typeId) || !DataType.isFloat(type.children[0].type)) fail(`column "${column}" is ${type}, not a list of floats`);

  const handle = (): number => {
    if (fd === undefined) throw new Error(`${path}: read after close`);
    return fd;
  };
  const readBatch = (place: BatchPlace): Data => {
    const message = Buffer.alloc(place.bytes);
    readFully(handle(), message, place.bytes, place.at, path);
    const reader = RecordBatchReader.from(Buffer.concat([layout.schemaMessage, message, END_OF_STREAM]));
    for (const batch of reader) {
      const vector = batch.getChild(column);
      if (!vector || vector.data.length !== 1) throw new Error(`${path}: unexpected layout of column "${column}" in the batch at byte ${place.at}`);
      return vector.data[0];
    }
    throw new Error(`${path}: the batch at byte ${place.at} could not be read`);
  };

  let dim = DataType.isFixedSizeList(type) ? type.listSize : 0;
  const first = layout.batches.find((b) => b.rows > 0);
  if (dim === 0 && first) {
    // a variable list's dimension is its first row's length
    let data: Data;
    try {
      data = readBatch(first);
    } catch (e) {
      closeSync(fd!);
      throw e;
    }
    const offsets = data.valueOffsets as ArrayLike<number | bigint>;
    dim = Number(offsets[data.offset + 1]) - Number(offsets[data.offset]);
  }
  if (layout.rows === 0) fail('holds no rows');
  if (dim < 1) fail(`column "${column}" has empty rows`);

  // copies rows [from, to) of a batch (batch-relative) into out[at..]
  const copyRows = (place: BatchPlace, data: Data, from: number, to: number, out: Float32Array, at: number): void => {
    const { values, half, rowStart } = listValues(data, dim, `${path} (rows ${place.from}..${place.from + place.rows})`);
    for (let r = from; r < to; r++) {
      const s = rowStart(r);
      const o = at + (r - from) * dim;
      if (half) for (let j = 0; j < dim; j++) out[o + j] = float16ToFloat32(values[s + j]);
      else if (values instanceof Float32Array) out.set(values.subarray(s, s + dim), o);
      else for (let j = 0; j < dim; j++) out[o + j] = values[s + j];
    }
  };

  const stream: VectorStream = {
    name: `${path}:${column}`,
    rows: layout.rows,
    dim,
    async *chunks(chunkRows, from = 0, to = layout.rows) {
      checkRange(stream, chunkRows, from, to);
      let chunk = new Float32Array(Math.min(chunkRows, to - from) * dim);
      let chunkFrom = from;
      let filled = 0;
      for (const place of layout.batches) {
        if (place.from + place.rows <= from || place.from >= to || place.rows === 0) continue;
        const data = readBatch(place);
        let r = Math.max(from, place.from) - place.from;
        const end = Math.min(to, place.from + place.rows) - place.from;
        while (r < end) {
          const take = Math.min(end - r, chunkRows - filled);
          copyRows(place, data, r, r + take, chunk, filled * dim);
          filled += take;
          r += take;
          if (filled === chunkRows) {
            yield { from: chunkFrom, rows: filled, data: chunk };
            chunkFrom += filled;
            filled = 0;
            chunk = new Float32Array(Math.min(chunkRows, to - chunkFrom) * dim);
          }
        }
      }
      if (filled > 0) yield { from: chunkFrom, rows: filled, data: chunk.subarray(0, filled * dim) };
    },
    async readRows(indices) {
      checkIndices(stream, indices);
      // only the batches that hold a wanted row are read
      const out = new Float32Array(indices.length * dim);
      let next = 0;
      for (const place of layout.batches) {
        if (next === indices.length) break;
        if (indices[next] >= place.from + place.rows) continue;
        const data = readBatch(place);
        for (; next < indices.length && indices[next] < place.from + place.rows; next++) {
          const r = indices[next] - place.from;
          copyRows(place, data, r, r + 1, out, next * dim);
        }
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
