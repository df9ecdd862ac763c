// 8-bit ADC scan: scores[q * n + j] = bias[q] + sum over s < m of
// tables[(q * m + s) * 256 + code(j, s)], codes packed four bytes to a u32
// (byte b of the code array at bit 8 * (b % 4) of word b / 4).

struct Params {
  queries: u32, n: u32, m: u32, useBias: u32,
  codeByteOffset: u32, tableOffset: u32, biasOffset: u32, _pad: u32,
}

@group(0) @binding(1) var<storage, read> tables: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

fn codeByte(index: u32) -> u32 {
  return byteAt(codes[index / 4u], index);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let q = gid.y;
  if (j >= p.n || q >= p.queries) { return; }
  var s = 0.0;
  let t = p.tableOffset + q * p.m * 256u;
  let c = p.codeByteOffset + j * p.m;
  for (var sub = 0u; sub < p.m; sub++) {
    s += tables[t + sub * 256u + codeByte(c + sub)];
  }
  if (p.useBias == 1u) { s += bias[p.biasOffset + q]; }
  scores[q * p.n + j] = s;
}
