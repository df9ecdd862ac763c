// PQ lookup tables for the fused PQ list scan (Backend.pqScanListsTopK): table set t,
// sub-space s, centroid c = the lookup metric (inner product, or negated squared
// distance for l2) of vector v_t's sub-space s (values bounds[s] .. bounds[s+1])
// against centroid c's (codebooks row c), where v_t = vectors[sets[2t]] (the
// rotated query) minus refs[sets[2t + 1]] when perList is 1 (l2 residuals: one
// set per (query, probed list)). Accumulated in order as score.wgsl does.
// One invocation per (set, s, c): workgroup x = s * 4 + c / 64, sets y + z * 65535.

struct Params {
  sets: u32, dim: u32, m: u32, metric: u32,
  vOffset: u32, vStride: u32, perList: u32, _pad0: u32,
}

@group(0) @binding(1) var<storage, read> vectors: array<f32>;
@group(0) @binding(2) var<storage, read> codebooks: array<f32>;
@group(0) @binding(3) var<storage, read> bounds: array<u32>;
@group(0) @binding(4) var<storage, read> refs: array<f32>;
@group(0) @binding(5) var<storage, read> sets: array<u32>;
@group(0) @binding(6) var<storage, read_write> tables: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = wg.y + wg.z * 65535u;
  if (t >= p.sets) { return; }
  let s = wg.x / 4u;
  let c = (wg.x % 4u) * 64u + lid.x;
  let vo = p.vOffset + sets[2u * t] * p.vStride;
  let ro = sets[2u * t + 1u] * p.dim;
  var acc = 0.0;
  for (var i = bounds[s]; i < bounds[s + 1u]; i++) {
    var a = vectors[vo + i];
    if (p.perList == 1u) { a = a - refs[ro + i]; }
    acc += metricTerm(p.metric, a, codebooks[c * p.dim + i]);
  }
  tables[(t * p.m + s) * 256u + c] = metricScore(p.metric, acc, 1.0, 1.0);
}
