import type { SpecParts } from './types.js';

/** One stage of an index spec, in words. */
export interface StageText {
  stage: string;
  what: string;
}

const codecText: Record<string, (dim: number, bytes: number | undefined) => string> = {
  flat: (d) => `exact scan of the probed lists' members at prefix d_s = ${d}, float32 (${4 * d} bytes per vector)`,
  f16: (d) => `scan at prefix d_s = ${d} with float16 lists (${2 * d} bytes per vector), decoded exactly`,
  sq8: (d) => `scan at prefix d_s = ${d} with 8-bit scalar-quantised lists (${d} bytes per vector)`,
  pq: (d, m) => `product quantisation of the d_s = ${d} prefix: ${m} sub-quantisers x 8 bits (${m} bytes per vector), scanned with lookup tables`,
  opq: (d, m) => `the d_s = ${d} prefix rotated by a learned OPQ rotation, then product-quantised: ${m} bytes per vector`,
  pq4: (d, m) => `4-bit fast-scan PQ of the d_s = ${d} prefix: ${m} sub-quantisers x 16 centroids (${Math.ceil((m ?? 0) / 2)} bytes per vector); approximate scores, re-ranked`,
  opq4: (d, m) => `OPQ rotation, then 4-bit fast-scan PQ of the d_s = ${d} prefix (${Math.ceil((m ?? 0) / 2)} bytes per vector); approximate scores, re-ranked`,
};

/** The spec stage by stage (PCA, d_c, d_s and codec, re-rank), as the README's "Index spec" describes them. */
export function explainSpec(parts: SpecParts, dim: number): StageText[] {
  const out: StageText[] = [];
  out.push(
    parts.transform === 'pca'
      ? { stage: 'PCA', what: `learned rotation of the ${dim}-d vectors, components by decreasing variance, so that every prefix keeps the most variance it can` }
      : { stage: 'no transform', what: `the vectors' own prefixes are used (Matryoshka embeddings carry the most in their first dimensions)` },
  );
  if (parts.coarse) {
    out.push({ stage: `IVF, d_c = ${parts.coarse.dim}`, what: `${parts.coarse.lists} k-means lists learned and assigned at prefix d_c = ${parts.coarse.dim}; a query ranks the centroids at that prefix and probes nprobe lists` });
  } else {
    out.push({ stage: 'no IVF', what: 'every vector is scanned (no coarse quantiser)' });
  }
  const codec = codecText[parts.scan.codec];
  out.push({ stage: `scan, d_s = ${parts.scan.dim}`, what: codec ? codec(parts.scan.dim, parts.scan.bytes) : `codec ${parts.scan.codec} at prefix d_s = ${parts.scan.dim}` });
  if (parts.rerank) {
    const where = parts.rerank.storage === 'f32' ? 'float32 vectors in memory' : parts.rerank.storage === 'f16' ? 'float16 vectors in memory' : "the collection's stored float32 vectors";
    out.push({ stage: `re-rank, d_r = ${parts.rerank.dim}`, what: `exact re-rank of the shortlist at prefix d_r = ${parts.rerank.dim} from ${where}` });
  } else {
    out.push({ stage: 'no re-rank', what: 'the scan scores are the final scores' });
  }
  return out;
}
