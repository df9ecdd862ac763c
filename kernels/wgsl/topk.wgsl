// Per-query top-k selection: merges row r's scores into heap row r (a binary
// min-heap of k entries, worst at the root), with the engine's total order:
// higher score first, then lower id. One invocation per query row, so the
// result matches the CPU heaps entry for entry on equal scores.
// Ids: mode 0 = idBase + j, mode 1 = ids[idsOffset + j], mode 2 = ids[idsOffset + r * idsStride + j].
// Candidates per row: n, or counts[r] when useCounts is 1.

struct Params {
  rows: u32, n: u32, k: u32, idsMode: u32,
  scoreOffset: u32, scoreStride: u32, idsOffset: u32, idsStride: u32,
  idBase: u32, useCounts: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> counts: array<i32>;
@group(0) @binding(4) var<storage, read_write> heapIds: array<i32>;
@group(0) @binding(5) var<storage, read_write> heapScores: array<f32>;
@group(0) @binding(6) var<storage, read_write> heapSizes: array<i32>;

fn push(r: u32, id: i32, s: f32) {
  let k = p.k;
  let b = r * k;
  let size = u32(heapSizes[r]);
  if (size < k) {
    var i = size;
    heapSizes[r] = i32(size + 1u);
    loop {
      if (i == 0u) { break; }
      let parent = (i - 1u) / 2u;
      let ps = heapScores[b + parent];
      let pid = heapIds[b + parent];
      if (ranksBelow(ps, pid, s, id)) { break; }
      heapScores[b + i] = ps;
      heapIds[b + i] = pid;
      i = parent;
    }
    heapScores[b + i] = s;
    heapIds[b + i] = id;
    return;
  }
  if (!ranksBelow(heapScores[b], heapIds[b], s, id)) { return; }
  var i = 0u;
  loop {
    let l = 2u * i + 1u;
    if (l >= k) { break; }
    var c = l;
    let rr = l + 1u;
    if (rr < k && ranksBelow(heapScores[b + rr], heapIds[b + rr], heapScores[b + l], heapIds[b + l])) { c = rr; }
    let cs = heapScores[b + c];
    let cid = heapIds[b + c];
    if (ranksBelow(s, id, cs, cid)) { break; }
    heapScores[b + i] = cs;
    heapIds[b + i] = cid;
    i = c;
  }
  heapScores[b + i] = s;
  heapIds[b + i] = id;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= p.rows) { return; }
  var n = p.n;
  if (p.useCounts == 1u) { n = u32(counts[r]); }
  for (var j = 0u; j < n; j++) {
    let s = scores[p.scoreOffset + r * p.scoreStride + j];
    // only candidates that can enter are pushed (a full heap's root is its worst)
    if (u32(heapSizes[r]) >= p.k && s < heapScores[r * p.k]) { continue; }
    var id = i32(p.idBase + j);
    if (p.idsMode == 1u) { id = ids[p.idsOffset + j]; }
    if (p.idsMode == 2u) { id = ids[p.idsOffset + r * p.idsStride + j]; }
    push(r, id, s);
  }
}
