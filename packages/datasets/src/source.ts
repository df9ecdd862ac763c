import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { extname } from 'node:path';
import { readHdf5Dataset } from './hdf5.js';
import { readFashionMnist } from './idx.js';
import { arrowStream } from './arrow.js';
import { decodeNpyValues, readFully, readNpy, readNpyHeader } from './npy.js';
import { checkRange, fixedRowStream, limitStream, memoryStream, readAll, readRowsByScan, type VectorStream } from './stream.js';
import { checkSynthetic, syntheticChunks, syntheticName, type SyntheticOptions } from './synthetic.js';
import type { IdMatrix, VectorSet } from './types.js';
import { readIvecs, vecsShape } from './vecs.js';

/**
 * One string names where vectors come from, so every command takes the same forms:
 *   FILE.fvecs | FILE.bvecs | FILE.npy          a file (bvecs and float16/64 npy become float32)
 *   FILE.arrow[:COLUMN]                         Arrow IPC (stream or file format), a list-of-floats column (default "embedding")
 *   FILE.hdf5:train | FILE.hdf5:test            an ann-benchmarks dataset
 *   fashion-mnist:train | fashion-mnist:test    Debian's dataset-fashion-mnist
 *   synthetic:n=20000,dim=128[,clusters=64,queries=1000,decay=0.5,noise=0.5,seed=42,part=base|queries]
 */
export const SOURCE_FORMS = 'FILE.fvecs, FILE.bvecs, FILE.npy, FILE.arrow[:column], FILE.hdf5:train|test, fashion-mnist:train|test, synthetic:n=N,dim=D[,...,part=base|queries]';

function splitSuffix(source: string): [string, string | undefined] {
  const at = source.lastIndexOf(':');
  return at > 0 ? [source.slice(0, at), source.slice(at + 1)] : [source, undefined];
}

function parseSynthetic(text: string): { options: SyntheticOptions; part: 'base' | 'queries' } {
  const raw: Record<string, string> = {};
  for (const kv of text.split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    if (v === undefined) throw new Error(`synthetic source: "${kv}" is not key=value`);
    raw[k.trim()] = v.trim();
  }
  const num = (key: string): number | undefined => {
    if (raw[key] === undefined) return undefined;
    const v = Number(raw[key]);
    if (!Number.isFinite(v)) throw new Error(`synthetic source: ${key}=${raw[key]} is not a number`);
    return v;
  };
  const known = ['n', 'dim', 'clusters', 'queries', 'decay', 'noise', 'seed', 'part'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) throw new Error(`synthetic source: unknown key "${key}" (expected ${known.join(', ')})`);
  const part = raw.part ?? 'base';
  if (part !== 'base' && part !== 'queries') throw new Error(`synthetic source: part must be base or queries, got "${part}"`);
  if (raw.n === undefined || raw.dim === undefined) throw new Error('synthetic source needs n= and dim=');
  return {
    options: { n: num('n')!, dim: num('dim')!, clusters: num('clusters'), queries: num('queries'), decay: num('decay'), noise: num('noise'), seed: num('seed') },
    part,
  };
}

/** A synthetic part, generated chunk by chunk on every pass (nothing is kept). */
function syntheticStream(options: SyntheticOptions, part: 'base' | 'queries'): VectorStream {
  const full = checkSynthetic(options);
  const stream: VectorStream = {
    name: part === 'base' ? syntheticName(full) : `${syntheticName(full)}-queries`,
    rows: part === 'base' ? full.n : full.queries,
    dim: full.dim,
    async *chunks(chunkRows, from = 0, to = stream.rows) {
      checkRange(stream, chunkRows, from, to);
      // the rows come from one seeded sequence, so every pass regenerates it from the start
      for (const chunk of syntheticChunks(full, chunkRows)) {
        if (chunk.part !== part) continue;
        const a = Math.max(from, chunk.from);
        const b = Math.min(to, chunk.from + chunk.rows);
        if (a < b) {
          const at = a - chunk.from;
          yield { from: a, rows: b - a, data: chunk.data.subarray(at * full.dim, (b - chunk.from) * full.dim), labels: chunk.labels.subarray(at, b - chunk.from) };
        }
        if (chunk.from + chunk.rows >= to) return;
      }
    },
    readRows: (indices) => readRowsByScan(stream, indices),
    close: async () => {},
  };
  return stream;
}

function npyStream(path: string): VectorStream {
  const header = readNpyHeader(path);
  if (header.shape.length !== 2) throw new Error(`${path}: expected a 2-D array of vectors, got shape (${header.shape.join(', ')})`);
  if (!header.descr.startsWith('<f') && header.descr !== '|u1' && header.descr !== '<u1') {
    throw new Error(`${path}: vectors must be float16/32/64 or uint8, got dtype ${header.descr}`);
  }
  const [rows, dim] = header.shape;
  return fixedRowStream({
    name: path,
    path,
    rows,
    dim,
    offset: header.offset,
    rowPrefix: 0,
    width: header.width,
    decode: (bytes, count, out, at) => decodeNpyValues(header.descr, bytes, count, out, at, path),
  });
}

function vecsStream(path: string, kind: 'fvecs' | 'bvecs'): VectorStream {
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  let size: number;
  try {
    size = fstatSync(fd).size;
    if (size >= 4) readFully(fd, head, 4, 0, path);
  } finally {
    closeSync(fd);
  }
  const { rows, dim } = vecsShape(path, kind, size, size >= 4 ? head.readInt32LE(0) : 0);
  return fixedRowStream({
    name: path,
    path,
    rows,
    dim,
    offset: 0,
    rowPrefix: 4,
    width: kind === 'fvecs' ? 4 : 1,
    decode: (bytes, count, out, at) => decodeNpyValues(kind === 'fvecs' ? '<f4' : '|u1', bytes, count, out, at, path),
  });
}

/**
 * Opens any source form for reading in chunks (`limit`: its first rows only): files are read piecewise with
 * positioned reads (a build or ground truth over a set larger than memory
 * holds one chunk at a time); HDF5 and Fashion-MNIST are read whole first.
 */
export async function openVectors(source: string, limit?: number): Promise<VectorStream> {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new Error(`limit must be a positive integer, got ${limit}`);
  const stream = await openSource(source);
  if (stream.rows === 0) {
    await stream.close();
    throw new Error(`${source}: holds no vectors`);
  }
  try {
    return limitStream(stream, limit);
  } catch (e) {
    await stream.close();
    throw e;
  }
}

async function openSource(source: string): Promise<VectorStream> {
  if (source.startsWith('synthetic:')) {
    const { options, part } = parseSynthetic(source.slice('synthetic:'.length));
    return syntheticStream(options, part);
  }
  if (source.startsWith('fashion-mnist:')) {
    const split = source.slice('fashion-mnist:'.length);
    if (split !== 'train' && split !== 'test') throw new Error(`fashion-mnist split must be train or test, got "${split}"`);
    return memoryStream(readFashionMnist(split));
  }
  const [path, suffix] = splitSuffix(source);
  const ext = extname(path);
  const hdf5 = ext === '.hdf5' || ext === '.h5';
  const arrow = ext === '.arrow' || ext === '.feather';
  const file = hdf5 || arrow ? path : source;
  if (!hdf5 && !arrow && !['.fvecs', '.bvecs', '.npy'].includes(extname(source))) {
    throw new Error(`cannot tell the format of "${source}" (expected ${SOURCE_FORMS})`);
  }
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  if (arrow) return arrowStream(path, suffix);
  if (hdf5) {
    if (suffix !== 'train' && suffix !== 'test') throw new Error(`${source}: name the HDF5 dataset as ${path}:train or ${path}:test`);
    const { values, shape } = await readHdf5Dataset(path, suffix);
    return memoryStream({ name: source, data: values instanceof Float32Array ? values : Float32Array.from(values), rows: shape[0], dim: shape[1] });
  }
  switch (extname(source)) {
    case '.fvecs':
      return vecsStream(source, 'fvecs');
    case '.bvecs':
      return vecsStream(source, 'bvecs');
    default:
      return npyStream(source);
  }
}

/** Loads vectors from any source form into memory; `limit` keeps the first rows only. */
export async function loadVectors(source: string, limit?: number): Promise<VectorSet> {
  const stream = await openVectors(source, limit);
  try {
    return await readAll(stream);
  } finally {
    await stream.close();
  }
}

/** Loads neighbour ids (ground truth): FILE.ivecs, FILE.npy (2-D integers) or FILE.hdf5:neighbors. */
export async function loadIds(source: string): Promise<IdMatrix> {
  const [path, dataset] = splitSuffix(source);
  if (extname(path) === '.hdf5' || extname(path) === '.h5') {
    const { values, shape } = await readHdf5Dataset(path, dataset ?? 'neighbors');
    return { ids: values instanceof Int32Array ? values : Int32Array.from(values), rows: shape[0], k: shape[1] };
  }
  if (extname(source) === '.ivecs') return readIvecs(source);
  if (extname(source) === '.npy') {
    const npy = readNpy(source);
    if (npy.shape.length !== 2 || npy.values instanceof Float32Array) throw new Error(`${source}: expected a 2-D integer array of neighbour ids`);
    return { ids: npy.values, rows: npy.shape[0], k: npy.shape[1] };
  }
  throw new Error(`cannot tell the format of ground truth "${source}" (expected FILE.ivecs, FILE.npy or FILE.hdf5:neighbors)`);
}
