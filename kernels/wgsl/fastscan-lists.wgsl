// Fused 4-bit fast-scan list scan (Backend.fastScanListsTopK): one invocation per (probed pair,
// member). Codes (block layout of packages/compute/src/fastscan.ts) and ids of the probed lists are
// packed in `pack`; the directory holds per (query, list) pair 8 words: query (within the call),
// size, code byte offset, id word offset, table (byte tables of m x 16 entries, packed four to a
// u32: the query's, or the pair's for l2 residuals), the pair's first candidate in its query's row,
// and the scale and bias bits of its quantised table. A member scores f32(sum) * scale + bias with
// sum the integer sum of its table bytes, as fastscan.wgsl does.

struct Params {
  pairs: u32, m: u32, candStride: u32, _pad0: u32,
}

@group(0) @binding(1) var<storage, read> dir: array<u32>;
@group(0) @binding(2) var<storage, read> pack: array<u32>;
@group(0) @binding(3) var<storage, read> tables: array<u32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> candIds: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let pair = wg.y + wg.z * 65535u;
  if (pair >= p.pairs) { return; }
  let d = pair * 8u;
  let j = gid.x;
  if (j >= dir[d + 1u]) { return; }
  let lane = j % 32u;
  let shift = select(0u, 4u, lane >= 16u);
  let first = dir[d + 2u] + (j / 32u) * 16u * p.m + lane % 16u;
  let t = dir[d + 4u] * p.m * 16u;
  var sum = 0u;
  for (var s = 0u; s < p.m; s++) {
    let at = first + 16u * s;
    let code = (byteAt(pack[at / 4u], at) >> shift) & 15u;
    let entry = t + s * 16u + code;
    sum += byteAt(tables[entry / 4u], entry);
  }
  let c = dir[d] * p.candStride + dir[d + 5u] + j;
  scores[c] = f32(sum) * bitcast<f32>(dir[d + 6u]) + bitcast<f32>(dir[d + 7u]);
  candIds[c] = bitcast<i32>(pack[dir[d + 3u] + j]);
}
