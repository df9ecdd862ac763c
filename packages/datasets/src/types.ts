/** A matrix of float32 vectors read from a file or generated: row i is data[i*dim .. (i+1)*dim). */
export interface VectorSet {
  name: string;
  data: Float32Array;
  rows: number;
  dim: number;
  /** One class label per row, when the source has them. */
  labels?: Int32Array;
}

/** Integer rows (ground-truth neighbour ids): row i is ids[i*k .. (i+1)*k). */
export interface IdMatrix {
  ids: Int32Array;
  rows: number;
  k: number;
}
