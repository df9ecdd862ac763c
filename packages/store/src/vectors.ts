import type { Metric } from '@adanns/compute';
import { invalid } from './errors.js';

/**
 * Largest vector norm an ip or l2 collection takes: inner products stay
 * below 1e36 and squared distances below (2e18)^2 = 4e36, so every score
 * (and every partial sum a float32 kernel forms) stays finite.
 */
export const MAX_NORM = 1e18;
/**
 * Components of a unit vector below this are flushed to zero: sqrt of the smallest normal
 * float32 (1.18e-38). Every Matryoshka prefix of an index row is then zero or has a norm of at
 * least this, so the float32 kernels' products (a prefix's squared terms, query x row values,
 * and the two inverse norms multiplied, each at most 1 / 1.08e-19) are all normal and finite.
 * What is flushed weighs under 1e-19 of the vector: nothing at float32 precision.
 */
const FLUSH_BELOW = Math.sqrt(1.1754943508222875e-38);

/** A decoded value as an error message shows it: JSON.stringify throws on BigInt and hides undefined. */
export function showValue(x: unknown): string {
  if (typeof x === 'bigint') return `${x}n (a 64-bit integer)`;
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x);
  if (typeof x === 'number' || typeof x === 'boolean' || x === undefined || x === null) return String(x);
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') {
    const name = (Object.getPrototypeOf(x) as { constructor?: { name?: string } } | null)?.constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof x;
}

/** Copies a vector given as an array or typed array, checking its length and that every value is a finite float32. */
export function toVector(value: unknown, dim: number, what: string): Float32Array {
  return writeVector(value, dim, what, new Float32Array(dim), 0);
}

/** toVector into out[offset, offset + dim) (a batch's rows, without a copy per vector). */
export function writeVector(value: unknown, dim: number, what: string, out: Float32Array, offset: number): Float32Array {
  const ok = Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
  if (!ok) throw invalid(`${what}: vector must be an array of ${dim} numbers, got ${showValue(value)}`);
  const source = value as ArrayLike<unknown>;
  if (source.length !== dim) throw invalid(`${what}: vector has ${source.length} values, the collection has dimension ${dim}`);
  if (value instanceof Float32Array) {
    // already float32: only NaN and infinities to refuse
    for (let i = 0; i < dim; i++) if (!Number.isFinite(value[i])) throw invalid(`${what}: vector[${i}] is ${value[i]}, not a finite number`);
    out.set(value, offset);
    return out;
  }
  for (let i = 0; i < dim; i++) {
    const x = source[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(`${what}: vector[${i}] is ${showValue(x)}, not a finite number`);
    out[offset + i] = x;
    if (!Number.isFinite(out[offset + i])) throw invalid(`${what}: vector[${i}] is ${x}, outside the float32 range`);
  }
  return out;
}

/** Euclidean norm accumulated in float64: no float32 square overflows (3e38) or underflows (1e-40) to a wrong norm. */
function norm(data: Float32Array, offset: number, dim: number): number {
  let s = 0;
  for (let i = offset; i < offset + dim; i++) s += data[i] * data[i];
  return Math.sqrt(s);
}

/**
 * Refuses a vector the metric cannot score finitely: an all-zero vector in
 * a cosine collection (its cosine is undefined), a norm above MAX_NORM in an
 * ip or l2 collection. Any other finite float32 vector is accepted; cosine
 * collections hand the index unit vectors (see unitRowsInPlace).
 */
export function checkVectorForMetric(vector: Float32Array, metric: Metric, what: string, offset = 0, dim = vector.length - offset, halfLists = false): void {
  const n = norm(vector, offset, dim);
  if (metric === 'cosine') {
    if (n === 0) throw invalid(`${what}: vector is all zeros, which has no cosine similarity to anything`);
  } else if (n > MAX_NORM) {
    throw invalid(`${what}: vector norm ${n.toPrecision(3)} is above ${MAX_NORM.toExponential()}; ${metric} scores of such vectors overflow float32 (scale the vectors down)`);
  } else if (halfLists && n > F16_MAX_NORM) {
    throw invalid(`${what}: vector norm ${n.toPrecision(3)} is above ${F16_MAX_NORM}, which float16 lists (an f16@d index) cannot hold: they would saturate and rank wrongly (scale the vectors down, or use sq8@d or flat@d lists)`);
  }
}

/**
 * Largest vector norm an ip or l2 collection with float16 lists takes: the
 * lists hold (PCA-rotated, for l2 centred) components, each at most the
 * norm (centred: twice it), and float16 saturates at 65504. Cosine
 * collections hand the index unit vectors, so they take any norm.
 */
export const F16_MAX_NORM = 65504 / 2;

/**
 * The form the index holds for a cosine collection: every row scaled to unit
 * length in float64, with components below FLUSH_BELOW (~1e-19) flushed to
 * zero. Cosine is scale-invariant, so scores are unchanged, but the float32
 * kernels (and their inverse norms, at every prefix) then only ever see values
 * in [FLUSH_BELOW, 1]: a vector of 1e-40s or of 3e38s, or one whose prefix is
 * tiny (a prefix of norm < FLUSH_BELOW becomes a zero prefix, which scores 0),
 * scores finitely instead of as Infinity or NaN. The stored (returned) vector stays as given.
 * Other metrics are left as they are. Zero rows stay zero.
 */
export function indexRowsInPlace(data: Float32Array, rows: number, dim: number, metric: Metric): Float32Array {
  if (metric !== 'cosine') return data;
  for (let r = 0, o = 0; r < rows; r++, o += dim) {
    const n = norm(data, o, dim);
    if (n === 0) continue;
    for (let i = o; i < o + dim; i++) {
      const x = data[i] / n;
      data[i] = Math.abs(x) < FLUSH_BELOW ? 0 : x;
    }
  }
  return data;
}
