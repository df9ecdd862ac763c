import { FASTSCAN_CENTROIDS, fastScanBytes, fastScanCodeBytes, moveFastScan, packFastScan, unpackFastScan, type ArrayArena, type Backend, type Metric, type RowBlock } from '@adanns/compute';
import type { CodeLayout } from '../index/inverted-lists.js';
import type { ProductQuantizer } from '../quant/product-quantizer.js';
import type { ScanSpec } from '../spec.js';
import { fastScanQuantizerFlops, scanFastScanLists } from '../stages/scan-fastscan.js';
import { scanVectorsOf } from '../stages/scan-pq.js';
import type { CodecDefinition, HeldArray, ListCodec, ScanRequest, ScanResult } from './codec.js';
import { checkPqSpec, encodeScanCodes, loadScanQuantizer, quantizerArrays, rotateRefs, saveScanQuantizer, trainScanQuantizer } from './pq.js';
import { registerCodec } from './registry.js';

const K = FASTSCAN_CENTROIDS;

/** The lists' block layout of 4-bit codes for M sub-quantisers (packages/compute/src/fastscan.ts). */
function blockLayout(m: number): CodeLayout {
  return {
    bytes: (members) => fastScanBytes(m, members),
    write: (codes, pos, code, offset) => packFastScan(codes, m, pos, code, offset),
    read: (codes, pos, out, offset) => unpackFastScan(codes, m, pos, out, offset),
    move: (codes, from, to) => moveFastScan(codes, m, from, to),
  };
}

/**
 * Per list, sub-quantiser and centroid: 2 <(R ref_l)_s, c> + ||c||^2
 * (scan-fastscan.ts, FastScanQuantizer.listTerms), in the backend's arena so
 * that every search's kernel reads them in place.
 */
function listTermsOf(arena: ArrayArena, pq: ProductQuantizer, refs: Float32Array): Float32Array {
  const { dim, m, bounds, codebooks } = pq;
  const lists = refs.length / dim;
  const out = arena.float32(lists * m * K);
  for (let l = 0; l < lists; l++) {
    for (let s = 0; s < m; s++) {
      for (let c = 0; c < K; c++) {
        let dot = 0, norm = 0;
        for (let j = bounds[s]; j < bounds[s + 1]; j++) {
          const x = codebooks[c * dim + j];
          dot += refs[l * dim + j] * x;
          norm += x * x;
        }
        out[(l * m + s) * K + c] = 2 * dot + norm;
      }
    }
  }
  arena.touched(out);
  return out;
}

/**
 * 4-bit fast-scan PQ / OPQ codes (FAISS's IndexIVFPQFastScan): M
 * sub-quantisers of 16 centroids, trained, rotated (OPQ) and taken as IVF
 * residuals exactly like the 8-bit pq codec (codecs/pq.ts), stored as M/2
 * bytes per member in blocks of 32 members (the lists' block layout), and
 * scanned with byte tables in SIMD registers (Backend.fastScanTopK). The
 * scan's scores are approximate (tables quantised to 8 bits), so the spec
 * must re-rank: validation refuses a fast-scan spec without `rerank@d`.
 */
export class FastScanCodec implements ListCodec {
  readonly decodes = false;
  /**
   * Table lookup-adds per code byte: M / ceil(M / 2), two for even M, so the
   * cost model charges codeBytes x this = M per vector, as for 8-bit PQ
   * (exact in float64 for every M up to 4096).
   */
  readonly flopsPerValue: number;
  readonly codeBytes: number;
  readonly layout: CodeLayout;
  /** l2 with residuals: the lists' table terms (lists x M x 16). */
  readonly listTerms?: Float32Array;

  constructor(
    readonly spec: ScanSpec,
    private readonly metric: Metric,
    private readonly arena: ArrayArena,
    readonly pq: ProductQuantizer,
    readonly rotation?: Float32Array,
    readonly refs?: Float32Array,
  ) {
    if (pq.centroids !== K) throw new Error(`fast-scan codes need ${K} centroids per sub-quantiser, the quantiser has ${pq.centroids}`);
    this.codeBytes = fastScanCodeBytes(pq.m);
    this.flopsPerValue = pq.m / this.codeBytes;
    this.layout = blockLayout(pq.m);
    if (refs && metric === 'l2') this.listTerms = listTermsOf(arena, pq, rotation ? rotateRefs(rotation, spec.dim, refs) : refs);
  }

  quantizerFlops(probed: number): number {
    return fastScanQuantizerFlops(this, this.metric, probed);
  }

  /** Codes two sub-quantisers per byte (sub-quantiser s in byte s >> 1, low nibble when s is even). */
  async encode(backend: Backend, space: RowBlock, labels: Int32Array | undefined): Promise<Uint8Array> {
    const m = this.pq.m;
    const wide = await encodeScanCodes(backend, this, this.metric, space, labels);
    const out = new Uint8Array(space.rows * this.codeBytes);
    for (let r = 0; r < space.rows; r++) {
      for (let s = 0; s < m; s++) out[r * this.codeBytes + (s >> 1)] |= wide[r * m + s] << (s & 1 ? 4 : 0);
    }
    return out;
  }

  scan(request: ScanRequest): Promise<ScanResult> {
    const { queries, scanDim } = request;
    const vectors = scanVectorsOf(queries.data, queries.rows, queries.stride, queries.offset ?? 0, scanDim, request.metric);
    return scanFastScanLists(request.backend, vectors, queries.rows, request.probes, request.nprobe, request.lists, this, request.metric, request.shortlist, request.mask, request.into);
  }

  arrays(): HeldArray[] {
    const held = quantizerArrays(this);
    return this.listTerms ? [...held, { kind: 'codebooks', array: this.listTerms, arena: true }] : held;
  }

  save(dir: string): void {
    saveScanQuantizer(dir, this);
  }

  manifest(): Record<string, unknown> {
    return { residual: this.refs !== undefined };
  }

  release(): void {
    if (this.listTerms) this.arena.release(this.listTerms);
  }
}

function definition(name: 'pq4' | 'opq4'): CodecDefinition {
  const base = name === 'pq4' ? 'pq' : 'opq';
  const head = new RegExp(`^${base}(\\d+)x4$`);
  return {
    name,
    token: `${base}Mx4@d`,
    parse: (text) => {
      const m = head.exec(text);
      return m ? { bytes: Number(m[1]) } : undefined;
    },
    format: (spec) => `${base}${spec.bytes}x4@${spec.dim}`,
    exact: false,
    validate: (spec, _fullDim, count, index) => {
      const problem = checkPqSpec(spec, count, K);
      if (problem) return problem;
      if (!index.rerank) return `${base}${spec.bytes}x4@${spec.dim} scores the shortlist with 8-bit quantised tables (approximate): add an exact re-rank stage, e.g. rerank@${spec.dim}`;
      return undefined;
    },
    sampleSize: (options) => options.trainSize,
    train: async (context, sample, options) => {
      const { pq, rotation, refs } = await trainScanQuantizer(name === 'opq4', context, sample, options, K);
      return new FastScanCodec(context.spec, context.metric, context.backend.arena, pq, rotation, refs);
    },
    load: (context, dir, manifest) => {
      const { pq, rotation, refs } = loadScanQuantizer(name === 'opq4', context, dir, manifest, K);
      return new FastScanCodec(context.spec, context.metric, context.backend.arena, pq, rotation, refs);
    },
  };
}

registerCodec(definition('pq4'));
registerCodec(definition('opq4'));
