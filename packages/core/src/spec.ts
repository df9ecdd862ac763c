/**
 * IndexSpec: what is built. The string form follows the FAISS factory idea:
 * comma-separated stages, e.g. `pca,ivf1024@64,flat@128,rerank@768`.
 *   pca            learned rotation so prefixes of rigid embeddings carry most variance
 *   ivf{L}@{d_c}   L k-means lists learned and assigned at prefix d_c
 *   flat@{d_s}     exact scan of list members at prefix d_s
 *   pq{M}@{d_s}, opq{M}@{d_s}   product-quantised scan, M bytes per vector
 *   rerank@{d_r}   exact re-rank of the shortlist at prefix d_r
 * A stage without `@d` uses the full dimension.
 */
export type Codec = 'flat' | 'pq' | 'opq';

export interface IndexSpec {
  transform?: 'none' | 'pca';
  coarse?: { dim: number; lists: number };
  scan: { dim: number; codec: 'flat' } | { dim: number; codec: 'pq' | 'opq'; bytes: number };
  rerank?: { dim: number };
}

const TOKEN = /^(pca|none|ivf(\d+)|flat|pq(\d+)|opq(\d+)|rerank)(?:@(\d+))?$/;

/** Parses the string form. `fullDim` resolves stages written without `@d`. */
export function parseSpec(text: string, fullDim?: number): IndexSpec {
  const tokens = text.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (tokens.length === 0) throw new Error('empty index spec');
  let transform: IndexSpec['transform'];
  let coarse: IndexSpec['coarse'];
  let scan: IndexSpec['scan'] | undefined;
  let rerank: IndexSpec['rerank'];
  let stage = 0; // enforces the order transform < ivf < scan < rerank
  const need = (token: string, at: number, dim: string | undefined): number => {
    if (at < stage) throw new Error(`index spec "${text}": "${token}" is out of order (expected pca, ivf, scan, rerank)`);
    stage = at + 1;
    if (dim !== undefined) return Number(dim);
    if (fullDim === undefined) throw new Error(`index spec "${text}": "${token}" needs an explicit @dim`);
    return fullDim;
  };
  for (const token of tokens) {
    const m = TOKEN.exec(token);
    if (!m) throw new Error(`index spec "${text}": unknown token "${token}" (expected pca, ivfL@d, flat@d, pqM@d, opqM@d, rerank@d)`);
    const [, head, lists, pqBytes, opqBytes, dim] = m;
    if (head === 'pca' || head === 'none') {
      if (dim !== undefined) throw new Error(`index spec "${text}": "${token}" takes no @dim`);
      need(token, 0, '0');
      transform = head;
    } else if (lists !== undefined) {
      coarse = { lists: Number(lists), dim: need(token, 1, dim) };
    } else if (head === 'flat') {
      scan = { codec: 'flat', dim: need(token, 2, dim) };
    } else if (pqBytes !== undefined || opqBytes !== undefined) {
      scan = { codec: pqBytes !== undefined ? 'pq' : 'opq', bytes: Number(pqBytes ?? opqBytes), dim: need(token, 2, dim) };
    } else {
      rerank = { dim: need(token, 3, dim) };
    }
  }
  if (!scan) throw new Error(`index spec "${text}": no scan stage (add flat@d, pqM@d or opqM@d)`);
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
  const s = spec.scan;
  parts.push(s.codec === 'flat' ? `flat@${s.dim}` : `${s.codec}${s.bytes}@${s.dim}`);
  if (spec.rerank) parts.push(`rerank@${spec.rerank.dim}`);
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
  if (spec.scan.codec !== 'flat') {
    const { bytes } = spec.scan;
    if (!Number.isInteger(bytes) || bytes < 1) throw new Error(`index spec "${name}": byte count M must be a positive integer, got ${bytes}`);
    if (bytes > spec.scan.dim) throw new Error(`index spec "${name}": M = ${bytes} sub-quantisers exceed the scan dim ${spec.scan.dim} (each needs at least one dimension)`);
    if (count < 256) throw new Error(`index spec "${name}": PQ training needs at least 256 vectors for 256 centroids per sub-quantiser, got ${count}`);
  }
  if (spec.rerank) {
    checkDim(spec.rerank.dim, 're-rank dim d_r');
    // an exact re-rank at d_s still refines PQ's approximate scores; after a flat scan it changes nothing
    const flat = spec.scan.codec === 'flat';
    if (flat ? spec.rerank.dim <= spec.scan.dim : spec.rerank.dim < spec.scan.dim) {
      throw new Error(`index spec "${name}": re-rank dim ${spec.rerank.dim} must ${flat ? 'exceed the flat scan dim' : 'be at least the scan dim'} ${spec.scan.dim}`);
    }
  }
  if (count < 1) throw new Error(`index spec "${name}": cannot build from an empty data set`);
}
