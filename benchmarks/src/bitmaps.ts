/**
 * Filter bitmaps (issue 18): the dense Uint32Array bitset the engine uses for
 * a filter's allowed ids against npm `roaring` (CRoaring's Node binding,
 * pinned in benchmarks/package.json, not a runtime dependency), over the ids
 * of a collection of --ids (default 1,000,000) at 50%, 10%, 1%, 0.1% and
 * 0.01% selectivity:
 *   build (sorted)    the allowed set from a keyword payload index's results
 *                     (ids ascending within one value): a bit set per id, or
 *                     roaring add() per id as the index scan yields them,
 *                     and addMany() of the ids gathered first;
 *   build (shuffled)  the same from a range over a float field (ids in value
 *                     order, i.e. scattered);
 *   and / or          intersection and union with a second, independent set
 *                     of the same selectivity (must and should of two conditions);
 *   memory            the bitset's bytes, roaring's native bytes
 *                     (getRoaringUsedMemory before and after building it,
 *                     after runOptimize + shrinkToFit);
 *   test / member     the kernels' per-member test over 1,000,000 members in
 *                     list order (scattered ids): one load and shift in the
 *                     bitset, roaring has() per member;
 *   to dense mask     what roaring must add on the kernel path: the kernels
 *                     read a dense slot mask, so a roaring set is turned into
 *                     one per request (toUint32Array, then a bit per id).
 * Times: median of --passes passes (default 5) after a warm-up, in ms.
 *
 *   npm run bench:bitmaps -- [--ids 1000000] [--passes 5] [--out benchmarks/results/bitmaps]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import roaring from 'roaring';
import { intOption } from '@adanns/cli-kit';
import { createRng } from '@adanns/compute';
import { countBits } from '@adanns/core';
import { medianMs } from './timing.js';

const { RoaringBitmap32, getRoaringUsedMemory } = roaring;
const ROARING_VERSION = '2.7.0';

const { values: o } = parseArgs({
  options: {
    ids: { type: 'string', default: '1000000' },
    passes: { type: 'string', default: '5' },
    out: { type: 'string', default: 'benchmarks/results/bitmaps' },
  },
});
const n = intOption(o.ids, 'ids');
const passes = intOption(o.passes, 'passes');
const SELECTIVITIES = [0.5, 0.1, 0.01, 0.001, 0.0001];
const words = (n + 31) >>> 5;
const rng = createRng(18);

/** `count` distinct ids of [0, n), ascending. */
function sortedIds(count: number): Uint32Array {
  // a Bernoulli draw at the exact share, then trimmed: ascending by construction
  const out = new Uint32Array(count);
  let m = 0;
  for (let id = 0; id < n && m < count; id++) if (rng.next() * (n - id) < count - m) out[m++] = id;
  return out;
}

function shuffled(ids: Uint32Array): Uint32Array {
  const out = ids.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

function bitsetOf(ids: Uint32Array): Uint32Array {
  const bits = new Uint32Array(words);
  for (let i = 0; i < ids.length; i++) bits[ids[i] >>> 5] |= 1 << (ids[i] & 31);
  return bits;
}

function roaringAdded(ids: Uint32Array): InstanceType<typeof RoaringBitmap32> {
  const r = new RoaringBitmap32();
  for (let i = 0; i < ids.length; i++) r.add(ids[i]);
  return r;
}

/** Members in list order: every id once, scattered (IVF lists hold ids in assignment order, not id order). */
const members = shuffled(Uint32Array.from({ length: n }, (_, i) => i));

interface Row {
  selectivity: number;
  ids: number;
  measure: string;
  bitset: number;
  roaring: number;
  roaringBatched?: number;
  unit: 'ms' | 'bytes';
}

const rows: Row[] = [];
const log = (text: string) => process.stderr.write(`${text}\n`);
let sink = 0;
for (const s of SELECTIVITIES) {
  const count = Math.max(1, Math.round(s * n));
  const a = sortedIds(count);
  const b = sortedIds(count);
  const aScattered = shuffled(a);
  log(`selectivity ${100 * s}%: ${count} ids`);
  const time = (fn: () => unknown) => medianMs(fn, passes);
  rows.push({ selectivity: s, ids: count, measure: 'build (ids ascending)', unit: 'ms', bitset: await time(() => bitsetOf(a)), roaring: await time(() => roaringAdded(a)), roaringBatched: await time(() => new RoaringBitmap32().addMany(a)) });
  rows.push({ selectivity: s, ids: count, measure: 'build (ids scattered)', unit: 'ms', bitset: await time(() => bitsetOf(aScattered)), roaring: await time(() => roaringAdded(aScattered)), roaringBatched: await time(() => new RoaringBitmap32().addMany(aScattered)) });
  const [ba, bb] = [bitsetOf(a), bitsetOf(b)];
  const [ra, rb] = [new RoaringBitmap32(a), new RoaringBitmap32(b)];
  const andBits = () => {
    const out = new Uint32Array(words);
    for (let w = 0; w < words; w++) out[w] = ba[w] & bb[w];
    return out;
  };
  const orBits = () => {
    const out = new Uint32Array(words);
    for (let w = 0; w < words; w++) out[w] = ba[w] | bb[w];
    return out;
  };
  // the answers must agree (the same sets either way)
  if (countBits(andBits()) !== RoaringBitmap32.and(ra, rb).size || countBits(orBits()) !== RoaringBitmap32.or(ra, rb).size) throw new Error('bitset and roaring disagree');
  rows.push({ selectivity: s, ids: count, measure: 'and (two sets)', unit: 'ms', bitset: await time(andBits), roaring: await time(() => RoaringBitmap32.and(ra, rb)) });
  rows.push({ selectivity: s, ids: count, measure: 'or (two sets)', unit: 'ms', bitset: await time(orBits), roaring: await time(() => RoaringBitmap32.or(ra, rb)) });
  const before = getRoaringUsedMemory();
  const held = new RoaringBitmap32(a);
  held.runOptimize();
  held.shrinkToFit();
  rows.push({ selectivity: s, ids: count, measure: 'memory', unit: 'bytes', bitset: words * 4, roaring: getRoaringUsedMemory() - before });
  const testBits = () => {
    let allowed = 0;
    for (let i = 0; i < members.length; i++) allowed += (ba[members[i] >>> 5] >>> (members[i] & 31)) & 1;
    return allowed;
  };
  const testRoaring = () => {
    let allowed = 0;
    for (let i = 0; i < members.length; i++) if (ra.has(members[i])) allowed++;
    return allowed;
  };
  if (testBits() !== count || testRoaring() !== count) throw new Error('member tests disagree');
  rows.push({ selectivity: s, ids: count, measure: `test ${n} members (list order)`, unit: 'ms', bitset: await time(testBits), roaring: await time(testRoaring) });
  // the kernels' dense mask from each: a copy of the bitset (what slotFilter does for identity slots), roaring's ids set as bits
  rows.push({ selectivity: s, ids: count, measure: 'to dense mask', unit: 'ms', bitset: await time(() => ba.slice()), roaring: await time(() => bitsetOf(ra.toUint32Array())) });
  sink += held.size;
}

const fmt = (r: Row, v: number | undefined) => (v === undefined ? '-' : r.unit === 'bytes' ? v.toLocaleString('en-US') : v < 0.1 ? v.toFixed(4) : v.toFixed(2));
const lines: string[] = [];
lines.push(`# Filter bitmaps: Uint32Array bitset against roaring ${ROARING_VERSION} (${n.toLocaleString('en-US')} ids)`);
lines.push('');
lines.push(`Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), load average ${loadavg()[0].toFixed(1)} when it ended; times in ms, median of ${passes} passes after a warm-up; memory in bytes. roaring (batched): addMany of the ids gathered first.`);
lines.push(`Command: \`npm run bench:bitmaps -- --ids ${n} --passes ${passes}\``);
lines.push('');
lines.push('| selectivity | ids | measure | bitset | roaring | roaring (batched) | roaring / bitset |');
lines.push('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const best = r.roaringBatched === undefined ? r.roaring : Math.min(r.roaring, r.roaringBatched);
  lines.push(`| ${100 * r.selectivity}% | ${r.ids} | ${r.measure} | ${fmt(r, r.bitset)} | ${fmt(r, r.roaring)} | ${fmt(r, r.roaringBatched)} | ${r.bitset > 0 ? (best / r.bitset).toFixed(2) : '-'} |`);
}
const text = lines.join('\n') + '\n';
process.stdout.write(text);
mkdirSync(o.out!, { recursive: true });
writeFileSync(join(o.out!, 'summary.md'), text);
writeFileSync(join(o.out!, 'results.json'), JSON.stringify({ ids: n, passes, roaring: ROARING_VERSION, node: process.version, rows }, null, 2) + '\n');
if (sink < 0) log(String(sink));
