import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ReferenceBackend, type Metric } from '@adanns/compute';
import { exactNeighbours } from '@adanns/core';
import { loadIds, loadVectors, readHdf5Metric, readIvecs, readNpy, writeIvecs, type IdMatrix, type VectorSet } from '@adanns/datasets';

export interface BenchInputs {
  base?: string;
  queries?: string;
  gt?: string;
  labelsBase?: string;
  labelsQueries?: string;
  hdf5?: string;
  synthetic?: string;
  adannsImagenet?: string;
  dim?: number;
  metric?: Metric;
  k: number;
  limitBase?: number;
  limitQueries?: number;
  out: string;
  /** false: skip the unfiltered ground truth (truth.k 0), for suites that compute their own (filtered). */
  truth?: boolean;
}

export interface BenchData {
  name: string;
  metric: Metric;
  base: VectorSet;
  queries: VectorSet;
  truth: IdMatrix;
  baseLabels?: Int32Array;
  queryLabels?: Int32Array;
}

/** Class labels from a 1-D integer .npy or a one-column .ivecs. */
export function readLabels(path: string): Int32Array {
  if (path.endsWith('.npy')) {
    const npy = readNpy(path);
    if (npy.shape.length !== 1 || npy.values instanceof Float32Array) throw new Error(`${path}: labels must be a 1-D integer array, got ${npy.descr} of shape (${npy.shape.join(', ')})`);
    return npy.values;
  }
  if (path.endsWith('.ivecs')) {
    const m = readIvecs(path);
    if (m.k !== 1) throw new Error(`${path}: labels must have one value per row, got ${m.k}`);
    return m.ids;
  }
  throw new Error(`cannot tell the format of labels "${path}" (expected FILE.npy or FILE.ivecs)`);
}

function limit(set: VectorSet, rows: number | undefined): VectorSet {
  if (rows === undefined || rows >= set.rows) return set;
  return { ...set, rows, data: set.data.slice(0, rows * set.dim), labels: set.labels?.slice(0, rows) };
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * The ground-truth cache key: a hash of the vectors themselves (not the data
 * set's name, which stays the same when its files or --limit change), their
 * shape, the metric and k.
 */
export function groundTruthKey(base: VectorSet, queries: VectorSet, metric: Metric, k: number): string {
  const h = createHash('sha256').update(JSON.stringify([base.rows, queries.rows, base.dim, metric, k]));
  h.update(bytesOf(base.data.subarray(0, base.rows * base.dim)));
  h.update(bytesOf(queries.data.subarray(0, queries.rows * queries.dim)));
  return h.digest('hex').slice(0, 16);
}

/**
 * Exact top-k of the queries in the base, cached in `dir` as gt-<groundTruthKey>.ivecs.
 * Computed by the reference backend (plain TypeScript kernels), so that a bug in a
 * fast backend under test cannot shape the yardstick it is measured against.
 */
export async function cachedGroundTruth(base: VectorSet, queries: VectorSet, metric: Metric, k: number, dir: string, onProgress?: (done: number, total: number) => void): Promise<IdMatrix> {
  mkdirSync(dir, { recursive: true });
  const cache = join(dir, `gt-${groundTruthKey(base, queries, metric, k)}.ivecs`);
  if (existsSync(cache)) return readIvecs(cache);
  const { ids } = await exactNeighbours(new ReferenceBackend(), base.data, base.rows, queries.data, queries.rows, base.dim, metric, k, onProgress);
  writeIvecs(cache, ids, queries.rows, k);
  return { ids, rows: queries.rows, k };
}

/** Resolves the data-set flags to base, queries, labels and exact ground truth (computed and cached in `out` when absent). */
export async function loadBenchData(o: BenchInputs, onProgress?: (done: number, total: number) => void): Promise<BenchData> {
  const sources = [o.synthetic, o.hdf5, o.adannsImagenet, o.base].filter((s) => s !== undefined);
  if (sources.length > 1) throw new Error('give one data set: --synthetic, --hdf5, --adanns-imagenet or --base/--queries');
  let base: VectorSet;
  let queries: VectorSet;
  let gtSource = o.gt;
  let metric = o.metric;
  if (o.synthetic !== undefined) {
    base = await loadVectors(`synthetic:${o.synthetic}`);
    queries = await loadVectors(`synthetic:${o.synthetic},part=queries`);
  } else if (o.hdf5 !== undefined) {
    base = await loadVectors(`${o.hdf5}:train`);
    queries = await loadVectors(`${o.hdf5}:test`);
    gtSource ??= `${o.hdf5}:neighbors`;
    metric ??= (await readHdf5Metric(o.hdf5)) as Metric | undefined;
  } else if (o.adannsImagenet !== undefined) {
    if (o.dim === undefined) throw new Error('--adanns-imagenet needs --dim (e.g. 2048)');
    const file = (split: string, kind: string) => join(o.adannsImagenet!, `1K_${split}_mrl1_e0_ff${o.dim}-${kind}.npy`);
    base = { ...(await loadVectors(file('train', 'X'))), labels: readLabels(file('train', 'y')) };
    queries = { ...(await loadVectors(file('val', 'X'))), labels: readLabels(file('val', 'y')) };
  } else {
    if (o.base === undefined || o.queries === undefined) throw new Error('give a data set: --synthetic n=N,dim=D, --hdf5 FILE, --adanns-imagenet DIR --dim D, or --base SOURCE --queries SOURCE');
    base = await loadVectors(o.base);
    queries = await loadVectors(o.queries);
  }
  if (o.labelsBase) base = { ...base, labels: readLabels(o.labelsBase) };
  if (o.labelsQueries) queries = { ...queries, labels: readLabels(o.labelsQueries) };
  if (base.labels && base.labels.length !== base.rows) throw new Error(`${base.labels.length} base labels for ${base.rows} base vectors`);
  if (queries.labels && queries.labels.length !== queries.rows) throw new Error(`${queries.labels.length} query labels for ${queries.rows} queries`);
  if (queries.dim !== base.dim) throw new Error(`queries have dimension ${queries.dim}, base has ${base.dim}`);
  base = limit(base, o.limitBase);
  queries = limit(queries, o.limitQueries);
  metric ??= 'cosine';

  let truth: IdMatrix;
  if (gtSource !== undefined && o.limitBase === undefined) {
    const gt = await loadIds(gtSource);
    if (gt.k < o.k) throw new Error(`ground truth ${gtSource} has ${gt.k} neighbours per query, fewer than k = ${o.k}`);
    if (gt.rows < queries.rows) throw new Error(`ground truth ${gtSource} has ${gt.rows} rows for ${queries.rows} queries`);
    truth = { ids: gt.ids.slice(0, queries.rows * gt.k), rows: queries.rows, k: gt.k };
  } else if (o.truth === false) {
    truth = { ids: new Int32Array(0), rows: queries.rows, k: 0 };
  } else {
    truth = await cachedGroundTruth(base, queries, metric, o.k, o.out, onProgress);
  }
  const name = o.hdf5 ?? (o.synthetic ? `synthetic:${o.synthetic}` : o.adannsImagenet ? `adanns-imagenet-${o.dim}` : base.name);
  return { name, metric, base, queries, truth, baseLabels: base.labels, queryLabels: queries.labels };
}
