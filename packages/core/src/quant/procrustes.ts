/**
 * The orthogonal Procrustes step of OPQ: the rotation R maximising
 * tr(R N) for a d x d matrix N = X^T Y, i.e. R = V U^T for N = U S V^T.
 *
 * ml-matrix's SVD (arrays of arrays, Golub-Kahan) takes about 50 s at
 * d = 784, which made each OPQ training take minutes. Here R comes from the
 * symmetric eigendecomposition N^T N = W L W^T (Householder tridiagonalisation
 * and implicit QL on flat Float64Arrays, laid out so every inner loop walks a
 * contiguous row): R = W L^(-1/2) W^T N^T. Directions whose singular value is
 * too small to be resolved through N^T N (rank-deficient data: constant
 * pixels) contribute nothing to the objective; R maps them as `previous` did,
 * orthogonalised against the rest, so R is orthogonal whatever the rank.
 */

/** Singular values below this fraction of the largest are completed, not resolved (N^T N squares the condition number). */
const RESOLVED = 1e-4;

/**
 * Eigendecomposition of a symmetric n x n matrix (row-major, read only):
 * values (unsorted) and vectors as rows (row i is the eigenvector of values[i]).
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== n * n) throw new Error(`symmetricEigen: expected ${n} x ${n} values, got ${a.length}`);
  // w holds V^T of the JAMA formulation (tred2 / tql2), so the k-loops run along rows
  const w = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalise(w, d, e, n);
  tridiagonalQl(w, d, e, n);
  return { values: d, vectors: w };
}

function tridiagonalise(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1];
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        w[i * n + j] = f;
        const row = j * n;
        g = e[j] + w[row + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += w[row + k] * d[k];
          e[k] += w[row + k] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const row = j * n;
        for (let k = j; k <= i - 1; k++) w[row + k] -= f * e[k] + g * d[k];
        d[j] = w[row + i - 1];
        w[row + i] = 0;
      }
    }
    d[i] = h;
  }
  // accumulate the transformations
  for (let i = 0; i < n - 1; i++) {
    w[i * n + n - 1] = w[i * n + i];
    w[i * n + i] = 1;
    const h = d[i + 1];
    const next = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = w[next + k] / h;
      for (let j = 0; j <= i; j++) {
        const row = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += w[next + k] * w[row + k];
        for (let k = 0; k <= i; k++) w[row + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) w[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1];
    w[j * n + n - 1] = 0;
  }
  w[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

function tridiagonalQl(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      for (let iter = 0; ; iter++) {
        if (iter > 60) throw new Error('symmetricEigen: QL iteration did not converge');
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          // rotate eigenvector rows i and i + 1
          const a = i * n;
          const b = a + n;
          for (let k = 0; k < n; k++) {
            const hk = w[b + k];
            const vk = w[a + k];
            w[b + k] = s * vk + c * hk;
            w[a + k] = c * vk - s * hk;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]) > eps * tst1)) break;
      }
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** out = a b^T for row-major a (rows x inner) and b (cols x inner): every product a dot of two contiguous rows. */
function multiplyTransposed(a: Float64Array, b: Float64Array, rows: number, cols: number, inner: number, out: Float64Array): void {
  for (let i = 0; i < rows; i++) {
    const ai = i * inner;
    for (let j = 0; j < cols; j++) {
      const bj = j * inner;
      let s0 = 0;
      let s1 = 0;
      let k = 0;
      for (; k + 1 < inner; k += 2) {
        s0 += a[ai + k] * b[bj + k];
        s1 += a[ai + k + 1] * b[bj + k + 1];
      }
      if (k < inner) s0 += a[ai + k] * b[bj + k];
      out[i * cols + j] = s0 + s1;
    }
  }
}

function transposeSquare(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j];
  return t;
}

/**
 * R (d x d, row-major, row p gives output p) maximising tr(R N), N given
 * row-major; `previous` (an orthogonal d x d matrix) fills the directions N
 * does not determine.
 */
export function procrustesRotation(n: Float64Array, d: number, previous: Float32Array): Float32Array {
  if (n.length !== d * d || previous.length !== d * d) throw new Error(`procrustesRotation: expected ${d} x ${d} matrices`);
  const nt = transposeSquare(n, d);
  // N^T N: rows of N^T against rows of N^T
  const gram = new Float64Array(d * d);
  multiplyTransposed(nt, nt, d, d, d, gram);
  const { values, vectors } = symmetricEigen(gram, d);
  let top = 0;
  for (let i = 0; i < d; i++) top = Math.max(top, values[i]);
  const floor = top * RESOLVED * RESOLVED;
  // U = N W L^(-1/2): u_i = N w_i / sigma_i (rows of `u`), for the resolved directions
  const u = new Float64Array(d * d);
  multiplyTransposed(vectors, n, d, d, d, u); // row i = (N w_i)^T = w_i^T N^T
  const resolved: number[] = [];
  const unresolved: number[] = [];
  for (let i = 0; i < d; i++) {
    if (values[i] > floor) {
      const inv = 1 / Math.sqrt(values[i]);
      for (let k = 0; k < d; k++) u[i * d + k] *= inv;
      resolved.push(i);
    } else {
      unresolved.push(i);
    }
  }
  // complete: u_i = previous^T w_i (R u = w as before), Gram-Schmidt against the others (twice, for orthogonality in floats)
  for (const i of unresolved) {
    const ui = i * d;
    for (let k = 0; k < d; k++) u[ui + k] = 0;
    for (let p = 0; p < d; p++) {
      const wp = vectors[i * d + p];
      if (wp === 0) continue;
      for (let k = 0; k < d; k++) u[ui + k] += previous[p * d + k] * wp;
    }
  }
  const done: number[] = [...resolved];
  for (const i of unresolved) {
    const ui = i * d;
    for (let pass = 0; pass < 2; pass++) {
      for (const j of done) {
        const uj = j * d;
        let dot = 0;
        for (let k = 0; k < d; k++) dot += u[ui + k] * u[uj + k];
        for (let k = 0; k < d; k++) u[ui + k] -= dot * u[uj + k];
      }
    }
    let norm = 0;
    for (let k = 0; k < d; k++) norm += u[ui + k] * u[ui + k];
    norm = Math.sqrt(norm);
    if (!(norm > 1e-8)) throw new Error('procrustesRotation: previous rotation is not orthogonal');
    for (let k = 0; k < d; k++) u[ui + k] /= norm;
    done.push(i);
  }
  // R = sum_i w_i u_i^T: R[p][q] = sum_i W[i][p] U[i][q] = (W^T U)[p][q]
  const wt = transposeSquare(vectors, d);
  const ut = transposeSquare(u, d);
  const r = new Float64Array(d * d);
  multiplyTransposed(wt, ut, d, d, d, r);
  return Float32Array.from(r);
}
