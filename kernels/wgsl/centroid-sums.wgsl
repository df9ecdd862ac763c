// k-means update sums on the device: invocation (c, j) adds dimension j of
// the vectors labelled c. The host sorts vector numbers by label (order[],
// segment c is order[start[c] .. start[c + 1])), so every invocation reads
// one contiguous segment and sums it in order of vector number, as the CPU does.

// Work larger than one binding runs in chunks of vectors (accumulate = 1
// adds to the sums so far) and of clusters (cBase: the first cluster of this
// dispatch).
struct Params {
  k: u32, dim: u32, vOffset: u32, vStride: u32,
  cBase: u32, accumulate: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(1) var<storage, read> vectors: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> start: array<u32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let c = gid.y + p.cBase;
  if (j >= p.dim || c >= p.k) { return; }
  var s = 0.0;
  if (p.accumulate == 1u) { s = sums[c * p.dim + j]; }
  for (var t = start[c]; t < start[c + 1u]; t++) {
    s += vectors[p.vOffset + order[t] * p.vStride + j];
  }
  sums[c * p.dim + j] = s;
}
