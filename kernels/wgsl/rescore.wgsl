// Exact re-rank of shortlists by row number: scores[q * ck + i] = score(query
// q, base row cand[q * ck + i]) for i < counts[q], read where the rows are
// stored (no gather). Metrics: metricTerm / metricScore (prelude.wgsl).

struct Params {
  qRows: u32, ck: u32, dim: u32, metric: u32,
  qOffset: u32, qStride: u32, bOffset: u32, bStride: u32,
  qInvOffset: u32, bInvOffset: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> base: array<f32>;
@group(0) @binding(3) var<storage, read> qInv: array<f32>;
@group(0) @binding(4) var<storage, read> bInv: array<f32>;
@group(0) @binding(5) var<storage, read> cand: array<i32>;
@group(0) @binding(6) var<storage, read> counts: array<i32>;
@group(0) @binding(7) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let q = gid.y;
  if (q >= p.qRows || i >= u32(counts[q])) { return; }
  let row = u32(cand[q * p.ck + i]);
  let qo = p.qOffset + q * p.qStride;
  let bo = p.bOffset + row * p.bStride;
  var acc = 0.0;
  for (var d = 0u; d < p.dim; d++) {
    acc += metricTerm(p.metric, queries[qo + d], base[bo + d]);
  }
  scores[q * p.ck + i] = metricScore(p.metric, acc, qInv[p.qInvOffset + q], bInv[p.bInvOffset + row]);
}
