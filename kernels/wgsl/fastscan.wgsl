// 4-bit fast-scan PQ. Codes are in the block layout of packages/compute/src/fastscan.ts (block of 32
// members, 16 bytes per sub-quantiser, members 16..31 of a block in the high nibbles); tables are m x 16
// bytes per table, packed four to a u32. A member scores f32(sum) * scale + bias, where sum is the
// integer sum over s < m of table byte s * 16 + code(member, s).
//
// main (Backend.fastScanTopK): one list, scores[q * n + j] for member rowBase + j and query q
// (rows = queries, width = n), table q, scale and bias from their offsets.
// lists (Backend.fastScanListsTopK): one invocation per (probed pair, member) of the lists packed in
// `codes`; the directory holds per (query, list) pair 8 words: query (within the call), size, code byte
// offset, id word offset, table (the query's, or the pair's for l2 residuals), the pair's first
// candidate in its query's row, and the scale and bias bits of its quantised table (rows = pairs,
// width = the candidate row stride); scores and ids go to row q of scores / candIds for topk.wgsl.

struct Params {
  rows: u32, width: u32, m: u32, rowBase: u32,
  codeByteOffset: u32, scaleOffset: u32, biasOffset: u32, _pad0: u32,
}

@group(0) @binding(1) var<storage, read> tables: array<u32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;
@group(0) @binding(6) var<storage, read> dir: array<u32>;
@group(0) @binding(7) var<storage, read_write> candIds: array<i32>;

// The table sum of position `pos` of the codes starting at byte `codeBase`, table `t`.
fn tableSum(codeBase: u32, pos: u32, t: u32) -> u32 {
  let lane = pos % 32u;
  let shift = select(0u, 4u, lane >= 16u);
  let first = codeBase + (pos / 32u) * 16u * p.m + lane % 16u;
  let table = t * p.m * 16u;
  var sum = 0u;
  for (var s = 0u; s < p.m; s++) {
    let at = first + 16u * s;
    let code = (byteAt(codes[at / 4u], at) >> shift) & 15u;
    let entry = table + s * 16u + code;
    sum += byteAt(tables[entry / 4u], entry);
  }
  return sum;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let q = gid.y;
  if (j >= p.width || q >= p.rows) { return; }
  let sum = tableSum(p.codeByteOffset, p.rowBase + j, q);
  scores[q * p.width + j] = f32(sum) * scales[p.scaleOffset + q] + bias[p.biasOffset + q];
}

@compute @workgroup_size(64)
fn lists(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let pair = wg.y + wg.z * 65535u;
  if (pair >= p.rows) { return; }
  let d = pair * 8u;
  let j = gid.x;
  if (j >= dir[d + 1u]) { return; }
  let sum = tableSum(dir[d + 2u], j, dir[d + 4u]);
  let c = dir[d] * p.width + dir[d + 5u] + j;
  scores[c] = f32(sum) * bitcast<f32>(dir[d + 6u]) + bitcast<f32>(dir[d + 7u]);
  candIds[c] = bitcast<i32>(codes[dir[d + 3u] + j]);
}
