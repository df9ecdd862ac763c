/**
 * What spreading an index over several WebAssembly memories costs the CPU
 * backend: one small scan (1 query x ROWS rows x DIM, cosine, top-10, with
 * ids and stored inverse norms, as a probed IVF list is scanned) timed with
 * the list's arrays
 *   one-memory     in an arena of one memory (as before several memories)
 *   in-place       all in the first of two memories
 *   second-memory  all in a second memory (the call runs on that memory's instance)
 *   split          rows in the second memory, ids and norms in the first
 *                  (they are copied into the second memory's staging per call)
 *   heap           all on the JavaScript heap (everything copied per call)
 * One JSON line per layout: median microseconds per call over --passes
 * passes, and the ratio to one-memory.
 *
 *   npm run bench:memories [-- --rows 1000 --dim 64 --passes 15]
 */
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { computeInvNorms, createRng, rowBlock, TopK, WasmSimdBackend, type RowBlock } from '@adanns/compute';

const { values: o } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000' },
    dim: { type: 'string', default: '64' },
    passes: { type: 'string', default: '15' },
  },
});
const rows = intOption(o.rows, 'rows');
const dim = intOption(o.dim, 'dim');
const passes = intOption(o.passes, 'passes');

const rng = createRng(7);
const values = Float32Array.from({ length: rows * dim }, () => rng.next() - 0.5);
const norms = computeInvNorms(rowBlock(values, rows, dim), dim);
const ids = Int32Array.from({ length: rows }, (_, j) => j * 3);
const query = rowBlock(Float32Array.from({ length: dim }, () => rng.next() - 0.5), 1, dim);

// memories just large enough for one list each, so the second list opens a second memory
const listBytes = rows * dim * 4;
const memoryBytes = Math.ceil((2 * listBytes + (1 << 20)) / 65536) * 65536;
const backend = await WasmSimdBackend.create({ threads: 1, maxMemoryBytes: memoryBytes });
const arena = backend.arena;
const copy = <T extends Float32Array | Int32Array>(target: T, from: T): T => (target.set(from), target);

const inPlace = { data: copy(arena.float32(rows * dim), values), ids: copy(arena.int32(rows), ids), norms: copy(arena.float32(rows), norms) };
// fill the first memory: the next lists go to the second, and the split list's ids and norms back to the first
const fill: Float32Array[] = [];
while (arena.memories.length === 1) fill.push(arena.float32(256)); // leaves less room than ids or norms take
const second = { data: copy(arena.float32(rows * dim), values), ids: copy(arena.int32(rows), ids), norms: copy(arena.float32(rows), norms) };
const splitData = copy(arena.float32(rows * dim), values);
for (const f of fill) arena.release(f);
const split = { data: splitData, ids: copy(arena.int32(rows), ids), norms: copy(arena.float32(rows), norms) };
/** A list's arrays: rows, their ids and their inverse norms. */
interface List {
  data: Float32Array;
  ids: Int32Array;
  norms: Float32Array;
}
const heap: List = { data: values, ids, norms };
const single = await WasmSimdBackend.create({ threads: 1 });
const alone = { data: copy(single.arena.float32(rows * dim), values), ids: copy(single.arena.int32(rows), ids), norms: copy(single.arena.float32(rows), norms) };

const where = (a: ArrayBufferView) => arena.locate(a)?.memory ?? 'heap';
const layouts: [string, List][] = [['one-memory', alone], ['in-place', inPlace], ['second-memory', second], ['split', split], ['heap', heap]];
for (const [name, l] of layouts) {
  if (name === 'one-memory') continue;
  const expected: Record<string, [number | string, number | string, number | string]> = {
    'in-place': [0, 0, 0],
    'second-memory': [1, 1, 1],
    split: [1, 0, 0],
    heap: ['heap', 'heap', 'heap'],
  };
  const got = [where(l.data), where(l.ids), where(l.norms)];
  if (got.join() !== expected[name].join()) throw new Error(`layout ${name}: arrays in memories ${got.join(', ')}, wanted ${expected[name].join(', ')}`);
}

const block = (l: List): RowBlock => rowBlock(l.data, rows, dim, 0, l.norms);
let best = new TopK(1, 10);
const scan = (l: List) => {
  best = new TopK(1, 10);
  return (l === alone ? single : backend).scanTopK(query, block(l), dim, 'cosine', best, l.ids);
};

// every layout must give the same answer before its time means anything
await scan(inPlace);
const want = JSON.stringify([Array.from(best.ids), Array.from(best.scores)]);
for (const [name, l] of layouts) {
  await scan(l);
  if (JSON.stringify([Array.from(best.ids), Array.from(best.scores)]) !== want) throw new Error(`layout ${name} gave other results`);
}

/** Median over passes of microseconds per call, each pass about 50 ms; layouts interleaved so drift hits all alike. */
const calls = Math.max(10, Math.round(50_000 / Math.max(1, (rows * dim) / 2000)));
const samples = new Map<string, number[]>(layouts.map(([name]) => [name, []]));
for (let pass = 0; pass < passes; pass++) {
  for (const [name, l] of layouts) {
    const start = performance.now();
    for (let i = 0; i < calls; i++) await scan(l);
    samples.get(name)!.push(((performance.now() - start) * 1000) / calls);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(samples.get('one-memory')!);
for (const [name] of layouts) {
  const us = median(samples.get(name)!);
  console.log(JSON.stringify({ layout: name, shape: `1 query x ${rows} rows x ${dim}, cosine, top-10, ids and norms`, usPerCall: Number(us.toPrecision(4)), vsOneMemory: Number((us / base).toPrecision(4)), passes, callsPerPass: calls }));
}
await backend.dispose();
await single.dispose();
