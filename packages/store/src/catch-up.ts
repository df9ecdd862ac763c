import type { Metric } from '@adanns/compute';
import type { AdannsIndex } from '@adanns/core';
import type { PointStore } from './points.js';
import { indexRowsInPlace } from './vectors.js';

/**
 * Bringing an index to the stored state: what the server does to a loaded
 * artefact and to a build's result (the changes since its snapshot), and a
 * re-calibration process to its copy of the live index.
 */

/** Puts these vectors into the index under these internal ids, replacing what it held under them. */
export async function replaceVectors(index: AdannsIndex, iids: number[], vectors: Float32Array[], dim: number, metric: Metric): Promise<void> {
  index.remove(iids.filter((iid) => index.has(iid)));
  if (iids.length === 0) return;
  const data = new Float32Array(iids.length * dim);
  vectors.forEach((v, i) => data.set(v, i * dim));
  await index.add(iids, indexRowsInPlace(data, iids.length, dim, metric), iids.length);
}

/** Brings an index to the stored state of the given internal ids (upserted: current vector; deleted: gone). */
export async function applyChanges(index: AdannsIndex, points: PointStore, touched: Iterable<number>, dim: number, metric: Metric): Promise<void> {
  const present: number[] = [];
  const vectors: Float32Array[] = [];
  const deleted: number[] = [];
  for (const iid of touched) {
    const vector = points.vectorOf(iid);
    if (vector) {
      present.push(iid);
      vectors.push(vector);
    } else deleted.push(iid);
  }
  index.remove(deleted);
  await replaceVectors(index, present, vectors, dim, metric);
}
