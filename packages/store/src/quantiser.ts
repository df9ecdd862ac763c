import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatSpec, parseSpec, PcaTransform, type AdannsIndex } from '@adanns/core';
import { invalid } from './errors.js';

/**
 * A coarse quantiser shared by the shards of a cluster collection: the spec
 * it was trained for (resolved: never `auto`), the PCA and the coarse
 * centroids. One replica trains it; every shard's builds then train only
 * their codecs (and calibrate) on it, so all shards cut the space into the
 * same cells. Kept in a collection's artefact directory, it is used by every
 * later build there (docs/ARCHITECTURE.md, "Cluster").
 */
export interface SharedQuantiser {
  spec: string;
  metric: 'cosine' | 'ip' | 'l2';
  dim: number;
  pca?: { components: Float32Array; variances: Float64Array; mean?: Float32Array };
  /** lists x coarse dim, in the index space. */
  centroids?: Float32Array;
}

const FILE = 'quantiser.bin';
type ArrayName = 'components' | 'variances' | 'mean' | 'centroids';

/** The quantiser of a trained index (null when it has neither a PCA nor an IVF stage: nothing to share). */
export function quantiserOf(index: AdannsIndex): SharedQuantiser | null {
  const { spec, metric, dim, pca, coarse } = index.parts();
  if (!pca && !coarse) return null;
  return {
    spec: formatSpec(spec),
    metric,
    dim,
    ...(pca ? { pca: { components: pca.components.slice(), variances: pca.variances.slice(), ...(pca.mean ? { mean: pca.mean.slice() } : {}) } } : {}),
    ...(coarse ? { centroids: coarse.centroids.slice(0, coarse.lists * coarse.dim) } : {}),
  };
}

/** One blob: a JSON header line, then the arrays' bytes in header order (f32, variances f64). */
export function encodeQuantiser(q: SharedQuantiser): Uint8Array {
  const arrays: [ArrayName, Float32Array | Float64Array][] = [];
  if (q.pca) {
    arrays.push(['components', q.pca.components], ['variances', q.pca.variances]);
    if (q.pca.mean) arrays.push(['mean', q.pca.mean]);
  }
  if (q.centroids) arrays.push(['centroids', q.centroids]);
  const header = { spec: q.spec, metric: q.metric, dim: q.dim, arrays: arrays.map(([name, a]) => ({ name, length: a.length })) };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), ...arrays.map(([, a]) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))]);
}

/** Reads a blob encodeQuantiser wrote, checked against the collection it is for (`dim`, `metric`). */
export function decodeQuantiser(blob: Uint8Array, dim: number, metric: string): SharedQuantiser {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const newline = bytes.indexOf(10);
  let header: { spec?: unknown; metric?: unknown; dim?: unknown; arrays?: { name: ArrayName; length: number }[] };
  try {
    header = JSON.parse(bytes.subarray(0, Math.max(0, newline)).toString('utf8')) as typeof header;
  } catch {
    throw invalid('the shared quantiser has no readable header');
  }
  if (header.dim !== dim || header.metric !== metric || typeof header.spec !== 'string' || !Array.isArray(header.arrays)) {
    throw invalid(`the shared quantiser is for ${JSON.stringify(header.dim)}-d ${JSON.stringify(header.metric)} vectors, this collection holds ${dim}-d ${metric}`);
  }
  const spec = parseSpec(header.spec, dim);
  const got = new Map<ArrayName, Float32Array | Float64Array>();
  let at = newline + 1;
  for (const { name, length } of header.arrays) {
    const width = name === 'variances' ? 8 : 4;
    if (!Number.isInteger(length) || length < 0 || at + length * width > bytes.length) throw invalid('the shared quantiser is truncated');
    const copy = Uint8Array.from(bytes.subarray(at, at + length * width)).buffer;
    got.set(name, width === 8 ? new Float64Array(copy) : new Float32Array(copy));
    at += length * width;
  }
  if (at !== bytes.length) throw invalid('the shared quantiser has trailing bytes');
  const components = got.get('components') as Float32Array | undefined;
  const variances = got.get('variances') as Float64Array | undefined;
  const mean = got.get('mean') as Float32Array | undefined;
  const centroids = got.get('centroids') as Float32Array | undefined;
  if ((spec.transform === 'pca') !== (components !== undefined && variances !== undefined)) throw invalid(`the shared quantiser's PCA does not match its spec ${header.spec}`);
  if ((spec.coarse !== undefined) !== (centroids !== undefined) || (spec.coarse && centroids!.length !== spec.coarse.lists * spec.coarse.dim)) throw invalid(`the shared quantiser's centroids do not match its spec ${header.spec}`);
  // the constructor checks the shapes
  if (components && variances) new PcaTransform(dim, components, variances, mean);
  return { spec: header.spec, metric: metric as SharedQuantiser['metric'], dim, ...(components && variances ? { pca: { components, variances, ...(mean ? { mean } : {}) } } : {}), ...(centroids ? { centroids } : {}) };
}

export const quantiserPath = (dir: string): string => join(dir, FILE);

export function readQuantiserFile(dir: string, dim: number, metric: string): SharedQuantiser | undefined {
  const path = quantiserPath(dir);
  return existsSync(path) ? decodeQuantiser(readFileSync(path), dim, metric) : undefined;
}

/** Keeps `blob` as the quantiser of every later build in `dir`; null forgets it (the next build trains its own). */
export function setQuantiserFile(dir: string, blob: Uint8Array | null): void {
  if (blob === null) rmSync(quantiserPath(dir), { force: true });
  else writeFileSync(quantiserPath(dir), blob);
}
