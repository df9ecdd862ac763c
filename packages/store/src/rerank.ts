import { ExternalRerankStore, type IndexSpec, type RerankStore } from '@adanns/core';

/**
 * A collection's index re-ranks from vectors the collection already keeps
 * (LMDB, or the build's snapshot of it) instead of holding a copy: any
 * re-rank at the full dimension, or at a prefix when there is no PCA (the
 * stored prefix is then the index's prefix). `read` fills out with the first
 * `dim` values of the vectors of these internal ids. Undefined when the spec
 * needs vectors in a rotated space (pca with a re-rank below D): the index
 * then keeps its own, as its spec says.
 */
export function collectionRerankStore(read: (iids: Float64Array, dim: number, out: Float32Array) => void) {
  return (spec: IndexSpec, dim: number): RerankStore | undefined => {
    const rerank = spec.rerank;
    if (!rerank || (rerank.dim < dim && spec.transform === 'pca')) return undefined;
    return new ExternalRerankStore(rerank.dim, (iids, out) => read(iids, rerank.dim, out));
  };
}
