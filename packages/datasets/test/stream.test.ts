import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Field,
  FixedSizeList,
  Float16,
  Float32,
  Float64,
  Int32,
  List,
  makeData,
  makeVector,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { createNpyWriter, float32ToFloat16, generateSynthetic, loadVectors, openVectors, writeBvecs, writeFvecs, writeNpy, type VectorStream } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'adanns-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rows = 37;
const dim = 5;
const values = Float32Array.from({ length: rows * dim }, (_, i) => Math.sin(i) * 10);

async function collect(stream: VectorStream, chunkRows: number, from?: number, to?: number): Promise<{ data: number[]; sizes: number[]; starts: number[] }> {
  const data: number[] = [];
  const sizes: number[] = [];
  const starts: number[] = [];
  for await (const chunk of stream.chunks(chunkRows, from, to)) {
    data.push(...chunk.data);
    sizes.push(chunk.rows);
    starts.push(chunk.from);
  }
  return { data, sizes, starts };
}

/** Batches of 10 rows (so chunks straddle batches), embeddings in a column of the given list type. */
function arrowTable(kind: 'fixed' | 'list', item: Float16 | Float32 | Float64): Table {
  const batches: RecordBatch[] = [];
  for (let from = 0; from < rows; from += 10) {
    const n = Math.min(10, rows - from);
    const slice = values.subarray(from * dim, (from + n) * dim);
    const raw = item instanceof Float16 ? Uint16Array.from(slice, float32ToFloat16) : item instanceof Float64 ? Float64Array.from(slice) : Float32Array.from(slice);
    const child = makeData({ type: item, length: n * dim, nullCount: 0, data: raw });
    const field = new Field('item', item, false);
    const embedding =
      kind === 'fixed'
        ? makeData({ type: new FixedSizeList(dim, field), length: n, nullCount: 0, child })
        : makeData({ type: new List(field), length: n, nullCount: 0, child, valueOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i * dim) });
    const ids = makeData({ type: new Int32(), length: n, nullCount: 0, data: Int32Array.from({ length: n }, (_, i) => from + i) });
    const schema = new Schema([new Field('id', new Int32()), new Field('embedding', embedding.type)]);
    batches.push(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children: [ids, embedding] })));
  }
  return new Table(batches);
}

describe('streams over files', () => {
  it('npy, fvecs and bvecs stream the same rows in any chunking, and read rows by number', async () => {
    writeNpy(at('v.npy'), values, [rows, dim], '<f4');
    writeFvecs(at('v.fvecs'), values, rows, dim);
    const bytes = Uint8Array.from(values, (v) => Math.round(Math.abs(v) * 10) % 256);
    writeBvecs(at('v.bvecs'), bytes, rows, dim);
    for (const [source, expected] of [[at('v.npy'), values], [at('v.fvecs'), values], [at('v.bvecs'), Float32Array.from(bytes)]] as const) {
      const stream = await openVectors(source);
      expect([stream.rows, stream.dim]).toEqual([rows, dim]);
      const all = await collect(stream, 8);
      expect(all.data).toEqual(Array.from(expected));
      expect(all.sizes).toEqual([8, 8, 8, 8, 5]);
      const part = await collect(stream, 4, 3, 14);
      expect(part.starts).toEqual([3, 7, 11]);
      expect(part.data).toEqual(Array.from(expected.subarray(3 * dim, 14 * dim)));
      const picked = await stream.readRows([0, 5, 36]);
      expect(Array.from(picked)).toEqual([...expected.subarray(0, dim), ...expected.subarray(5 * dim, 6 * dim), ...expected.subarray(36 * dim)]);
      await expect(stream.readRows([5, 5])).rejects.toThrow(/strictly increasing/);
      await expect(collect(stream, 4, 10, 99)).rejects.toThrow(/rows \[10, 99\) are not within its 37 rows/);
      await stream.close();
    }
  });

  it('writes a .npy piece by piece, and refuses to finish one the pieces do not fill', async () => {
    const writer = createNpyWriter(at('w.npy'), [rows, dim], '<f4');
    writer.append(values.subarray(0, 10 * dim));
    writer.append(Array.from(values.subarray(10 * dim)));
    writer.close();
    expect(Array.from((await loadVectors(at('w.npy'))).data)).toEqual(Array.from(values));
    const short = createNpyWriter(at('short.npy'), [rows, dim], '<f4');
    short.append(values.subarray(0, dim));
    expect(() => short.close()).toThrow(/5 values do not fill shape \(37, 5\)/);
    await expect(openVectors(at('short.npy'))).rejects.toThrow(/no such file/);
    expect(() => createNpyWriter(at('over.npy'), [1, 2], '<f4').append([1, 2, 3])).toThrow(/3 values overflow shape \(1, 2\)/);
  });

  it('float16 and float64 npy become float32; limits keep the first rows', async () => {
    writeNpy(at('h.npy'), values, [rows, dim], '<f2');
    const half = await loadVectors(at('h.npy'), 3);
    expect(half.rows).toBe(3);
    for (let i = 0; i < 3 * dim; i++) expect(half.data[i]).toBeCloseTo(values[i], 1);
  });

  it('refuses a truncated file when it is opened, with the sizes', async () => {
    writeNpy(at('t.npy'), values, [rows, dim], '<f4');
    writeFileSync(at('t2.npy'), readFileSync(at('t.npy')).subarray(0, 300));
    await expect(openVectors(at('t2.npy'))).rejects.toThrow(/truncated .npy data/);
    writeNpy(at('ids.npy'), [1, 2, 3, 4], [2, 2], '<i4');
    await expect(openVectors(at('ids.npy'))).rejects.toThrow(/must be float16\/32\/64 or uint8, got dtype <i4/);
  });

  it('synthetic names tell sets with another spectrum or spread apart', async () => {
    const plain = await openVectors('synthetic:n=50,dim=6,seed=3');
    const flat = await openVectors('synthetic:n=50,dim=6,seed=3,decay=0.1');
    const spread = await openVectors('synthetic:n=50,dim=6,seed=3,noise=2');
    expect(plain.name).toBe('synthetic-n50-d6-c64-s3');
    expect(flat.name).toBe('synthetic-n50-d6-c64-s3-decay0.1');
    expect(spread.name).toBe('synthetic-n50-d6-c64-s3-noise2');
  });

  it('synthetic sources stream the same rows as the in-memory set', async () => {
    const set = generateSynthetic({ n: 50, dim: 6, queries: 9, seed: 3 });
    const base = await openVectors('synthetic:n=50,dim=6,queries=9,seed=3');
    expect((await collect(base, 7)).data).toEqual(Array.from(set.base.data));
    expect((await collect(base, 7, 20, 31)).data).toEqual(Array.from(set.base.data.subarray(20 * 6, 31 * 6)));
    expect(Array.from(await base.readRows([1, 49]))).toEqual([...set.base.data.subarray(6, 12), ...set.base.data.subarray(49 * 6)]);
    expect(Array.from((await loadVectors('synthetic:n=50,dim=6,queries=9,seed=3', 20)).labels!)).toEqual(Array.from(set.base.labels!.subarray(0, 20)));
    const queries = await openVectors('synthetic:n=50,dim=6,queries=9,seed=3,part=queries');
    expect((await collect(queries, 4)).data).toEqual(Array.from(set.queries.data));
  });
});

describe('Arrow IPC', () => {
  for (const format of ['stream', 'file'] as const) {
    for (const kind of ['fixed', 'list'] as const) {
      it(`reads a ${kind === 'fixed' ? 'fixed-size' : 'variable'} list column from the ${format} format, across batch boundaries`, async () => {
        const path = at(`e-${format}-${kind}.arrow`);
        writeFileSync(path, tableToIPC(arrowTable(kind, new Float32()), format));
        const stream = await openVectors(path);
        expect([stream.rows, stream.dim, stream.name]).toEqual([rows, dim, `${path}:embedding`]);
        const all = await collect(stream, 8);
        expect(all.data).toEqual(Array.from(values));
        expect(all.sizes).toEqual([8, 8, 8, 8, 5]);
        expect((await collect(stream, 6, 9, 22)).data).toEqual(Array.from(values.subarray(9 * dim, 22 * dim)));
        expect(Array.from(await stream.readRows([0, 19, 20, 36]))).toEqual([0, 19, 20, 36].flatMap((r) => Array.from(values.subarray(r * dim, (r + 1) * dim))));
        await stream.close();
      });
    }
  }

  it('reads float16 and float64 embeddings as float32', async () => {
    writeFileSync(at('h.arrow'), tableToIPC(arrowTable('fixed', new Float16()), 'stream'));
    const half = await loadVectors(at('h.arrow'));
    for (let i = 0; i < values.length; i++) expect(half.data[i]).toBeCloseTo(values[i], 1);
    writeFileSync(at('d.arrow'), tableToIPC(arrowTable('list', new Float64()), 'stream'));
    expect(Array.from((await loadVectors(at('d.arrow'))).data)).toEqual(Array.from(values));
  });

  it('names the column to read and refuses what it cannot read', async () => {
    const path = at('e.arrow');
    writeFileSync(path, tableToIPC(arrowTable('fixed', new Float32()), 'stream'));
    expect((await openVectors(`${path}:embedding`)).dim).toBe(dim);
    await expect(openVectors(`${path}:vectors`)).rejects.toThrow(/no column "vectors".*columns: id: Int32, embedding/);
    await expect(openVectors(`${path}:id`)).rejects.toThrow(/column "id" is Int32, not a list of floats/);
    const ragged = new Table({ embedding: vectorFromArray([[1, 2, 3], [4, 5]], new List(new Field('item', new Float32()))) });
    writeFileSync(at('ragged.arrow'), tableToIPC(ragged, 'stream'));
    await expect(loadVectors(at('ragged.arrow'))).rejects.toThrow(/has 2 values, the first row 3/);
    const nulls = new Table({ embedding: makeVector(vectorFromArray([[1, 2], null], new List(new Field('item', new Float32())))) });
    writeFileSync(at('nulls.arrow'), tableToIPC(nulls, 'stream'));
    await expect(loadVectors(at('nulls.arrow'))).rejects.toThrow(/null rows/);
    writeFileSync(at('junk.arrow'), Buffer.from('this is not arrow at all'));
    await expect(openVectors(at('junk.arrow'))).rejects.toThrow(/not an Arrow IPC file/);
  });
});
