// k-means assignment: the best-scoring centroid of each vector (ties: the
// lower centroid), labels[i] and its score. Metrics: metricTerm / metricScore (prelude.wgsl).

struct Params {
  n: u32, k: u32, dim: u32, metric: u32,
  vOffset: u32, vStride: u32, cOffset: u32, cStride: u32,
  vInvOffset: u32, cInvOffset: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(1) var<storage, read> vectors: array<f32>;
@group(0) @binding(2) var<storage, read> centroids: array<f32>;
@group(0) @binding(3) var<storage, read> vInv: array<f32>;
@group(0) @binding(4) var<storage, read> cInv: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<i32>;
@group(0) @binding(6) var<storage, read_write> best: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= p.n) { return; }
  let vo = p.vOffset + i * p.vStride;
  var bestIndex = 0u;
  var bestScore = 0.0;
  for (var c = 0u; c < p.k; c++) {
    let co = p.cOffset + c * p.cStride;
    var acc = 0.0;
    for (var d = 0u; d < p.dim; d++) {
      acc += metricTerm(p.metric, vectors[vo + d], centroids[co + d]);
    }
    let s = metricScore(p.metric, acc, vInv[p.vInvOffset + i], cInv[p.cInvOffset + c]);
    if (c == 0u || s > bestScore) {
      bestScore = s;
      bestIndex = c;
    }
  }
  labels[i] = i32(bestIndex);
  best[i] = bestScore;
}
