// Parallel per-query top-k (webgpu-backend.ts, topk()): merges row r's candidates
// into heap row r with the engine's total order (higher score, then lower id), in
// passes over "lists" (per row, `tiles` lists of up to `kp` entries, best first):
//   tile:   one workgroup per (tile of TILE candidates, row) sorts its tile in
//           workgroup memory (bitonic) and keeps its best kp. Candidates are the
//           row's scores (tiles below scoreTiles) and the row's current heap
//           entries (the tiles after), so the old heap is merged like new scores.
//   reduce: the same over the previous pass's lists (while kp <= TILE / 2 each
//           pass shrinks them by TILE / kp).
//   merge:  one invocation per list entry: its rank among all lists' entries is
//           its index plus, by binary search, the entries of every other list
//           that rank above it (equal entries: the earlier list first); ranks
//           below k are written to the heap worst first. An ascending array is a
//           valid min-heap (TopK's layout: worst at the root), and the kept set
//           is the reference heap's: the best k of all candidates.
// Rows: workgroup y + z * 65535. Heap buffer (u32 words): ids [0, rows * k),
// score bits [rows * k, 2 rows * k), sizes [2 rows * k, 2 rows * k + rows).
// List buffers: entry (score bits, id) pairs at ((r * tiles + t) * kp + i) * 2,
// then the counts at rows * tiles * kp * 2 + r * tiles + t.
// Ids (tile): mode 0 = idBase + j, 1 = ids[idsOffset + j], 2 = ids[idsOffset + r * idsStride + j].
// Candidates per row (tile): n, or counts[r] when useCounts is 1. In mode 2 a candidate id of -1 is
// one a filter removed (list-scan.wgsl): left out like a position past n.

struct Params {
  rows: u32, n: u32, k: u32, idsMode: u32,
  scoreOffset: u32, scoreStride: u32, idsOffset: u32, idsStride: u32,
  idBase: u32, useCounts: u32, scoreTiles: u32, inTiles: u32,
  inKp: u32, outTiles: u32, outKp: u32, heapBound: u32,
}

@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> counts: array<i32>;
@group(0) @binding(4) var<storage, read_write> heap: array<u32>;
@group(0) @binding(5) var<storage, read> inLists: array<u32>;
@group(0) @binding(6) var<storage, read_write> outLists: array<u32>;

const WG: u32 = 128u;
const TILE: u32 = 512u;
const ROWS_PER_Y: u32 = 65535u;

var<workgroup> sScore: array<f32, 512>;
var<workgroup> sId: array<i32, 512>;
var<workgroup> sValid: array<u32, 512>;
var<workgroup> sCount: atomic<u32>;

// Entry a ranks above entry b in the tile (invalid entries rank below every valid one).
fn above(a: u32, b: u32) -> bool {
  if (sValid[a] != sValid[b]) { return sValid[a] == 1u; }
  return ranksBelow(sScore[b], sId[b], sScore[a], sId[a]);
}

fn put(slot: u32, valid: bool, s: f32, id: i32) {
  sValid[slot] = select(0u, 1u, valid);
  sScore[slot] = s;
  sId[slot] = id;
  if (valid) { atomicAdd(&sCount, 1u); }
}

// Sorts the tile's first `bound` entries (the rest are empty) best first, then writes its best
// min(count, outKp) to list `tile` of row r. The sort spans the power of two >= bound, so a
// short tile (small n, the last tile) costs what it holds; bound is uniform, as barriers need.
fn sortAndWrite(lid: u32, r: u32, tile: u32, bound: u32) {
  workgroupBarrier();
  let width = 1u << (32u - countLeadingZeros(max(min(bound, TILE), 1u) - 1u));
  for (var size = 2u; size <= width; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var e = lid; e < width / 2u; e += WG) {
        let i = 2u * stride * (e / stride) + e % stride;
        let j = i + stride;
        // blocks with (i & size) == 0 are ordered best first, the others worst first, so the
        // merged pairs of blocks form bitonic sequences; the last size orders all best first
        if (select(above(i, j), above(j, i), (i & size) == 0u)) {
          let s = sScore[i]; let d = sId[i]; let v = sValid[i];
          sScore[i] = sScore[j]; sId[i] = sId[j]; sValid[i] = sValid[j];
          sScore[j] = s; sId[j] = d; sValid[j] = v;
        }
      }
      workgroupBarrier();
    }
  }
  let kept = min(atomicLoad(&sCount), p.outKp);
  let list = r * p.outTiles + tile;
  for (var i = lid; i < kept; i += WG) {
    outLists[(list * p.outKp + i) * 2u] = bitcast<u32>(sScore[i]);
    outLists[(list * p.outKp + i) * 2u + 1u] = bitcast<u32>(sId[i]);
  }
  if (lid == 0u) { outLists[p.rows * p.outTiles * p.outKp * 2u + list] = kept; }
}

@compute @workgroup_size(128)
fn tile(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  let r = wg.y + wg.z * ROWS_PER_Y;
  if (r >= p.rows) { return; }
  if (lid == 0u) { atomicStore(&sCount, 0u); }
  workgroupBarrier();
  var n = p.n;
  if (p.useCounts == 1u) { n = u32(counts[r]); }
  let size = heap[2u * p.rows * p.k + r];
  for (var e = lid; e < TILE; e += WG) {
    if (wg.x < p.scoreTiles) {
      let j = wg.x * TILE + e;
      var id = i32(p.idBase + j);
      var s = 0.0;
      if (j < n) {
        s = scores[p.scoreOffset + r * p.scoreStride + j];
        if (p.idsMode == 1u) { id = ids[p.idsOffset + j]; }
        if (p.idsMode == 2u) { id = ids[p.idsOffset + r * p.idsStride + j]; }
      }
      put(e, j < n && !(p.idsMode == 2u && id == -1), s, id);
    } else {
      let h = (wg.x - p.scoreTiles) * TILE + e;
      var id = 0;
      var s = 0.0;
      if (h < size) {
        id = bitcast<i32>(heap[r * p.k + h]);
        s = bitcast<f32>(heap[p.rows * p.k + r * p.k + h]);
      }
      put(e, h < size, s, id);
    }
  }
  // entries this tile can hold: the rest of the scores, or of the largest heap (heapBound, host-side)
  var bound = p.heapBound - (wg.x - p.scoreTiles) * TILE;
  if (wg.x < p.scoreTiles) { bound = p.n - wg.x * TILE; }
  sortAndWrite(lid, r, wg.x, bound);
}

@compute @workgroup_size(128)
fn reduce(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  let r = wg.y + wg.z * ROWS_PER_Y;
  if (r >= p.rows) { return; }
  if (lid == 0u) { atomicStore(&sCount, 0u); }
  workgroupBarrier();
  let countBase = p.rows * p.inTiles * p.inKp * 2u;
  for (var e = lid; e < TILE; e += WG) {
    // the row's lists as one run of inTiles * inKp slots; a slot past its list's count is empty
    let slot = wg.x * TILE + e;
    let list = slot / p.inKp;
    var valid = false;
    var s = 0.0;
    var id = 0;
    if (list < p.inTiles) {
      let at = r * p.inTiles + list;
      valid = slot % p.inKp < inLists[countBase + at];
      if (valid) {
        s = bitcast<f32>(inLists[(at * p.inKp + slot % p.inKp) * 2u]);
        id = bitcast<i32>(inLists[(at * p.inKp + slot % p.inKp) * 2u + 1u]);
      }
    }
    put(e, valid, s, id);
  }
  sortAndWrite(lid, r, wg.x, p.inTiles * p.inKp - wg.x * TILE);
}

// Entries of list t of row r that rank above (s, id): strictly above when `strict`, else also equal ones.
fn aboveIn(r: u32, t: u32, s: f32, id: i32, strict: bool) -> u32 {
  let at = r * p.inTiles + t;
  var lo = 0u;
  var hi = inLists[p.rows * p.inTiles * p.inKp * 2u + at];
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    let ms = bitcast<f32>(inLists[(at * p.inKp + mid) * 2u]);
    let mid_id = bitcast<i32>(inLists[(at * p.inKp + mid) * 2u + 1u]);
    var isAbove = ranksBelow(s, id, ms, mid_id);
    if (!strict) { isAbove = !ranksBelow(ms, mid_id, s, id); }
    if (isAbove) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}

@compute @workgroup_size(128)
fn merge(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let r = wg.y + wg.z * ROWS_PER_Y;
  if (r >= p.rows) { return; }
  let countBase = p.rows * p.inTiles * p.inKp * 2u;
  var total = 0u;
  for (var t = 0u; t < p.inTiles; t++) { total += inLists[countBase + r * p.inTiles + t]; }
  let size = min(total, p.k);
  let slot = gid.x;
  if (slot == 0u) { heap[2u * p.rows * p.k + r] = size; }
  let t = slot / p.inKp;
  let i = slot % p.inKp;
  if (t >= p.inTiles || i >= inLists[countBase + r * p.inTiles + t]) { return; }
  let at = r * p.inTiles + t;
  let s = bitcast<f32>(inLists[(at * p.inKp + i) * 2u]);
  let id = bitcast<i32>(inLists[(at * p.inKp + i) * 2u + 1u]);
  var rank = i;
  for (var o = 0u; o < p.inTiles; o++) {
    if (o == t || rank >= p.k) { continue; }
    rank += aboveIn(r, o, s, id, o > t);
  }
  if (rank >= size) { return; }
  let out = r * p.k + size - 1u - rank;
  heap[out] = bitcast<u32>(id);
  heap[p.rows * p.k + out] = bitcast<u32>(s);
}
