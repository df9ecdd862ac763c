// 4-bit fast-scan PQ: scores[q * n + j] = f32(sum) * scales[q] + bias[q], where sum is the integer
// sum over s < m of the table byte (q * m + s) * 16 + code(rowBase + j, s). Codes are in the block
// layout of packages/compute/src/fastscan.ts (block of 32 members, 16 bytes per sub-quantiser, member
// 16..31 of a block in the high nibbles); tables are bytes packed four to a u32.

struct Params {
  queries: u32, n: u32, m: u32, rowBase: u32,
  codeByteOffset: u32, scaleOffset: u32, biasOffset: u32, _pad0: u32,
}

@group(0) @binding(1) var<storage, read> tables: array<u32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let q = gid.y;
  if (j >= p.n || q >= p.queries) { return; }
  let pos = p.rowBase + j;
  let lane = pos % 32u;
  let shift = select(0u, 4u, lane >= 16u);
  let first = p.codeByteOffset + (pos / 32u) * 16u * p.m + lane % 16u;
  let t = q * p.m * 16u;
  var sum = 0u;
  for (var s = 0u; s < p.m; s++) {
    let at = first + 16u * s;
    let code = (byteAt(codes[at / 4u], at) >> shift) & 15u;
    let entry = t + s * 16u + code;
    sum += byteAt(tables[entry / 4u], entry);
  }
  scores[q * p.n + j] = f32(sum) * scales[p.scaleOffset + q] + bias[p.biasOffset + q];
}
