import type { Backend, Metric, RowBlock } from '@adanns/compute';
import { join } from 'node:path';
import { readArrayFile, writeArrayFile } from '../persist/binary-file.js';
import { rotateRows, trainOpq } from '../quant/opq.js';
import { PQ_CENTROIDS, ProductQuantizer } from '../quant/product-quantizer.js';
import type { ScanSpec } from '../spec.js';
import { scanPqLists, scanVectorsOf } from '../stages/scan-pq.js';
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
  }

  private rotatedRefsOnce?: Promise<Float32Array>;
  private rotatedRefsHeld?: Float32Array;

  /**
   * The residual references in the OPQ space (l2 lookup tables are built on
   * R q - R ref), rotated on first use and kept: rotating them on every
   * search cost lists x d_s^2 per call.
   */
  rotatedRefs(backend: Backend): Promise<Float32Array> | undefined {
    if (!this.rotation || !this.refs) return undefined;
    this.rotatedRefsOnce ??= rotateRows(backend, this.rotation, this.spec.dim, this.refs, this.refs.length / this.spec.dim).then((rotated) => (this.rotatedRefsHeld = rotated));
    return this.rotatedRefsOnce;
  }

  async encode(backend: Backend, space: RowBlock, labels: Int32Array | undefined): Promise<Uint8Array> {
    const ds = this.spec.dim;
    const rows = space.rows;
    let vectors = scanVectorsOf(space.data, rows, space.stride, space.offset ?? 0, ds, this.metric);
    const refs = this.refs;
    if (refs) {
      if (!labels) throw new Error('PQ residual codes need each vector\'s list');
      for (let i = 0; i < rows; i++) for (let j = 0; j < ds; j++) vectors[i * ds + j] -= refs[labels[i] * ds + j];
    }
    if (this.rotation) vectors = await rotateRows(backend, this.rotation, ds, vectors, rows);
    return this.pq.encode(backend, vectors, rows);
  }

  scan(request: ScanRequest): Promise<ScanResult> {
    const { queries, scanDim } = request;
    const vectors = scanVectorsOf(queries.data, queries.rows, queries.stride, queries.offset ?? 0, scanDim, request.metric);
    return scanPqLists(request.backend, vectors, queries.rows, request.probes, request.nprobe, request.lists, this, request.metric, request.shortlist);
  }

  arrays(): HeldArray[] {
    const out: HeldArray[] = [{ kind: 'codebooks', array: this.pq.codebooks, arena: false }];
    if (this.rotation) out.push({ kind: 'rotation', array: this.rotation, arena: false });
    if (this.refs) out.push({ kind: 'codebooks', array: this.refs, arena: false });
    if (this.rotatedRefsHeld) out.push({ kind: 'codebooks', array: this.rotatedRefsHeld, arena: false });
    return out;
  }

  save(dir: string): void {
    const ds = this.spec.dim;
    writeArrayFile(join(dir, 'pq-codebooks.bin'), this.pq.codebooks, [PQ_CENTROIDS, ds]);
    if (this.rotation) writeArrayFile(join(dir, 'opq-rotation.bin'), this.rotation, [ds, ds]);
    if (this.refs) writeArrayFile(join(dir, 'residual-refs.bin'), this.refs, [this.refs.length / ds, ds]);
  }

  manifest(): Record<string, unknown> {
    return { residual: this.refs !== undefined };
  }

  release(): void {}
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
      onProgress: (done, total) => progress('opq', done, total),
    });
    return new PqCodec(spec, metric, pq, rotation, refs);
  }
  progress('pq', 0, 1);
  const pq = await ProductQuantizer.train(backend, train, pqRows, ds, spec.bytes!, { seed: options.seed });
  progress('pq', 1, 1);
  return new PqCodec(spec, metric, pq, undefined, refs);
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
    validate: (spec, _fullDim, count) => {
      const bytes = spec.bytes;
      if (bytes === undefined || !Number.isInteger(bytes) || bytes < 1) return `byte count M must be a positive integer, got ${bytes}`;
      if (bytes > spec.dim) return `M = ${bytes} sub-quantisers exceed the scan dim ${spec.dim} (each needs at least one dimension)`;
      if (count < PQ_CENTROIDS) return `PQ training needs at least ${PQ_CENTROIDS} vectors for ${PQ_CENTROIDS} centroids per sub-quantiser, got ${count}`;
      return undefined;
    },
    sampleSize: (options) => options.trainSize,
    train: (context, sample, options) => trainPq(name === 'opq', context, sample, options),
    load: ({ spec, metric, lists }, dir, manifest) => {
      const ds = spec.dim;
      const pq = new ProductQuantizer(ds, spec.bytes!, readArrayFile(join(dir, 'pq-codebooks.bin'), 'f32', [PQ_CENTROIDS, ds]).array);
      const rotation = name === 'opq' ? readArrayFile(join(dir, 'opq-rotation.bin'), 'f32', [ds, ds]).array : undefined;
      const refs = manifest.residual === true ? readArrayFile(join(dir, 'residual-refs.bin'), 'f32', [lists, ds]).array : undefined;
      return new PqCodec(spec, metric, pq, rotation, refs);
    },
  };
}

registerCodec(definition('pq'));
registerCodec(definition('opq'));
