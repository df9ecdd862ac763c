// Batched prefix scoring: out[outOffset + q * outStride + j] = score(query q, row j)
// over the first `dim` values, for q < qRows, j < n. Metric 0 cosine (scaled by
// both inverse norms), 1 inner product, 2 negated squared Euclidean distance.
// Tiled through workgroup memory: an 8 x 8 block of (query, row) pairs loads
// 8 dims of its 8 queries and 8 rows once and every invocation reuses them.

struct Params {
  qRows: u32, n: u32, dim: u32, metric: u32,
  qOffset: u32, qStride: u32, bOffset: u32, bStride: u32,
  qInvOffset: u32, bInvOffset: u32, outOffset: u32, outStride: u32,
}

@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> base: array<f32>;
@group(0) @binding(3) var<storage, read> qInv: array<f32>;
@group(0) @binding(4) var<storage, read> bInv: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const TILE: u32 = 8u;
var<workgroup> qTile: array<array<f32, 8>, 8>;
var<workgroup> bTile: array<array<f32, 8>, 8>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let q = wg.y * TILE + lid.y;
  let j = wg.x * TILE + lid.x;
  let loadRow = wg.x * TILE + lid.y;
  var acc = 0.0;
  for (var d0 = 0u; d0 < p.dim; d0 += TILE) {
    let d = d0 + lid.x;
    var x = 0.0;
    if (q < p.qRows && d < p.dim) { x = queries[p.qOffset + q * p.qStride + d]; }
    qTile[lid.y][lid.x] = x;
    var y = 0.0;
    if (loadRow < p.n && d < p.dim) { y = base[p.bOffset + loadRow * p.bStride + d]; }
    bTile[lid.y][lid.x] = y;
    workgroupBarrier();
    let m = min(TILE, p.dim - d0);
    for (var t = 0u; t < m; t++) {
      acc += metricTerm(p.metric, qTile[lid.y][t], bTile[lid.x][t]);
    }
    workgroupBarrier();
  }
  if (q >= p.qRows || j >= p.n) { return; }
  out[p.outOffset + q * p.outStride + j] = metricScore(p.metric, acc, qInv[p.qInvOffset + q], bInv[p.bInvOffset + j]);
}
