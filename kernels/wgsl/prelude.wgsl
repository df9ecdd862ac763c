// Shared prelude, composed in front of every kernel at load time (see
// packages/compute/src/webgpu/wgsl.ts; docs/ARCHITECTURE.md, "Kernels").
//
// How a kernel uses it:
// - declare `struct Params { ... }` (a multiple of 16 bytes: pad with _padN: u32);
//   the prelude binds it as `p` at @group(0) @binding(0). Arrays start at binding 1.
// - score pairs with metricTerm() per dimension and metricScore() at the end, so
//   every kernel scores exactly as the CPU backends do (metric codes below).
// - rank with ranksBelow(): the engine's total order (higher score, then lower id).
// - read packed codes with byteAt() / signedByteAt() / halfAt() over array<u32>.
// Nothing else may be declared here at a binding: kernels own bindings 1 and up.
// A kernel file is not valid WGSL on its own (it needs this prelude).

// packages/compute/src/metric.ts: every score is "larger is closer".
const METRIC_COSINE: u32 = 0u;
const METRIC_IP: u32 = 1u;
const METRIC_L2: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;

// One dimension's contribution: a * b, or (a - b)^2 for L2.
fn metricTerm(metric: u32, a: f32, b: f32) -> f32 {
  if (metric == METRIC_L2) {
    let e = a - b;
    return e * e;
  }
  return a * b;
}

// The score from the summed terms: L2 negated (larger is closer), cosine
// scaled by both inverse norms (invA * invB first, as the CPU kernels do).
fn metricScore(metric: u32, acc: f32, invA: f32, invB: f32) -> f32 {
  if (metric == METRIC_L2) { return -acc; }
  if (metric == METRIC_COSINE) { return acc * (invA * invB); }
  return acc;
}

// (as_, aid) ranks below (bs, bid): lower score, or equal score and higher id.
fn ranksBelow(as_: f32, aid: i32, bs: f32, bid: i32) -> bool {
  return as_ < bs || (as_ == bs && aid > bid);
}

// Byte b of a packed byte array is at bit 8 * (b % 4) of word b / 4.
fn byteAt(word: u32, index: u32) -> u32 {
  return (word >> (8u * (index % 4u))) & 0xffu;
}

fn signedByteAt(word: u32, index: u32) -> i32 {
  return (bitcast<i32>(word << (24u - 8u * (index % 4u)))) >> 24u;
}

// Half h of a packed float16 array is half h % 2 of word h / 2.
fn halfAt(word: u32, index: u32) -> f32 {
  return unpack2x16float(word)[index % 2u];
}
