// Fused list scan (Backend.scanListsTopK): one invocation per (probed pair, member).
// The probed lists are packed into one buffer (`pack`, 32-bit words): per list its
// members (float32, float16 or sq8 elements, `stride` per member), its ids and,
// when kept, its inverse norms. The directory holds per (query, list) pair 6 words:
// query (within the call), size, member element offset (in the encoding's elements),
// id word offset, norm word offset (NO_NORMS: computed here from the decoded
// prefix) and the pair's first candidate in its query's row. Lists in the prefix-blocked
// layout (blockRows > 0; packages/compute/src/blocked.ts) are read in place: member j's
// element i lies in block j / blockRows, dimension group i / groupWidth (the last group of
// a stride that is not a multiple of groupWidth is narrower). Scores and ids go to
// row q of scores / candIds (stride candStride); topk.wgsl then merges them.
// Decoding and scoring match decode.wgsl + score.wgsl (the per-list path).
// A filter (maskWords > 0; packages/compute/src/mask.ts): `mask` words from maskOffset, bit id set =
// the member may be scored; a member it masks is not scored and its candidate id is -1, which
// topk.wgsl leaves out (as the reference scans the allowed members alone).
// Pairs: workgroup y + z * 65535.

struct Params {
  pairs: u32, dim: u32, stride: u32, metric: u32,
  encoding: u32, qOffset: u32, qStride: u32, qInvOffset: u32,
  candStride: u32, paramsOffset: u32, blockRows: u32, groupWidth: u32,
  maskWords: u32, maskOffset: u32,
}

@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> qInv: array<f32>;
@group(0) @binding(3) var<storage, read> dir: array<u32>;
@group(0) @binding(4) var<storage, read> pack: array<u32>;
@group(0) @binding(5) var<storage, read> params: array<f32>;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> candIds: array<i32>;
@group(0) @binding(8) var<storage, read> mask: array<u32>;

const ENC_F32: u32 = 0u;
const ENC_F16: u32 = 1u;
const NO_NORMS: u32 = 0xffffffffu;

// Element e of the packed members (element i of its member), decoded to float32.
fn element(e: u32, i: u32) -> f32 {
  if (p.encoding == ENC_F32) { return bitcast<f32>(pack[e]); }
  if (p.encoding == ENC_F16) { return halfAt(pack[e / 2u], e); }
  return params[p.paramsOffset + i] + params[p.paramsOffset + p.stride + i] * f32(byteAt(pack[e / 4u], e));
}

// Element offset of member j's element i from its list's first element.
fn memberElement(j: u32, i: u32) -> u32 {
  if (p.blockRows == 0u) { return j * p.stride + i; }
  let b = p.blockRows;
  let w = p.groupWidth;
  let g = i / w;
  let width = min(w, p.stride - g * w);
  return (j / b) * b * p.stride + g * b * w + (j % b) * width + (i - g * w);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let pair = wg.y + wg.z * 65535u;
  if (pair >= p.pairs) { return; }
  let d = pair * 6u;
  let q = dir[d];
  let j = gid.x;
  if (j >= dir[d + 1u]) { return; }
  let first = dir[d + 2u];
  let c = q * p.candStride + dir[d + 5u] + j;
  let id = bitcast<i32>(pack[dir[d + 3u] + j]);
  if (p.maskWords > 0u) {
    let w = u32(id) >> 5u;
    if (id < 0 || w >= p.maskWords || ((mask[p.maskOffset + w] >> (u32(id) & 31u)) & 1u) == 0u) {
      candIds[c] = -1;
      return;
    }
  }
  let qo = p.qOffset + q * p.qStride;
  let cosine = p.metric == METRIC_COSINE;
  var acc = 0.0;
  var squares = 0.0;
  for (var i = 0u; i < p.dim; i++) {
    let x = element(first + memberElement(j, i), i);
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
  scores[c] = metricScore(p.metric, acc, qInv[p.qInvOffset + q], inv);
  candIds[c] = id;
}
