import { parseMetric, type Metric } from '@adanns/compute';
import { dimsLadder, formatSpec, parseSpec, validateSpec } from '@adanns/core';
import { invalid } from './errors.js';

/** What a collection is: fixed at creation. */
export interface CollectionSchema {
  name: string;
  dim: number;
  metric: Metric;
  /** Matryoshka prefix ladder the index may use (default 8, 16, ..., dim). */
  dims: number[];
  /** Index spec string; absent = chosen from the size and dimension at build time. */
  index?: string;
  createdAt: string;
}

export const MAX_DIM = 65536;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`collection name must be 1-64 letters, digits, "_" or "-" (not starting with "_" or "-"), got ${JSON.stringify(name)}`);
  return name;
}

/** Validates a create request into a schema. */
export function makeSchema(name: string, input: { dim: unknown; metric?: unknown; dims?: unknown; index?: unknown }): CollectionSchema {
  checkName(name);
  const dim = input.dim;
  if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1 || dim > MAX_DIM) throw invalid(`dim must be an integer from 1 to ${MAX_DIM}, got ${JSON.stringify(dim)}`);
  let metric: Metric;
  try {
    metric = parseMetric(String(input.metric ?? 'cosine'));
  } catch (e) {
    throw invalid((e as Error).message);
  }
  let dims = dimsLadder(dim);
  if (input.dims !== undefined) {
    if (!Array.isArray(input.dims) || input.dims.length === 0) throw invalid('dims must be a non-empty array of prefix lengths');
    const given = input.dims as unknown[];
    for (const d of given) if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > dim) throw invalid(`dims entries must be integers from 1 to ${dim}, got ${JSON.stringify(d)}`);
    dims = [...new Set(given as number[])].sort((a, b) => a - b);
    if (dims[dims.length - 1] !== dim) dims.push(dim);
  }
  let index: string | undefined;
  if (input.index !== undefined && input.index !== null) {
    try {
      const spec = typeof input.index === 'string' ? parseSpec(input.index) : parseSpec(formatSpec(input.index as never));
      validateSpec(spec, dim, Number.MAX_SAFE_INTEGER); // the list count is checked against the points at build time
      index = formatSpec(spec);
    } catch (e) {
      throw invalid(`index: ${(e as Error).message}`);
    }
  }
  return { name, dim, metric, dims, ...(index ? { index } : {}), createdAt: new Date().toISOString() };
}

/**
 * The spec a collection without one gets at build time: PCA (harmless for
 * Matryoshka embeddings, essential for others), about 4 sqrt(n) lists
 * clustered at a short prefix, a flat scan at a middle prefix, and an exact
 * re-rank at full dimension, the AdANNS-IVF shape that won on Fashion-MNIST.
 */
export function defaultSpec(n: number, dims: readonly number[]): string {
  const dim = dims[dims.length - 1];
  const below = (limit: number) => [...dims].reverse().find((d) => d <= limit) ?? dims[0];
  const lists = Math.max(1, Math.min(65536, Math.round(4 * Math.sqrt(n)), Math.floor(n / 39) || 1));
  const coarse = below(32);
  const scan = below(128);
  return `pca,ivf${lists}@${coarse},flat@${scan}${scan < dim ? `,rerank@${dim}` : ''}`;
}

/** The k collections' indexes are calibrated at (budgets at other k are planned from it and say so). */
export const CALIBRATION_K = 10;

/**
 * Why a collection of `count` points gets no index (its searches stay exact),
 * or undefined when it can have one: the spec must be trainable on that many
 * points, and calibration needs more than CALIBRATION_K (each sampled query
 * is left out of its own neighbours).
 */
export function indexProblem(schema: CollectionSchema, count: number): string | undefined {
  if (count <= CALIBRATION_K) return `too few points (${count}) for an index: calibrating one needs at least ${CALIBRATION_K + 1}; searches are exact`;
  const spec = schema.index ?? defaultSpec(count, schema.dims);
  try {
    validateSpec(parseSpec(spec, schema.dim), schema.dim, count);
  } catch (e) {
    return `too few points (${count}) for index ${spec}: ${(e as Error).message}; searches are exact`;
  }
  return undefined;
}
