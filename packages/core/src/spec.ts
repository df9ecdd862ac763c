/**
 * IndexSpec: what is built. The string form follows the FAISS factory idea:
 * comma-separated stages, e.g. `pca,ivf1024@64,flat@128,rerank@768`.
 *   pca            learned rotation so prefixes of rigid embeddings carry most variance
 *   ivf{L}@{d_c}   L k-means lists learned and assigned at prefix d_c
 *   flat@{d_s}     exact scan of list members at prefix d_s (float32 lists)
 *   f16@{d_s}      float16 lists (2 bytes per value), sq8@{d_s} 8-bit scalar-quantised lists
 *   pq{M}@{d_s}, opq{M}@{d_s}   product-quantised scan, M bytes per vector
 *   pq{M}x4@{d_s}, opq{M}x4@{d_s}   4-bit fast-scan PQ (FAISS's PQ{M}x4fs): M sub-quantisers of
 *                  16 centroids, M/2 bytes per vector; needs a re-rank stage
 *   rerank@{d_r}   exact re-rank of the shortlist at prefix d_r from float32 rows on disk;
 *                  rerank@{d_r}:f32 / :f16 keep them in memory
 * A stage without `@d` uses the full dimension. Scan tokens come from the codec
 * registry (codecs/registry.ts), so a new codec adds its own token.
 */
import './codecs/builtin.js';
import { codecDefinition, codecTokens, parseCodecHead } from './codecs/registry.js';

export type Codec = string;

/** The scan stage: a list codec (codecs/registry.ts) at prefix d_s; PQ/OPQ also give M (sub-quantisers: bytes for 8-bit codes). */
export interface ScanSpec {
  codec: Codec;
  dim: number;
  bytes?: number;
}

/** Where re-rank vectors live: float32 rows in a file read by row, or resident float32 / float16. */
export type RerankStorage = 'disk' | 'f32' | 'f16';
export const RERANK_STORAGES: readonly RerankStorage[] = ['disk', 'f32', 'f16'];

export interface IndexSpec {
  transform?: 'none' | 'pca';
  coarse?: { dim: number; lists: number };
  scan: ScanSpec;
  /** Exact re-rank at d_r; storage omitted = disk. */
  rerank?: { dim: number; storage?: RerankStorage };
}

// a head is letters and digits, with an optional x{bits} (pq32x4)
const TOKEN = /^([a-z]+[0-9]*(?:x[0-9]+)?)(?:@(\d+))?(?::([a-z0-9]+))?$/;

/** Parses the string form. `fullDim` resolves stages written without `@d`. */
export function parseSpec(text: string, fullDim?: number): IndexSpec {
  const tokens = text.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (tokens.length === 0) throw new Error('empty index spec');
  let transform: IndexSpec['transform'];
  let coarse: IndexSpec['coarse'];
  let scan: ScanSpec | undefined;
  let rerank: IndexSpec['rerank'];
  let stage = 0; // enforces the order transform < ivf < scan < rerank
  const need = (token: string, at: number, dim: string | undefined): number => {
    if (at < stage) throw new Error(`index spec "${text}": "${token}" is out of order (expected pca, ivf, scan, rerank)`);
    stage = at + 1;
    if (dim !== undefined) return Number(dim);
    if (fullDim === undefined) throw new Error(`index spec "${text}": "${token}" needs an explicit @dim`);
    return fullDim;
  };
  const expected = () => `pca, ivfL@d, ${codecTokens().join(', ')}, rerank@d[:f32|:f16]`;
  for (const token of tokens) {
    const m = TOKEN.exec(token);
    if (!m) throw new Error(`index spec "${text}": unknown token "${token}" (expected ${expected()})`);
    const [, head, dim, variant] = m;
    if (variant !== undefined && head !== 'rerank') throw new Error(`index spec "${text}": "${token}" takes no ":${variant}" (only rerank has a storage variant)`);
    const lists = /^ivf(\d+)$/.exec(head);
    const codec = parseCodecHead(head);
    if (head === 'pca' || head === 'none') {
      if (dim !== undefined) throw new Error(`index spec "${text}": "${token}" takes no @dim`);
      need(token, 0, '0');
      transform = head;
    } else if (lists) {
      coarse = { lists: Number(lists[1]), dim: need(token, 1, dim) };
    } else if (head === 'rerank') {
      if (variant !== undefined && !(RERANK_STORAGES as readonly string[]).includes(variant)) {
        throw new Error(`index spec "${text}": re-rank storage ":${variant}" is unknown (expected rerank@d for float32 on disk, rerank@d:f32 or rerank@d:f16 in memory)`);
      }
      rerank = { dim: need(token, 3, dim) };
      if (variant !== undefined && variant !== 'disk') rerank.storage = variant as RerankStorage;
    } else if (codec) {
      scan = { codec: codec.definition.name, dim: need(token, 2, dim) };
      if (codec.bytes !== undefined) scan.bytes = codec.bytes;
    } else {
      throw new Error(`index spec "${text}": unknown token "${token}" (expected ${expected()})`);
    }
  }
  if (!scan) throw new Error(`index spec "${text}": no scan stage (add one of ${codecTokens().join(', ')})`);
  const spec: IndexSpec = { scan };
  if (transform) spec.transform = transform;
  if (coarse) spec.coarse = coarse;
  if (rerank) spec.rerank = rerank;
  return spec;
}

export function formatSpec(spec: IndexSpec): string {
  const parts: string[] = [];
  if (spec.transform === 'pca') parts.push('pca');
  if (spec.coarse) parts.push(`ivf${spec.coarse.lists}@${spec.coarse.dim}`);
  parts.push(codecDefinition(spec.scan.codec).format(spec.scan));
  if (spec.rerank) parts.push(`rerank@${spec.rerank.dim}${spec.rerank.storage && spec.rerank.storage !== 'disk' ? `:${spec.rerank.storage}` : ''}`);
  return parts.join(',');
}

/** Rejects specs that cannot be built for `count` training vectors of dimension `fullDim`. */
export function validateSpec(spec: IndexSpec, fullDim: number, count: number): void {
  const name = formatSpec(spec);
  const checkDim = (dim: number, what: string): void => {
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`index spec "${name}": ${what} must be a positive integer, got ${dim}`);
    if (dim > fullDim) throw new Error(`index spec "${name}": ${what} ${dim} exceeds the vector dimension ${fullDim}`);
  };
  if (spec.coarse) {
    checkDim(spec.coarse.dim, 'coarse dim d_c');
    const { lists } = spec.coarse;
    if (!Number.isInteger(lists) || lists < 1) throw new Error(`index spec "${name}": list count must be a positive integer, got ${lists}`);
    if (lists > count) throw new Error(`index spec "${name}": ${lists} lists need at least ${lists} training vectors, got ${count}`);
  }
  checkDim(spec.scan.dim, 'scan dim d_s');
  const codec = codecDefinition(spec.scan.codec);
  const problem = codec.validate?.(spec.scan, fullDim, count, spec);
  if (problem) throw new Error(`index spec "${name}": ${problem}`);
  if (spec.rerank) {
    checkDim(spec.rerank.dim, 're-rank dim d_r');
    // an exact re-rank at d_s still refines approximate (quantised) scores; after an exact scan it changes nothing
    if (codec.exact ? spec.rerank.dim <= spec.scan.dim : spec.rerank.dim < spec.scan.dim) {
      throw new Error(`index spec "${name}": re-rank dim ${spec.rerank.dim} must ${codec.exact ? `exceed the ${codec.name} scan dim` : 'be at least the scan dim'} ${spec.scan.dim}`);
    }
  }
  if (count < 1) throw new Error(`index spec "${name}": cannot build from an empty data set`);
}
