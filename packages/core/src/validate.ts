/** Input checks shared by build, add and search: every failure names the problem. */

export function checkVectors(data: Float32Array, rows: number, dim: number, what: string): void {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${what}: dimension must be a positive integer, got ${dim}`);
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${what}: row count must be a non-negative integer, got ${rows}`);
  if (data.length !== rows * dim) {
    throw new Error(`${what}: expected ${rows} x ${dim} = ${rows * dim} values, got ${data.length} (wrong dimension?)`);
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new Error(`${what}: row ${Math.floor(i / dim)} has a non-finite value (${data[i]}) at position ${i % dim}`);
    }
  }
}

export function checkPositiveInt(value: number, name: string, max?: number): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  if (max !== undefined && value > max) throw new Error(`${name} must be at most ${max}, got ${value}`);
}
