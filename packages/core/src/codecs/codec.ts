import type { Backend, ListSet, Metric, RowBlock, TopK } from '@adanns/compute';
import type { CodeLayout, InvertedLists } from '../index/inverted-lists.js';
import type { IndexSpec, ScanSpec } from '../spec.js';

/** What an index's arrays are, for its size breakdown (AdannsIndex.sizes()). */
export type ByteKind = 'lists' | 'codes' | 'norms' | 'ids' | 'centroids' | 'rotation' | 'codebooks' | 'rerank';

/** One array an index part holds; `arena` when it was allocated from the backend's arena. */
export interface HeldArray {
  kind: ByteKind;
  array: Float32Array | Float64Array | Int32Array | Uint8Array;
  arena: boolean;
}

export interface TrainOptions {
  seed: number;
  /** Vectors a codec may train on at most (PQ's budget; default 32,768). */
  trainSize: number;
  /** PQ/OPQ with IVF: encode residuals against each list's reference (default true). */
  residual: boolean;
  opqIterations?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** The training sample a codec sees: rows in the index space (prefix >= d_s), their lists when IVF is built. */
export interface TrainSample {
  data: Float32Array;
  rows: number;
  stride: number;
  labels?: Int32Array;
  lists: number;
}

export interface ScanRequest {
  backend: Backend;
  /** Queries in the index space (prefix >= scanDim). */
  queries: RowBlock;
  /** rows x nprobe list numbers, best first (-1 = none); without IVF every query probes list 0. */
  probes: Int32Array;
  nprobe: number;
  lists: InvertedLists;
  scanDim: number;
  metric: Metric;
  shortlist: number;
  /** A filter: bitset over slots; members whose slot is not set are skipped (Backend ops' mask). */
  mask?: Uint32Array;
  /** Merge into these heaps (rows x shortlist, one row per query) instead of fresh ones: a filtered search's further probing rounds. */
  into?: TopK;
}

export interface ScanResult {
  /** Per query, the best `shortlist` slots and their scan scores. */
  best: TopK;
  /** Per query, how many vectors were scored (for the cost model). */
  scanned: Float64Array;
  /** Per query, multiply-adds spent besides the per-vector scan (PQ tables, rotation, residual terms). */
  quantizerFlops?: Float64Array;
}

/**
 * A trained list codec: what the inverted lists store per member and how a
 * scan reads it. Float codecs (f32, f16, sq8) decode to the vector's prefix
 * and can be scanned at any prefix up to d_s; PQ/OPQ codes only at d_s.
 */
export interface ListCodec {
  readonly spec: ScanSpec;
  /** Bytes each list member's code takes. */
  readonly codeBytes: number;
  /** Whether members decode to float prefixes (cosine norms are then kept per prefix, and any prefix up to d_s scans). */
  readonly decodes: boolean;
  /**
   * Multiply-adds per scanned value (cost model): 1 for float32, 2 when each
   * value is decoded first; for codes (PQ), table lookup-adds per code byte
   * (1 for 8-bit PQ, 2 for 4-bit fast-scan codes).
   */
  readonly flopsPerValue: number;
  /**
   * Code scans: multiply-adds of one query besides the per-vector lookups when
   * it probes `probed` non-empty lists (rotation, tables, residual terms;
   * cost.ts), as its scan reports them in ScanResult.quantizerFlops.
   */
  quantizerFlops?(probed: number): number;
  /** How the lists lay out member codes, when not codeBytes per member one after another (fast-scan blocks). */
  readonly layout?: CodeLayout;
  /** Codes of `rows` rows of `space` (index space, prefix >= d_s): rows x codeBytes. labels: list of each row (IVF). */
  encode(backend: Backend, space: RowBlock, labels: Int32Array | undefined): Promise<Uint8Array>;
  /** Float prefix (first `dim` values) of `rows` codes, row-major into out; decoding codecs only. */
  decode?(codes: Uint8Array, rows: number, dim: number, out: Float32Array): void;
  /** The lists as the backend reads members' prefixes in place (list scans, Backend.rescoreListsTopK); decoding codecs only. */
  listSet?(lists: InvertedLists): ListSet;
  scan(request: ScanRequest): Promise<ScanResult>;
  /** Trained parameters, for sizes and saving. */
  arrays(): HeldArray[];
  /** Writes the trained parameters into an index directory (one checksummed file each). */
  save(dir: string): void;
  /** What the index manifest records for load() besides the spec (e.g. PQ's residual flag). */
  manifest?(): Record<string, unknown>;
  release(): void;
}

export interface CodecContext {
  backend: Backend;
  metric: Metric;
  spec: ScanSpec;
  /** IVF lists (1 without IVF). */
  lists: number;
}

/**
 * A codec kind the spec grammar knows: its token, validation, training and
 * loading. Registering one (registry.ts) is all a new codec needs.
 */
export interface CodecDefinition {
  /** Registry name, as in ScanSpec.codec. */
  name: string;
  /** Token form for messages, e.g. `sq8@d` or `pqM@d`. */
  token: string;
  /** Reads a token head (`sq8`, `pq16`); undefined when it is not this codec's. */
  parse(head: string): { bytes?: number } | undefined;
  format(spec: ScanSpec): string;
  /** Whether scan scores are exact (a re-rank must then exceed d_s rather than reach it). */
  exact: boolean;
  /** An error message when the spec cannot be built from `count` vectors of dimension fullDim (`index`: the whole spec, e.g. for a required re-rank). */
  validate?(spec: ScanSpec, fullDim: number, count: number, index: IndexSpec): string | undefined;
  /** Training vectors this codec wants (0 = none; it then trains on nothing). */
  sampleSize(options: TrainOptions): number;
  train(context: CodecContext, sample: TrainSample, options: TrainOptions): Promise<ListCodec>;
  /** Reads the parameters save() wrote; `manifest` holds what the index manifest recorded for the codec. */
  load(context: CodecContext, dir: string, manifest: Record<string, unknown>): ListCodec;
}
