// Decodes encoded rows to float32 (packages/compute/src/coded.ts): out[r * dim + j]
// = element j of row r, for r < n, j < dim. Encoding 0: float16 (halfAt, exact);
// 1: sq8, params[j] + params[stride + j] * code (float32, in that order, as the
// CPU backends decode). Codes start at element codeOffset of the packed array.

struct Params {
  n: u32, dim: u32, stride: u32, encoding: u32,
  codeOffset: u32, paramsOffset: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p.n * p.dim) { return; }
  let r = i / p.dim;
  let j = i % p.dim;
  let e = p.codeOffset + r * p.stride + j;
  if (p.encoding == 0u) {
    out[i] = halfAt(codes[e / 2u], e);
  } else {
    let c = f32(byteAt(codes[e / 4u], e));
    out[i] = params[p.paramsOffset + j] + params[p.paramsOffset + p.stride + j] * c;
  }
}
