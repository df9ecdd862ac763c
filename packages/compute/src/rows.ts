/**
 * A block of row-major float32 vectors inside a larger buffer: row i starts at
 * data[offset + i * stride]. Kernels read only the first `dim` values of a row
 * (the Matryoshka prefix), so one stored matrix serves every prefix length.
 */
export interface RowBlock {
  readonly data: Float32Array;
  readonly rows: number;
  readonly stride: number;
  readonly offset?: number;
  /**
   * For cosine: 1 / ||row[:dim]|| for each row at the dim being scored (0 for a
   * zero prefix). Kernels compute it when absent; stored indexes pass it so a
   * scan does not pay for the norms again.
   */
  readonly invNorms?: Float32Array;
}

export function rowBlock(data: Float32Array, rows: number, stride: number, offset = 0, invNorms?: Float32Array): RowBlock {
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`rows must be a non-negative integer, got ${rows}`);
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`stride must be a positive integer, got ${stride}`);
  if (rows > 0 && offset + (rows - 1) * stride > data.length) {
    throw new Error(`row block of ${rows} rows x stride ${stride} at offset ${offset} exceeds buffer of ${data.length} floats`);
  }
  return invNorms ? { data, rows, stride, offset, invNorms } : { data, rows, stride, offset };
}

/** Checks that every row has at least `dim` readable values. */
export function checkPrefix(block: RowBlock, dim: number, what: string): void {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${what}: prefix length must be a positive integer, got ${dim}`);
  if (dim > block.stride) throw new Error(`${what}: prefix length ${dim} exceeds row length ${block.stride}`);
  const end = (block.offset ?? 0) + (block.rows - 1) * block.stride + dim;
  if (block.rows > 0 && end > block.data.length) {
    throw new Error(`${what}: ${block.rows} rows of prefix ${dim} need ${end} floats, buffer has ${block.data.length}`);
  }
}
