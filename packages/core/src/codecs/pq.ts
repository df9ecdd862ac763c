import type { Backend, Metric, RowBlock } from '@adanns/compute';
import { join } from 'node:path';
import { readArrayFile, writeArrayFile } from '../persist/binary-file.js';
import { rotateRows, trainOpq } from '../quant/opq.js';
import { PQ_CENTROIDS, ProductQuantizer } from '../quant/product-quantizer.js';
import type { ScanSpec } from '../spec.js';
import { holdScanArrays, pqQuantizerFlops, releaseScanArrays, scanArraysHeld, scanPqLists, scanVectorsOf } from '../stages/scan-pq.js';
import type { CodecContext, CodecDefinition, HeldArray, ListCodec, ScanRequest, ScanResult, TrainOptions, TrainSample } from './codec.js';
import { registerCodec } from './registry.js';

/**
 * PQ / OPQ codes (M bytes per vector) of the scan prefix at d_s, normalised
 * for cosine, optionally as residuals against per-list references (IVF-PQ's
 * default) and rotated first (OPQ). Codes are scanned only at d_s.
 */
export class PqCodec implements ListCodec {
  readonly decodes = false;
  readonly flopsPerValue = 1;
  readonly codeBytes: number;

  constructor(
    readonly spec: ScanSpec,
    private readonly metric: Metric,
    readonly pq: ProductQuantizer,
    /** OPQ rotation (d_s x d_s), applied to scan vectors before encoding. */
    readonly rotation?: Float32Array,
    /** Residual references per list (lists x d_s), when codes encode x - ref. */
    readonly refs?: Float32Array,
  ) {
    this.codeBytes = pq.m;
    if (rotation && refs) this.rotatedRefs = rotateRefs(rotation, spec.dim, refs);
  }

  /**
   * The residual references in the OPQ space (l2 lookup tables are built on
   * R q - R ref), rotated once when the codec is made (trained or loaded):
   * rotating them on every search cost lists x d_s^2 per call, and lazily on
   * the first search would charge it to a search the cost model does not.
   */
  readonly rotatedRefs?: Float32Array;

  quantizerFlops(probed: number): number {
    return pqQuantizerFlops(this, this.metric, probed);
  }

  encode(backend: Backend, space: RowBlock, labels: Int32Array | undefined): Promise<Uint8Array> {
    return encodeScanCodes(backend, this, this.metric, space, labels);
  }

  scan(request: ScanRequest): Promise<ScanResult> {
    const { queries, scanDim } = request;
    const vectors = scanVectorsOf(queries.data, queries.rows, queries.stride, queries.offset ?? 0, scanDim, request.metric);
    return scanPqLists(request.backend, vectors, queries.rows, request.probes, request.nprobe, request.lists, this, request.metric, request.shortlist, request.mask, request.into);
  }

  arrays(): HeldArray[] {
    // the scan's copies in the backend's arena (made when the codec is, scan-pq.ts) stand for the
    // parameters they copy, so each is counted once
    const copies = scanArraysHeld(this);
    if (copies.length > 0) return copies;
    return quantizerArrays(this, this.rotatedRefs);
  }

  save(dir: string): void {
    saveScanQuantizer(dir, this);
  }

  manifest(): Record<string, unknown> {
    return { residual: this.refs !== undefined };
  }

  release(): void {
    releaseScanArrays(this);
  }
}

/** rows x dim references rotated by R (out[l] = R ref[l]), as rotateRows computes on a backend, in float64 (once per codec, so not on a search's clock). */
export function rotateRefs(rotation: Float32Array, dim: number, refs: Float32Array): Float32Array {
  const rows = refs.length / dim;
  const out = new Float32Array(refs.length);
  for (let l = 0; l < rows; l++) {
    for (let i = 0; i < dim; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += refs[l * dim + j] * rotation[i * dim + j];
      out[l * dim + i] = s;
    }
  }
  return out;
}

/** A PQ-family codec's trained arrays (heap copies) for sizes(): codebooks, rotation, references, and one derived per-list array if it keeps one. */
export function quantizerArrays({ pq, rotation, refs }: ScanQuantizer, derived?: Float32Array): HeldArray[] {
  const out: HeldArray[] = [{ kind: 'codebooks', array: pq.codebooks, arena: false }];
  if (rotation) out.push({ kind: 'rotation', array: rotation, arena: false });
  if (refs) out.push({ kind: 'codebooks', array: refs, arena: false });
  if (derived) out.push({ kind: 'codebooks', array: derived, arena: false });
  return out;
}

/** The trained parts of a PQ-family codec: codebooks, OPQ rotation, residual references. */
export interface ScanQuantizer {
  readonly pq: ProductQuantizer;
  readonly rotation?: Float32Array;
  readonly refs?: Float32Array;
}

/**
 * PQ codes (one byte per sub-quantiser) of the scan prefixes of `space`
 * (normalised for cosine), as residuals against their lists' references
 * when the quantiser has them, rotated first (OPQ). Shared by the 8-bit and
 * the 4-bit fast-scan codecs.
 */
export async function encodeScanCodes(backend: Backend, quantizer: ScanQuantizer, metric: Metric, space: RowBlock, labels: Int32Array | undefined): Promise<Uint8Array> {
  const { pq, rotation, refs } = quantizer;
  const ds = pq.dim;
  const rows = space.rows;
  let vectors = scanVectorsOf(space.data, rows, space.stride, space.offset ?? 0, ds, metric);
  if (refs) {
    if (!labels) throw new Error('PQ residual codes need each vector\'s list');
    for (let i = 0; i < rows; i++) for (let j = 0; j < ds; j++) vectors[i * ds + j] -= refs[labels[i] * ds + j];
  }
  if (rotation) vectors = await rotateRows(backend, rotation, ds, vectors, rows);
  return pq.encode(backend, vectors, rows);
}

/** Writes a quantiser's parameters into an index directory (read back by loadScanQuantizer). */
export function saveScanQuantizer(dir: string, { pq, rotation, refs }: ScanQuantizer): void {
  const ds = pq.dim;
  writeArrayFile(join(dir, 'pq-codebooks.bin'), pq.codebooks, [pq.centroids, ds]);
  if (rotation) writeArrayFile(join(dir, 'opq-rotation.bin'), rotation, [ds, ds]);
  if (refs) writeArrayFile(join(dir, 'residual-refs.bin'), refs, [refs.length / ds, ds]);
}

export function loadScanQuantizer(opq: boolean, { spec, lists }: CodecContext, dir: string, manifest: Record<string, unknown>, centroids = PQ_CENTROIDS): ScanQuantizer {
  const ds = spec.dim;
  const pq = new ProductQuantizer(ds, spec.bytes!, readArrayFile(join(dir, 'pq-codebooks.bin'), 'f32', [centroids, ds]).array, centroids);
  const rotation = opq ? readArrayFile(join(dir, 'opq-rotation.bin'), 'f32', [ds, ds]).array : undefined;
  const refs = manifest.residual === true ? readArrayFile(join(dir, 'residual-refs.bin'), 'f32', [lists, ds]).array : undefined;
  return { pq, rotation, refs };
}

/** Checks M (spec.bytes: sub-quantisers) and the training set against `centroids` per sub-quantiser; a message or undefined. */
export function checkPqSpec(spec: ScanSpec, count: number, centroids = PQ_CENTROIDS): string | undefined {
  const m = spec.bytes;
  if (m === undefined || !Number.isInteger(m) || m < 1) return `${centroids === PQ_CENTROIDS ? 'byte' : 'sub-quantiser'} count M must be a positive integer, got ${m}`;
  if (m > spec.dim) return `M = ${m} sub-quantisers exceed the scan dim ${spec.dim} (each needs at least one dimension)`;
  if (count < centroids) return `PQ training needs at least ${centroids} vectors for ${centroids} centroids per sub-quantiser, got ${count}`;
  return undefined;
}

/** Mean of the rows of each list (lists x dim; zero for a list with no rows). */
function listMeans(data: Float32Array, rows: number, dim: number, labels: Int32Array, lists: number): Float32Array {
  const sums = new Float64Array(lists * dim);
  const counts = new Float64Array(lists);
  for (let i = 0; i < rows; i++) {
    counts[labels[i]]++;
    for (let j = 0; j < dim; j++) sums[labels[i] * dim + j] += data[i * dim + j];
  }
  const means = new Float32Array(lists * dim);
  for (let l = 0; l < lists; l++) if (counts[l] > 0) for (let j = 0; j < dim; j++) means[l * dim + j] = sums[l * dim + j] / counts[l];
  return means;
}

async function trainPq(opq: boolean, context: CodecContext, sample: TrainSample, options: TrainOptions): Promise<PqCodec> {
  const { pq, rotation, refs } = await trainScanQuantizer(opq, context, sample, options);
  return scanReady(context, new PqCodec(context.spec, context.metric, pq, rotation, refs));
}

/** The codec with its scan's arena copies made now, not on its first search (so sizes() does not change then). */
function scanReady(context: CodecContext, codec: PqCodec): PqCodec {
  holdScanArrays(context.backend, codec);
  return codec;
}

/**
 * Trains a PQ-family quantiser on a codec's sample: residual references
 * (list means) when the sample has lists and options.residual is set, then
 * OPQ (rotation and codebooks) or plain PQ, `centroids` per sub-quantiser.
 */
export async function trainScanQuantizer(opq: boolean, context: CodecContext, sample: TrainSample, options: TrainOptions, centroids = PQ_CENTROIDS): Promise<ScanQuantizer> {
  const { backend, metric, spec } = context;
  const ds = spec.dim;
  const n = sample.rows;
  const train = scanVectorsOf(sample.data, n, sample.stride, 0, ds, metric);
  let refs: Float32Array | undefined;
  if (sample.labels && options.residual) {
    refs = listMeans(train, n, ds, sample.labels, sample.lists);
    for (let i = 0; i < n; i++) for (let j = 0; j < ds; j++) train[i * ds + j] -= refs[sample.labels[i] * ds + j];
  }
  const pqRows = n;
  const progress = options.onProgress ?? (() => {});
  if (opq) {
    const { rotation, pq } = await trainOpq(backend, train, pqRows, ds, spec.bytes!, {
      seed: options.seed,
      iterations: options.opqIterations,
      centroids,
      onProgress: (done, total) => progress('opq', done, total),
    });
    return { pq, rotation, refs };
  }
  progress('pq', 0, 1);
  const pq = await ProductQuantizer.train(backend, train, pqRows, ds, spec.bytes!, { seed: options.seed, centroids });
  progress('pq', 1, 1);
  return { pq, refs };
}

function definition(name: 'pq' | 'opq'): CodecDefinition {
  const head = new RegExp(`^${name}(\\d+)$`);
  return {
    name,
    token: `${name}M@d`,
    parse: (text) => {
      const m = head.exec(text);
      return m ? { bytes: Number(m[1]) } : undefined;
    },
    format: (spec) => `${name}${spec.bytes}@${spec.dim}`,
    exact: false,
    validate: (spec, _fullDim, count) => checkPqSpec(spec, count),
    sampleSize: (options) => options.trainSize,
    train: (context, sample, options) => trainPq(name === 'opq', context, sample, options),
    load: (context, dir, manifest) => {
      const { pq, rotation, refs } = loadScanQuantizer(name === 'opq', context, dir, manifest);
      return scanReady(context, new PqCodec(context.spec, context.metric, pq, rotation, refs));
    },
  };
}

registerCodec(definition('pq'));
registerCodec(definition('opq'));
