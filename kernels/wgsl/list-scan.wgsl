// Fused list scan (Backend.scanListsTopK): one invocation per (probed pair, member).
// The probed lists are packed into one buffer (`pack`, 32-bit words): per list its
// members (float32, float16 or sq8 elements, `stride` per member), its ids and,
// when kept, its inverse norms. The directory holds per (query, list) pair 6 words:
// query (within the call), size, member element offset (in the encoding's elements),
// id word offset, norm word offset (NO_NORMS: computed here from the decoded
// prefix) and the pair's first candidate in its query's row. Scores and ids go to
// row q of scores / candIds (stride candStride); topk.wgsl then merges them.
// Decoding and scoring match decode.wgsl + score.wgsl (the per-list path).
// Pairs: workgroup y + z * 65535.

struct Params {
  pairs: u32, dim: u32, stride: u32, metric: u32,
  encoding: u32, qOffset: u32, qStride: u32, qInvOffset: u32,
  candStride: u32, paramsOffset: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> qInv: array<f32>;
@group(0) @binding(3) var<storage, read> dir: array<u32>;
@group(0) @binding(4) var<storage, read> pack: array<u32>;
@group(0) @binding(5) var<storage, read> params: array<f32>;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> candIds: array<i32>;

const ENC_F32: u32 = 0u;
const ENC_F16: u32 = 1u;
const NO_NORMS: u32 = 0xffffffffu;

// Element e of the packed members (element i of its member), decoded to float32.
fn element(e: u32, i: u32) -> f32 {
  if (p.encoding == ENC_F32) { return bitcast<f32>(pack[e]); }
  if (p.encoding == ENC_F16) { return halfAt(pack[e / 2u], e); }
  return params[p.paramsOffset + i] + params[p.paramsOffset + p.stride + i] * f32(byteAt(pack[e / 4u], e));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let pair = wg.y + wg.z * 65535u;
  if (pair >= p.pairs) { return; }
  let d = pair * 6u;
  let q = dir[d];
  let j = gid.x;
  if (j >= dir[d + 1u]) { return; }
  let first = dir[d + 2u] + j * p.stride;
  let qo = p.qOffset + q * p.qStride;
  let cosine = p.metric == METRIC_COSINE;
  var acc = 0.0;
  var squares = 0.0;
  for (var i = 0u; i < p.dim; i++) {
    let x = element(first + i, i);
    acc += metricTerm(p.metric, queries[qo + i], x);
    if (cosine) { squares += x * x; }
  }
  var inv = 0.0;
  if (cosine) {
    if (dir[d + 4u] == NO_NORMS) {
      inv = select(0.0, 1.0 / sqrt(squares), squares > 0.0);
    } else {
      inv = bitcast<f32>(pack[dir[d + 4u] + j]);
    }
  }
  let c = q * p.candStride + dir[d + 5u] + j;
  scores[c] = metricScore(p.metric, acc, qInv[p.qInvOffset + q], inv);
  candIds[c] = bitcast<i32>(pack[dir[d + 3u] + j]);
}
