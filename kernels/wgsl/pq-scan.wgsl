// Fused PQ list scan (Backend.pqScanListsTopK): one invocation per (probed pair,
// member). Codes (m bytes per member) and ids of the probed lists are packed in
// `pack`; the directory holds per (query, list) pair 8 words: query (within the
// call), size, code byte offset, id word offset, table set (pq-tables.wgsl), the
// pair's first candidate in its query's row, the bias bits (x . ref for inner
// products with residuals, else 0) and padding. A member scores the sum over s
// of tables[(set * m + s) * 256 + code_s], then the bias, as adc.wgsl does.

struct Params {
  pairs: u32, m: u32, candStride: u32, _pad0: u32,
}

@group(0) @binding(1) var<storage, read> dir: array<u32>;
@group(0) @binding(2) var<storage, read> pack: array<u32>;
@group(0) @binding(3) var<storage, read> tables: array<f32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> candIds: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let pair = wg.y + wg.z * 65535u;
  if (pair >= p.pairs) { return; }
  let d = pair * 8u;
  let j = gid.x;
  if (j >= dir[d + 1u]) { return; }
  let t = dir[d + 4u] * p.m * 256u;
  let first = dir[d + 2u] + j * p.m;
  var s = 0.0;
  for (var sub = 0u; sub < p.m; sub++) {
    s += tables[t + sub * 256u + byteAt(pack[(first + sub) / 4u], first + sub)];
  }
  s += bitcast<f32>(dir[d + 6u]);
  let c = dir[d] * p.candStride + dir[d + 5u] + j;
  scores[c] = s;
  candIds[c] = bitcast<i32>(pack[dir[d + 3u] + j]);
}
