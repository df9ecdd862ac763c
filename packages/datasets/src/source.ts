import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { readHdf5Dataset } from './hdf5.js';
import { readFashionMnist } from './idx.js';
import { readNpy } from './npy.js';
import { generateSynthetic, type SyntheticOptions } from './synthetic.js';
import type { IdMatrix, VectorSet } from './types.js';
import { readBvecs, readFvecs, readIvecs } from './vecs.js';

/**
 * One string names where vectors come from, so every command takes the same forms:
 *   FILE.fvecs | FILE.bvecs | FILE.npy          a file (bvecs and float16/64 npy become float32)
 *   FILE.hdf5:train | FILE.hdf5:test            an ann-benchmarks dataset
 *   fashion-mnist:train | fashion-mnist:test    Debian's dataset-fashion-mnist
 *   synthetic:n=20000,dim=128[,clusters=64,queries=1000,decay=0.5,noise=0.5,seed=42,part=base|queries]
 */
export const SOURCE_FORMS = 'FILE.fvecs, FILE.bvecs, FILE.npy, FILE.hdf5:train|test, fashion-mnist:train|test, synthetic:n=N,dim=D[,...,part=base|queries]';

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

function npyVectors(path: string): VectorSet {
  const npy = readNpy(path);
  if (npy.shape.length !== 2) throw new Error(`${path}: expected a 2-D array of vectors, got shape (${npy.shape.join(', ')})`);
  const [rows, dim] = npy.shape;
  const data = npy.values instanceof Float32Array ? npy.values : Float32Array.from(npy.values);
  return { name: path, data, rows, dim };
}

/** Loads vectors from any source form; `limit` keeps the first rows only. */
export async function loadVectors(source: string, limit?: number): Promise<VectorSet> {
  const set = await loadAll(source);
  if (set.rows === 0) throw new Error(`${source}: holds no vectors`);
  if (limit === undefined || limit >= set.rows) return set;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`limit must be a positive integer, got ${limit}`);
  return { ...set, rows: limit, data: set.data.slice(0, limit * set.dim), labels: set.labels?.slice(0, limit) };
}

async function loadAll(source: string): Promise<VectorSet> {
  if (source.startsWith('synthetic:')) {
    const { options, part } = parseSynthetic(source.slice('synthetic:'.length));
    return generateSynthetic(options)[part];
  }
  if (source.startsWith('fashion-mnist:')) {
    const split = source.slice('fashion-mnist:'.length);
    if (split !== 'train' && split !== 'test') throw new Error(`fashion-mnist split must be train or test, got "${split}"`);
    return readFashionMnist(split);
  }
  const [path, dataset] = splitSuffix(source);
  const hdf5 = extname(path) === '.hdf5' || extname(path) === '.h5';
  if (!hdf5 && !['.fvecs', '.bvecs', '.npy'].includes(extname(source))) {
    throw new Error(`cannot tell the format of "${source}" (expected ${SOURCE_FORMS})`);
  }
  const file = hdf5 ? path : source;
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  if (hdf5) {
    if (dataset !== 'train' && dataset !== 'test') throw new Error(`${source}: name the HDF5 dataset as ${path}:train or ${path}:test`);
    const { values, shape } = await readHdf5Dataset(path, dataset);
    return { name: source, data: values instanceof Float32Array ? values : Float32Array.from(values), rows: shape[0], dim: shape[1] };
  }
  switch (extname(source)) {
    case '.fvecs':
      return { name: source, ...readFvecs(source) };
    case '.bvecs':
      return { name: source, ...readBvecs(source) };
    default:
      return npyVectors(source);
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
