import { parseMetric, type Metric } from '@adanns/compute';
import { AUTO_SPEC, autoLists, dimsLadder, formatSpec, isAutoSpec, parseSpec, validateSpec } from '@adanns/core';
import { invalid } from './errors.js';

/** What a collection is: fixed at creation. */
export interface CollectionSchema {
  name: string;
  dim: number;
  metric: Metric;
  /** Matryoshka prefix ladder the index may use (default 8, 16, ..., dim). */
  dims: number[];
  /** Index spec string, or `auto`; absent = `auto`: chosen for the data at build time (core planner/auto.ts). */
  index?: string;
  /** The k values budgets are calibrated at; absent = 1, 10, 100 (core DEFAULT_CALIBRATION_KS). */
  calibrationK?: number[];
  createdAt: string;
}

export const MAX_DIM = 65536;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`collection name must be 1-64 letters, digits, "_" or "-" (not starting with "_" or "-"), got ${JSON.stringify(name)}`);
  return name;
}

/** Validates a create request into a schema. */
export function makeSchema(name: string, input: { dim: unknown; metric?: unknown; dims?: unknown; index?: unknown; calibrationK?: unknown }): CollectionSchema {
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
  if (isAutoSpec(input.index)) index = AUTO_SPEC;
  else if (input.index !== undefined && input.index !== null) {
    try {
      const spec = typeof input.index === 'string' ? parseSpec(input.index) : parseSpec(formatSpec(input.index as never));
      validateSpec(spec, dim, Number.MAX_SAFE_INTEGER); // the list count is checked against the points at build time
      index = formatSpec(spec);
    } catch (e) {
      throw invalid(`index: ${(e as Error).message}`);
    }
  }
  let calibrationK: number[] | undefined;
  if (input.calibrationK !== undefined) {
    const given = input.calibrationK as unknown[];
    if (!Array.isArray(given) || given.length === 0 || given.length > 8) throw invalid('calibrationK must be an array of 1 to 8 k values');
    for (const k of given) if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > 10_000) throw invalid(`calibrationK entries must be integers from 1 to 10000, got ${JSON.stringify(k)}`);
    calibrationK = [...new Set(given as number[])].sort((a, b) => a - b);
  }
  return { name, dim, metric, dims, ...(index ? { index } : {}), ...(calibrationK ? { calibrationK } : {}), createdAt: new Date().toISOString() };
}

/**
 * The fixed spec collections got before `auto` (which is now their default):
 * PCA, about 4 sqrt(n) lists clustered at a short prefix, a flat scan at a
 * middle prefix, and an exact re-rank at full dimension, the AdANNS-IVF shape
 * that won on Fashion-MNIST. Kept for comparisons (benchmarks/src/auto-choice.ts).
 */
export function defaultSpec(n: number, dims: readonly number[]): string {
  const dim = dims[dims.length - 1];
  const below = (limit: number) => [...dims].reverse().find((d) => d <= limit) ?? dims[0];
  const lists = autoLists(n);
  const coarse = below(32);
  const scan = below(128);
  return `pca,ivf${lists}@${coarse},flat@${scan}${scan < dim ? `,rerank@${dim}` : ''}`;
}

/** The k collections' indexes are calibrated at (budgets at other k are planned from it and say so). */
export const CALIBRATION_K = 10;

/**
 * Why a collection of `count` points gets no index (its searches stay exact),
 * or undefined when it can have one: the spec must be trainable on that many
 * points, and calibration needs more than CALIBRATION_K points, or more than
 * the smallest of the collection's calibrationK when that is larger (each
 * sampled query is left out of its own neighbours; the sweep leaves out only
 * the ks the index is too small for, failing when none is left).
 */
export function indexProblem(schema: CollectionSchema, count: number): string | undefined {
  const k = Math.max(CALIBRATION_K, ...(schema.calibrationK ? [Math.min(...schema.calibrationK)] : []));
  if (count <= k) return `too few points (${count}) for an index: calibrating one${k > CALIBRATION_K ? ` at k = ${k} (calibrationK)` : ''} needs at least ${k + 1}; searches are exact`;
  const spec = schema.index ?? AUTO_SPEC;
  // auto chooses a spec trainable on `count` points (an exact scan when few)
  if (isAutoSpec(spec)) return undefined;
  try {
    validateSpec(parseSpec(spec, schema.dim), schema.dim, count);
  } catch (e) {
    return `too few points (${count}) for index ${spec}: ${(e as Error).message}; searches are exact`;
  }
  return undefined;
}
